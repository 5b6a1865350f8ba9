"""Held-out loss of a checkpoint on each part's val set, on fixed batches, so stages compare.

The batches of a val set are a pure function of (seed, batch index) — the same windows at every
stage — so a change in a part's loss between two stages is the model's, not the sampling's. Each
part is scored on its own val set; "union" scores the val sets of all given parts together,
weighted by their val tokens (the union of the parts' val sets, as one dataset would hold it).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from growgpt.data import TokenData, eval_generator
from growgpt.errors import UserError
from growgpt.hardware import pick_runtime
from growgpt.sample import load_model
from growgpt.tokenizer import same_tokenizer


def _score(model, split, batches: int, batch_size: int, block_size: int, seed: int, device) -> dict:
    total = 0.0
    for i in range(batches):
        x, y = split.batch(eval_generator(seed, "val", i), batch_size, block_size)
        _, loss = model(x.to(device), y.to(device))
        total += float(loss)
    loss = total / batches
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}


@torch.no_grad()
def evaluate_parts(checkpoint: str | Path, corpus_dir: str | Path, parts: dict[str, list[str]],
                   unions: dict[str, list[str]], batches: int = 20, batch_size: int = 8, seed: int = 1234,
                   device: str = "auto") -> dict:
    """Loss and perplexity of `checkpoint` on each labelled group of corpus parts' val sets.

    `parts` maps a label (e.g. plan part "2") to the corpus part names it consists of, and is scored
    per label; `unions` maps a label (e.g. "union") to a list of corpus part names scored together.
    Returns {"parts": {label: {"loss", "ppl"}}, label of each union: {"loss", "ppl"}}.
    """
    runtime = pick_runtime(device, "float32")
    model, state = load_model(Path(checkpoint), runtime.device)
    block_size = model.config.block_size
    out: dict = {"parts": {}}
    groups = [(label, names, True) for label, names in parts.items()] + \
             [(label, names, False) for label, names in unions.items()]
    for label, names, per_part in groups:
        data = TokenData(corpus_dir, parts=names)
        if not same_tokenizer(data.tokenizer_spec, state["tokenizer"]):
            raise UserError(f"checkpoint {checkpoint} and corpus {corpus_dir} use different tokenizers")
        data.val.check_block_size(block_size, Path(corpus_dir))
        # Val weights are by val tokens whatever the training replay: the union as one dataset.
        score = _score(model, data.val, batches, batch_size, block_size, seed, runtime.device)
        if per_part:
            out["parts"][label] = score
        else:
            out[label] = score
    return out
