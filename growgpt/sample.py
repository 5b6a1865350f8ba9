"""Text from a trained checkpoint: temperature + top-k sampling, reproducible with a seed.

A Hugging Face GPT-2 folder samples directly too, with no training run: `--checkpoint HF_DIR` (or
`--run HF_DIR`; also its model.safetensors, pytorch_model.bin or shard index alone). Its shape comes
from config.json and its tensors, its weights through `model.load_hf_gpt2` (single or sharded,
safetensors or PyTorch .bin read with weights_only=True), its tokenizer from its vocabulary
(`checkpoint.load_hf`).

The checkpoint records its tokenizer, so no dataset is needed to sample. Loading goes through
`checkpoint.load_weights`: `torch.load(weights_only=True)`, or the run's `model.safetensors` (written
at the end of training; its metadata records the model's shape and tokenizer). Either is checked before
use (`checkpoint.build_model`): a file lacking an entry, or whose tensors do not match its recorded
shape, is a one-line error naming it.

A byte-level model (`--tokenizer bytes`) reads the prompt as its UTF-8 bytes and can emit bytes that
are not UTF-8; those decode to U+FFFD, so a sample is always text. A prompt holding a lone surrogate
(what Python makes of command-line bytes that are not UTF-8) is refused: it is not Unicode text.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from growgpt import checkpoint as ckpt_io
from growgpt.errors import UserError
from growgpt.hardware import pick_runtime
from growgpt.model import GPT
from growgpt.tokenizer import LONE_SURROGATE, from_spec


def load_model(checkpoint_path: Path, device: str = "cpu") -> tuple[GPT, dict]:
    """The model of a checkpoint (ckpt.pt, best.pt), model.safetensors or Hugging Face GPT-2 weights
    (a folder, or its weights file or shard index), and its state dict; a file that lacks an entry or
    whose tensors do not match its model_args is a UserError naming it."""
    checkpoint_path = Path(checkpoint_path)
    if ckpt_io.is_hf_path(checkpoint_path):
        model, state = ckpt_io.load_hf(checkpoint_path)
    else:
        if checkpoint_path.is_dir():
            checkpoint_path = ckpt_io.find(checkpoint_path, "auto")  # a growgpt run folder: best.pt or ckpt.pt
        state = ckpt_io.load_weights(checkpoint_path)
        model = ckpt_io.build_model(state, checkpoint_path)
    model.eval().to(device)
    return model, state


def resolve(run_dir: str | Path | None, checkpoint: str = "auto") -> Path:
    """What to sample: `checkpoint` best / last / auto in the run folder `run_dir`, or a path (a
    checkpoint file, a run folder, a Hugging Face GPT-2 folder or weights file). `run_dir` itself may
    be a Hugging Face GPT-2 folder (config.json + weights, no growgpt run) with checkpoint auto."""
    if checkpoint not in ("auto", "best", "last"):
        return Path(checkpoint)
    if run_dir is None:
        raise UserError("nothing to sample: give --run OUT_DIR, or --checkpoint PATH (a checkpoint file or a "
                        "Hugging Face GPT-2 folder)")
    if checkpoint == "auto" and ckpt_io.is_hf_folder(run_dir):
        return Path(run_dir)
    return ckpt_io.find(run_dir, checkpoint)


def read_prompt(start: str) -> str:
    """`--start` is the prompt itself, or FILE:path to read it from a file."""
    if start.startswith("FILE:"):
        path = Path(start[5:])
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"prompt file not found: {path}") from None
        except UnicodeDecodeError as e:
            raise UserError(f"prompt file {path} is not valid UTF-8 at byte {e.start}") from None
    return start


def sample(run_dir: str | None, start: str = "\n", num_samples: int = 1, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = 200, seed: int = 1337, device: str = "auto",
           checkpoint: str = "auto") -> list[str]:
    if num_samples < 1 or max_new_tokens < 1:
        raise UserError("--num-samples and --max-new-tokens must be >= 1")
    if not 0 <= temperature < math.inf:  # also refuses nan, which would reach torch.multinomial
        raise UserError(f"--temperature must be a finite number >= 0, got {temperature}")
    if not 0 <= seed < 2**63:  # what torch.Generator.manual_seed takes, as for training's seed
        raise UserError(f"--seed must be in [0, 2**63), got {seed}")
    if top_k is not None and top_k < 0:
        raise UserError(f"--top-k must be >= 0 (0: no top-k cut), got {top_k}")
    runtime = pick_runtime(device, "float32")
    state_path = resolve(run_dir, checkpoint)
    model, state = load_model(state_path, runtime.device)
    tokenizer = from_spec(state["tokenizer"])
    if tokenizer.vocab_size > model.config.vocab_size:  # token ids past the embedding would fail mid-generation
        raise UserError(f"checkpoint {state_path}: its tokenizer has {tokenizer.vocab_size} tokens but its model "
                        f"only {model.config.vocab_size}: it is not a consistent growgpt checkpoint")
    prompt = read_prompt(start)
    surrogate = LONE_SURROGATE.search(prompt)
    if surrogate:  # would fail deep inside an encoder (bytes), or be replaced silently (gpt2)
        raise UserError(f"--start: the prompt holds a lone surrogate {surrogate.group()!r} at character "
                        f"{surrogate.start()}, which is not Unicode text (is the command line UTF-8?)")
    ids = tokenizer.encode(prompt) if prompt else []
    if not ids:
        ids = [tokenizer.separator_id]  # an empty prompt starts a fresh document
    generator = torch.Generator(device=runtime.device).manual_seed(seed)
    x = torch.tensor([ids], dtype=torch.long, device=runtime.device)
    texts = []
    for _ in range(num_samples):
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k,
                           vocab_size=tokenizer.vocab_size, generator=generator)
        texts.append(tokenizer.decode(y[0].tolist()))
    return texts
