"""Held-out loss and bits per byte of a checkpoint on each part's val set, on fixed batches, so stages compare.

The batches of a val set are a pure function of (seed, batch index) — the same windows at every
stage — so a change in a part's loss between two stages is the model's, not the sampling's. Each
part is scored on its own val set; "union" scores the val sets of all given parts together,
weighted by their val tokens (the union of the parts' val sets, as one dataset would hold it).

Bits per byte (bpb) = the nats over the scored target tokens / (the UTF-8 bytes those tokens decode
to x ln 2): unlike loss per token it does not depend on the tokenizer, so runs with different
tokenizers, and published numbers, compare. The bytes come from a per-token-id table (see
growgpt.token_bytes): nothing is decoded and old datasets need nothing new. Since the windows are the
same at every stage, so are their bytes: a part's bpb moves by the same percentage as its loss.

Each score also keeps its per-batch sums (`batch_nats`, `batch_bytes`, `batch_tokens`): two
checkpoints scored with the same seed, batch size and block size saw the same batches, so those lists
pair up batch by batch (for paired confidence intervals of a difference).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from growgpt.data import TokenData, eval_generator
from growgpt.errors import UserError
from growgpt.hardware import pick_runtime
from growgpt.metrics import bits_per_byte, perplexity
from growgpt.sample import load_model
from growgpt.tokenizer import same_tokenizer


def _score(model, data: TokenData, batches: int, batch_size: int, block_size: int, seed: int, device) -> dict:
    batch_nats, batch_bytes, batch_tokens = [], [], []
    loss_sum = 0.0
    for i in range(batches):
        x, y = data.val.batch(eval_generator(seed, "val", i), batch_size, block_size)
        _, loss = model(x.to(device), y.to(device))
        loss_sum += float(loss)
        # The loss is the mean over every target (no target is ignored: data never pads), so the
        # batch's total is that mean times its targets.
        batch_nats.append(float(loss) * y.numel())
        batch_bytes.append(data.target_bytes(y))
        batch_tokens.append(y.numel())
    loss = loss_sum / batches
    known_bytes = None not in batch_bytes
    n_bytes = sum(batch_bytes) if known_bytes else None
    n_tokens = sum(batch_tokens)
    return {"loss": loss, "ppl": perplexity(loss), "bpb": bits_per_byte(sum(batch_nats), n_bytes),
            "bytes_per_token": n_bytes / n_tokens if known_bytes and n_tokens else None,
            # the whole val split, from the manifests (None for datasets prepared before bytes were counted)
            "val_tokens": data.val.tokens, "val_bytes": data.val.bytes,
            "batch_nats": batch_nats, "batch_bytes": batch_bytes if known_bytes else None,
            "batch_tokens": batch_tokens}


@torch.no_grad()
def evaluate_parts(checkpoint: str | Path, corpus_dir: str | Path, parts: dict[str, list[str]],
                   unions: dict[str, list[str]], batches: int = 20, batch_size: int = 8, seed: int = 1234,
                   device: str = "auto") -> dict:
    """Loss, perplexity and bits per byte of `checkpoint` on each labelled group of corpus parts' val sets.

    `parts` maps a label (e.g. plan part "2") to the corpus part names it consists of, and is scored
    per label; `unions` maps a label (e.g. "union") to a list of corpus part names scored together.
    Returns {"parts": {label: score}, label of each union: score, "batches": how they were drawn}, a
    score being {"loss", "ppl", "bpb" (None: no byte table for this tokenizer), "bytes_per_token",
    "val_tokens", "val_bytes", "batch_nats", "batch_bytes", "batch_tokens"}.
    """
    runtime = pick_runtime(device, "float32")
    model, state = load_model(Path(checkpoint), runtime.device)
    block_size = model.config.block_size
    out: dict = {"parts": {}, "batches": {"count": batches, "batch_size": batch_size, "block_size": block_size,
                                          "seed": seed}}
    groups = [(label, names, True) for label, names in parts.items()] + \
             [(label, names, False) for label, names in unions.items()]
    scored: dict[tuple[str, ...], dict] = {}  # the same val data twice (stage 1's part = its union): score once
    for label, names, per_part in groups:
        if tuple(names) in scored:
            score = copy.deepcopy(scored[tuple(names)])
        else:
            data = TokenData(corpus_dir, parts=names)
            if not same_tokenizer(data.tokenizer_spec, state["tokenizer"]):
                raise UserError(f"checkpoint {checkpoint} and corpus {corpus_dir} use different tokenizers")
            data.val.check_block_size(block_size, Path(corpus_dir))
            # Val weights are by val tokens whatever the training replay: the union as one dataset.
            score = _score(model, data, batches, batch_size, block_size, seed, runtime.device)
            scored[tuple(names)] = score
        (out["parts"] if per_part else out)[label] = score
    return out
