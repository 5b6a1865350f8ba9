"""Checkpoints that a crash cannot corrupt.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, then renamed
over the old one (`os.replace` is atomic on POSIX and Windows), and the folder is fsynced so the
rename itself survives a power cut. A process killed mid-write leaves the previous checkpoint intact
and at worst a `*.tmp-*` file, which the next save removes and which loading never looks at: a
checkpoint counts only once it is complete.

Loading uses `torch.load(weights_only=True)`: a checkpoint can hold tensors, numbers, strings,
lists and dicts, never code. So RNG states and configs are stored as plain data.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from growgpt.errors import UserError
from growgpt.fsutil import fsync_dir as _fsync_dir

CHECKPOINT = "ckpt.pt"  # latest: what init_from=resume continues from
BEST = "best.pt"  # best validation loss so far: model weights only, for sampling


def atomic_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".tmp-*"):
        stale.unlink(missing_ok=True)  # left by a run that died mid-write
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise UserError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous checkpoint is kept") from None
        raise
    _fsync_dir(path.parent)


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path} is corrupt or truncated ({first_line})") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise UserError(f"checkpoint {path} is not a growgpt checkpoint")
    return obj


def find(run_dir: str | Path, which: str = "auto") -> Path:
    """The checkpoint file of a run folder: `best`, `last`, or `auto` (best if present, else last).
    `which` may also be a path to a checkpoint file."""
    run_dir = Path(run_dir)
    if which not in ("auto", "best", "last"):
        return Path(which)
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    best, last = run_dir / BEST, run_dir / CHECKPOINT
    if which == "best" or (which == "auto" and best.is_file()):
        return best
    if which == "last" or last.is_file():
        return last
    raise UserError(f"no checkpoint in {run_dir} (expected {BEST} or {CHECKPOINT})")


# --- RNG states as plain data (weights_only-safe) ------------------------------------------------

def capture_rng_state() -> dict:
    import random

    import numpy as np

    np_state = np.random.get_state()
    state = {
        "python": repr(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype("int64")), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    import ast
    import random

    import numpy as np

    random.setstate(_tuple_deep(ast.literal_eval(state["python"])))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype("uint32"), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuple_deep(x):
    return tuple(_tuple_deep(i) for i in x) if isinstance(x, (list, tuple)) else x


# --- safetensors: the run's weights in the format that is safe to share -----------------------------

SAFETENSORS = "model.safetensors"


def export_safetensors(state: dict, path: str | Path) -> None:
    """Write a checkpoint's weights as safetensors, with the model shape and tokenizer as metadata,
    so the file alone is enough to sample. The tied lm_head weight is stored once (as the token
    embedding) and re-tied on load: safetensors refuses tensors that share memory."""
    import json

    from safetensors.torch import save_file

    from growgpt.fsutil import commit, temp_path

    path = Path(path)
    tensors = {k: v.detach().contiguous() for k, v in state["model"].items() if k != "lm_head.weight"}
    metadata = {"format": "growgpt-weights", "model_args": json.dumps(state["model_args"]),
                "tokenizer": json.dumps(state["tokenizer"]), "iter_num": str(state.get("iter_num", ""))}
    tmp = temp_path(path)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        commit(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def load_safetensors(path: str | Path) -> dict:
    """A weights-only checkpoint dict ({"model", "model_args", "tokenizer"}) from export_safetensors."""
    import json

    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None
    if metadata.get("format") != "growgpt-weights":
        raise UserError(f"{path} has no growgpt metadata (model shape, tokenizer): use a file written by "
                        "growgpt train, or init_from to load GPT-2 weights")
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    return {"model": tensors, "model_args": json.loads(metadata["model_args"]),
            "tokenizer": json.loads(metadata["tokenizer"])}
