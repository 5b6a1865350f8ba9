"""Text from a trained checkpoint: temperature + top-k sampling, reproducible with a seed.

The checkpoint records its tokenizer, so no dataset is needed to sample. Loading goes through
`torch.load(weights_only=True)` (see `checkpoint`), or the run's `model.safetensors` (written at the
end of training; its metadata records the model's shape and tokenizer).
"""

from __future__ import annotations

from pathlib import Path

import torch

from growgpt import checkpoint as ckpt_io
from growgpt.errors import UserError
from growgpt.hardware import pick_runtime
from growgpt.model import GPT, GPTConfig
from growgpt.tokenizer import from_spec


def load_model(checkpoint_path: Path, device: str = "cpu") -> tuple[GPT, dict]:
    if Path(checkpoint_path).suffix == ".safetensors":
        state = ckpt_io.load_safetensors(checkpoint_path)
    else:
        state = ckpt_io.load(checkpoint_path)
    model = GPT(GPTConfig(**state["model_args"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"checkpoint {checkpoint_path} does not match its recorded model shape: {str(e).splitlines()[0]}") from None
    model.eval().to(device)
    return model, state


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


def sample(run_dir: str, start: str = "\n", num_samples: int = 1, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = 200, seed: int = 1337, device: str = "auto",
           checkpoint: str = "auto") -> list[str]:
    if num_samples < 1 or max_new_tokens < 1:
        raise UserError("--num-samples and --max-new-tokens must be >= 1")
    if temperature < 0:
        raise UserError("--temperature must be >= 0")
    runtime = pick_runtime(device, "float32")
    model, state = load_model(ckpt_io.find(run_dir, checkpoint), runtime.device)
    tokenizer = from_spec(state["tokenizer"])
    prompt = read_prompt(start)
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
