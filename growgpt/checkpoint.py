"""Checkpoints: written so a crash cannot corrupt them, read so a file never runs code, checked before use.

Writing goes through `fsutil.atomic_write` (temporary file, fsync, rename, folder fsync): a process
killed mid-write leaves the previous checkpoint intact and at worst a `*.tmp-*` file, which the next
save removes and which loading never looks at. Every file written here gets the permissions of a
plain `open()` (0666 less the umask), like the other outputs of a run; safetensors' writer alone
would leave model.safetensors at 0600.

Reading uses `torch.load(weights_only=True)` (`growgpt.torchload`): a checkpoint can hold tensors,
numbers, strings, lists and dicts, never code, so RNG states and configs are stored as plain data. A
file that needs more is refused as corrupt or not a growgpt checkpoint; the message never suggests
`weights_only=False` (that runs whatever code the file carries).

A loaded file is checked before it is used, so a hand-made, foreign or damaged one is a one-line
error naming the file, not a KeyError or a size-mismatch traceback: `check_entries` for the entries
a use needs, `model_config` for `model_args` (known keys, types, ranges), `build_model` for the
tensors against `model_args` (checked before a model is allocated, so `n_layer = 10**9` in
`model_args` cannot make it try), `check_tokenizer_spec` for the tokenizer.

A Hugging Face GPT-2 folder (config.json + model.safetensors / pytorch_model.bin, single or sharded)
is a checkpoint too, for sampling and evaluation (`load_hf`): its shape comes from its tensors and
config.json (`model.load_hf_gpt2`), its tokenizer from its vocabulary (50257: GPT-2's BPE; 257:
growgpt's bytes, as `growgpt export` writes them).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write, commit, temp_path
from growgpt.model import GPT, GROWGPT_WEIGHTS_FORMAT, GPTConfig, hf_weights_file, load_hf_gpt2, padded_vocab_size
from growgpt.tokenizer import BYTES_VOCAB_SIZE, GPT2_VOCAB_SIZE, TOKENIZER_NAMES, BytesTokenizer, GPT2Tokenizer
from growgpt.torchload import is_weights_only_refusal, load_error_reason, load_weights_only

CHECKPOINT = "ckpt.pt"  # latest: what init_from=resume continues from
BEST = "best.pt"  # best validation loss so far: model weights only, for sampling


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save `obj` to `path` through fsutil.atomic_write (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".tmp-*"):
        stale.unlink(missing_ok=True)  # left by a run that died mid-write
    try:
        atomic_write(path, lambda f: torch.save(obj, f), what="checkpoint")
    except UserError as e:  # fsutil's "cannot write checkpoint PATH: reason" (full disk, no permission)
        raise UserError(f"{e}; the previous checkpoint is kept") from None


def load(path: str | Path) -> dict:
    """A checkpoint file as a dict holding at least a "model" dict of tensors (see check_entries
    and build_model for the rest)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        obj = load_weights_only(path)
    except Exception as e:  # whatever the bytes make torch.load raise, the file is the problem
        if is_weights_only_refusal(e):
            raise UserError(f"checkpoint {path} is corrupt or not a growgpt checkpoint: "
                            f"{load_error_reason(e)}") from None
        raise UserError(f"checkpoint {path} is corrupt or truncated ({load_error_reason(e)})") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise UserError(f"checkpoint {path} is not a growgpt checkpoint (no model weights)")
    _check_tensors(obj["model"], path)
    return obj


def load_weights(path: str | Path) -> dict:
    """The weights-only state of a checkpoint file (ckpt.pt, best.pt) or a growgpt model.safetensors,
    holding at least WEIGHTS_ENTRIES, each checked (see check_entries)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    state = load(path)
    check_entries(state, path)
    return state


def _check_tensors(tensors: Any, path: Path) -> None:
    if not isinstance(tensors, dict) or not tensors or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
        raise UserError(f"checkpoint {path} is not a growgpt checkpoint: its weights are not a dict of named tensors")


# --- what a loaded checkpoint must hold ---------------------------------------------------------

WEIGHTS_ENTRIES = ("model", "model_args", "tokenizer")  # enough to sample or evaluate
RESUME_ENTRIES = WEIGHTS_ENTRIES + ("optimizer", "iter_num", "best_val_loss", "config", "rng")


def check_entries(state: dict, path: str | Path, entries: tuple[str, ...] = WEIGHTS_ENTRIES) -> None:
    missing = [key for key in entries if key not in state]
    if missing:
        raise UserError(f"checkpoint {path} is not a complete growgpt checkpoint: it lacks "
                        f"{', '.join(repr(k) for k in missing)}")
    check_tokenizer_spec(state["tokenizer"], path)
    if "iter_num" in entries:
        it = state["iter_num"]
        if type(it) is not int or not 0 <= it <= 2**53:
            raise UserError(f"checkpoint {path}: 'iter_num' must be a whole number >= 0, got {it!r}")
        best = state["best_val_loss"]
        if not isinstance(best, (int, float)) or isinstance(best, bool) or best != best:
            raise UserError(f"checkpoint {path}: 'best_val_loss' must be a number, got {best!r}")
        if not isinstance(state["config"], dict):
            raise UserError(f"checkpoint {path}: 'config' must be a table of config keys")


def check_tokenizer_spec(spec: Any, path: str | Path) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("fingerprint"), str):
        raise UserError(f"checkpoint {path}: 'tokenizer' is not a tokenizer description (no fingerprint)")
    if spec.get("name") not in TOKENIZER_NAMES:
        raise UserError(f"checkpoint {path}: unknown tokenizer {spec.get('name')!r} "
                        f"(expected {', '.join(repr(n) for n in TOKENIZER_NAMES)})")
    if spec["name"] == "char" and (not isinstance(spec.get("chars"), str) or not spec["chars"]):
        raise UserError(f"checkpoint {path}: the char tokenizer's 'chars' must be a non-empty string")


_MODEL_ARG_KEYS = tuple(f.name for f in fields(GPTConfig))


def model_config(model_args: Any, path: str | Path) -> GPTConfig:
    """`model_args` as a GPTConfig: exactly GPTConfig's keys, each of its type and in range."""
    if not isinstance(model_args, dict):
        raise UserError(f"checkpoint {path}: 'model_args' must be a table, got {type(model_args).__name__}")
    unknown = sorted(str(k) for k in model_args if k not in _MODEL_ARG_KEYS)
    missing = [k for k in _MODEL_ARG_KEYS if k not in model_args]
    if unknown or missing:
        what = "; ".join(filter(None, (unknown and f"unknown keys {', '.join(unknown)}",
                                       missing and f"missing {', '.join(missing)}")))
        raise UserError(f"checkpoint {path}: 'model_args' does not describe a growgpt model ({what})")
    for key in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
        value = model_args[key]
        if type(value) is not int or not 0 < value <= 2**53:
            raise UserError(f"checkpoint {path}: model_args '{key}' must be a whole number > 0, got {value!r}")
    dropout = model_args["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UserError(f"checkpoint {path}: model_args 'dropout' must be a number in [0, 1), got {dropout!r}")
    if type(model_args["bias"]) is not bool:
        raise UserError(f"checkpoint {path}: model_args 'bias' must be true or false, got {model_args['bias']!r}")
    if model_args["n_embd"] % model_args["n_head"]:
        raise UserError(f"checkpoint {path}: model_args 'n_embd' ({model_args['n_embd']}) is not a multiple of "
                        f"'n_head' ({model_args['n_head']})")
    return GPTConfig(**{**model_args, "dropout": float(dropout)})


def _shape_mismatch(path: str | Path, what: str) -> UserError:
    return UserError(f"checkpoint {path}: its tensors do not match its model_args ({what})")


def build_model(state: dict, path: str | Path) -> GPT:
    """The GPT that `state["model_args"]` describes, holding `state["model"]`'s weights. The tensors
    are checked against model_args before anything is allocated: the shapes of the embeddings and
    the number of layers first (cheap), then every name and shape against a model built on the meta
    device (no memory), and only then the real model."""
    config = model_config(state["model_args"], path)
    tensors = state["model"]
    _check_tensors(tensors, path)
    for name, expected in (("transformer.wte.weight", (config.vocab_size, config.n_embd)),
                           ("transformer.wpe.weight", (config.block_size, config.n_embd))):
        if name not in tensors:
            raise _shape_mismatch(path, f"no tensor {name}")
        if tuple(tensors[name].shape) != expected:
            raise _shape_mismatch(path, f"{name} has shape {tuple(tensors[name].shape)}, model_args say {expected}")
    layers = {int(m.group(1)) for k in tensors if (m := re.match(r"transformer\.h\.(\d+)\.", k))}
    if len(layers) != config.n_layer or max(layers, default=-1) != config.n_layer - 1:  # blocks 0..n_layer-1
        raise _shape_mismatch(path, f"model_args say n_layer={config.n_layer}, the tensors hold "
                                    f"{len(layers)} layer(s)")
    with torch.device("meta"):
        expected_shapes = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()}
    unexpected = sorted(set(tensors) - set(expected_shapes))
    missing = sorted(set(expected_shapes) - set(tensors))
    if unexpected or missing:
        first = f"unexpected tensor {unexpected[0]}" if unexpected else f"missing tensor {missing[0]}"
        raise _shape_mismatch(path, f"{first}; {len(unexpected)} unexpected, {len(missing)} missing")
    for name, shape in expected_shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise _shape_mismatch(path, f"{name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    model = GPT(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:  # e.g. a tensor of a type that cannot be copied into float weights
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path}: its weights cannot be loaded ({reason})") from None
    return model


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


def restore_rng_state(state: dict, path: str | Path = "checkpoint") -> None:
    """Set the RNGs from capture_rng_state's dict; a malformed one is a UserError naming `path`."""
    import ast
    import random

    import numpy as np

    try:
        random.setstate(_tuple_deep(ast.literal_eval(state["python"])))
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype("uint32"), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, AttributeError, SyntaxError, RuntimeError, MemoryError, RecursionError):
        raise UserError(f"checkpoint {path}: its saved random-number states ('rng') are damaged") from None


def _tuple_deep(x):
    return tuple(_tuple_deep(i) for i in x) if isinstance(x, (list, tuple)) else x


# --- safetensors: the run's weights in the format that is safe to share -----------------------------

SAFETENSORS = "model.safetensors"


def _umask() -> int:
    try:  # Linux reports it without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def set_plain_file_mode(path: str | Path) -> None:
    """Give a file written by name the permissions a plain open() would (0666 less the umask), like
    ckpt.pt and the JSON files: safetensors' writer alone leaves 0600."""
    os.chmod(path, 0o666 & ~_umask())


def export_safetensors(state: dict, path: str | Path) -> None:
    """Write a checkpoint's weights as safetensors, with the model shape and tokenizer as metadata,
    so the file alone is enough to sample. The tied lm_head weight is stored once (as the token
    embedding) and re-tied on load: safetensors refuses tensors that share memory."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous() for k, v in state["model"].items() if k != "lm_head.weight"}
    metadata = {"format": GROWGPT_WEIGHTS_FORMAT, "model_args": json.dumps(state["model_args"]),
                "tokenizer": json.dumps(state["tokenizer"]), "iter_num": str(state.get("iter_num", ""))}
    tmp = temp_path(path)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        set_plain_file_mode(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        commit(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def load_safetensors(path: str | Path) -> dict:
    """A weights-only checkpoint dict ({"model", "model_args", "tokenizer"}) from export_safetensors.
    The metadata is checked here; build_model checks the tensors against it."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # SafetensorError, OSError, ...: whatever the bytes cause, the file is the problem
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a readable safetensors file ({reason})") from None
    if metadata.get("format") != GROWGPT_WEIGHTS_FORMAT:
        raise UserError(f"{path} has no growgpt metadata (model shape, tokenizer): use a file written by "
                        "growgpt train, or init_from to load GPT-2 weights")
    state = {"model": tensors}
    for key in ("model_args", "tokenizer"):
        if key not in metadata:
            raise UserError(f"{path}: its growgpt metadata lacks '{key}'")
        try:
            state[key] = json.loads(metadata[key])
        except (ValueError, RecursionError):
            raise UserError(f"{path}: its growgpt metadata '{key}' is not valid JSON") from None
    if "transformer.wte.weight" not in tensors:
        raise UserError(f"{path}: it lacks the token embedding transformer.wte.weight")
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    check_tokenizer_spec(state["tokenizer"], path)
    return state


# --- Hugging Face GPT-2 folders: sampled as they are ----------------------------------------------

def is_growgpt_safetensors(path: str | Path) -> bool:
    """Whether a .safetensors file carries growgpt's metadata (see export_safetensors). A file whose
    header cannot be read counts as growgpt's, so that load_safetensors names what is wrong with it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == GROWGPT_WEIGHTS_FORMAT
    except Exception:  # noqa: BLE001 - unreadable: let load_safetensors say why
        return True


def is_hf_path(path: str | Path) -> bool:
    """Whether `path` names Hugging Face GPT-2 weights rather than a growgpt checkpoint: a folder
    holding no growgpt run (no best.pt / ckpt.pt / growgpt model.safetensors), a shard index, a
    PyTorch .bin, or a .safetensors without growgpt's metadata."""
    path = Path(path)
    if path.is_dir():
        own = path / SAFETENSORS
        return not ((path / BEST).is_file() or (path / CHECKPOINT).is_file()
                    or (own.is_file() and is_growgpt_safetensors(own)))
    if path.name.endswith(".index.json") or path.suffix == ".bin":
        return True
    return path.suffix == ".safetensors" and path.is_file() and not is_growgpt_safetensors(path)


def is_hf_folder(path: str | Path) -> bool:
    """A folder holding config.json and Hugging Face weights (no growgpt run)."""
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file() and hf_weights_file(path) is not None \
        and is_hf_path(path)


def load_hf(path: str | Path, label: str = "--checkpoint") -> tuple[GPT, dict]:
    """(model, weights-only checkpoint dict) of Hugging Face GPT-2 weights (see model.load_hf_gpt2);
    the tokenizer is the one their vocabulary implies, anything else is a one-line UserError."""
    model, vocab = load_hf_gpt2(path, label=label)
    if GPT2_VOCAB_SIZE <= vocab <= padded_vocab_size(GPT2_VOCAB_SIZE):  # 50257, or padded as nanoGPT does
        spec = GPT2Tokenizer().spec()
    elif vocab == BYTES_VOCAB_SIZE:  # growgpt export of a bytes model
        spec = BytesTokenizer().spec()
    else:
        raise UserError(f"{label}: {path} has a vocabulary of {vocab} tokens; growgpt samples Hugging Face "
                        f"models with GPT-2's tokenizer ({GPT2_VOCAB_SIZE} tokens) or bytes ({BYTES_VOCAB_SIZE})")
    state = {"model": model.state_dict(), "model_args": model.config.to_dict(), "tokenizer": spec,
             "source": "huggingface"}
    return model, state
