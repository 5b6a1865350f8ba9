"""A trained run as a Hugging Face model folder: `growgpt export --run OUT_DIR --to HF_DIR`.

The folder is what `transformers` writes for GPT-2 (config.json, model.safetensors,
generation_config.json, the tokenizer files, a README.md model card), so
`AutoModelForCausalLM.from_pretrained(HF_DIR)`, `AutoTokenizer.from_pretrained(HF_DIR)`,
`pipeline("text-generation", model=HF_DIR)` and `lm_eval --model hf --model_args pretrained=HF_DIR`
load it with no growgpt code and compute what growgpt computes.

Tokenizers. `gpt2` and `bytes` export (`_tokenizer_files`). `char` is refused: its vocabulary is
the corpus's own characters with id 0 as separator, and a text holding a character outside it has
no encoding at all in growgpt, which no Hugging Face tokenizer reproduces without an unknown-token id
the model never saw. One difference remains by design: growgpt encodes `<|endoftext|>` typed inside
a text as ordinary text, Hugging Face tokenizers as the special token (the id growgpt puts between
documents).

The folder is written beside the target under a temporary name and renamed into place, so a crash
leaves no half-written export. An existing non-empty target is refused unless `overwrite=True`, and
even then a folder holding a growgpt run or the exported checkpoint itself is never replaced.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from growgpt import checkpoint as ckpt_io
from growgpt.errors import UserError
from growgpt.fsutil import fsync_dir
from growgpt.metrics import METRICS_FILE, perplexity, read_metrics
from growgpt.model import CONV1D_WEIGHTS, LAYER_NORM_EPS
from growgpt.tokenizer import BYTES_SEPARATOR_ID, BYTES_VOCAB_SIZE, GPT2_EOT, GPT2_VOCAB_SIZE, gpt2_files

# What marks a folder as a growgpt run (never replaced by an export).
_RUN_FILES = (ckpt_io.CHECKPOINT, ckpt_io.BEST, METRICS_FILE)
EXPORTABLE_TOKENIZERS = ("gpt2", "bytes")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (byte-level BPE spells every byte as a character)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# --- loading ---------------------------------------------------------------------------------------

def _load(run_or_checkpoint: str | Path, checkpoint: str) -> tuple[dict, Path, Path | None]:
    """(checkpoint state, its path, the run folder or None)."""
    source = Path(run_or_checkpoint)
    if source.is_file():
        path, run_dir = source, source.parent
    else:
        path = ckpt_io.find(source, checkpoint)
        run_dir = source if source.is_dir() else None
        if checkpoint in ("best", "last") and not path.is_file():
            raise UserError(f"no {checkpoint} checkpoint in {source} (expected {path.name}); "
                            f"try --checkpoint {'last' if checkpoint == 'best' else 'best'}")
    state = ckpt_io.load_weights(path)
    ckpt_io.model_config(state["model_args"], path)  # one-line errors for a malformed shape
    return state, path, run_dir


# --- weights ---------------------------------------------------------------------------------------

def hf_state_dict(state: dict, path: str | Path, vocab_size: int) -> tuple[dict[str, torch.Tensor], bool]:
    """(GPT2LMHeadModel's tensors for the checkpoint's weights, whether zero biases were added).
    The model is built (and so checked against its model_args) first.

    GPT-2's attention and MLP matrices are `Conv1D` weights, stored (in, out): the transpose of
    growgpt's `nn.Linear` (out, in), the reverse of `model.load_gpt2_weights`. The vocabulary rows
    growgpt pads for speed (50257 -> 50304) are cut back; the output layer is tied to the token
    embedding and stored once, as transformers does. A `bias = false` model gets zero biases: GPT-2's
    layout has them, and a zero bias adds nothing, so the exported model computes exactly the same
    function (the card and a printed line say so)."""
    model = ckpt_io.build_model(state, path)
    cfg = model.config
    if cfg.vocab_size < vocab_size:
        raise UserError(f"checkpoint {path}: its model has {cfg.vocab_size} token rows, its tokenizer {vocab_size}")
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        if key == "lm_head.weight":
            continue  # tied to transformer.wte.weight (config tie_word_embeddings)
        if key == "transformer.wte.weight":
            value = value[:vocab_size]
        elif key.endswith(CONV1D_WEIGHTS):
            value = value.t()
        out[key] = value.contiguous().clone()
    added = False
    if not cfg.bias:
        C = cfg.n_embd
        dtype = ours["transformer.wte.weight"].dtype
        zeros = {"ln_1.bias": C, "ln_2.bias": C, "attn.c_attn.bias": 3 * C, "attn.c_proj.bias": C,
                 "mlp.c_fc.bias": 4 * C, "mlp.c_proj.bias": C}
        for i in range(cfg.n_layer):
            for name, n in zeros.items():
                key = f"transformer.h.{i}.{name}"
                if key not in out:
                    out[key] = torch.zeros(n, dtype=dtype)
                    added = True
        if "transformer.ln_f.bias" not in out:
            out["transformer.ln_f.bias"] = torch.zeros(C, dtype=dtype)
            added = True
    return out, added


def hf_config(model_args: dict, vocab_size: int, eot_id: int, dtype: torch.dtype) -> dict:
    """config.json: a `GPT2Config` (architectures `GPT2LMHeadModel`) with the checkpoint's shape,
    `n_positions` = block_size, `gelu_new` (GELU, tanh approximation, as growgpt's MLP), LayerNorm eps
    1e-5 (torch's default, which growgpt's `nn.LayerNorm` uses), the run's dropout as resid/embd/attn
    dropout, tied input/output embeddings."""
    dropout = float(model_args["dropout"])
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": vocab_size,
        "n_positions": model_args["block_size"],
        "n_ctx": model_args["block_size"],
        "n_embd": model_args["n_embd"],
        "n_layer": model_args["n_layer"],
        "n_head": model_args["n_head"],
        "n_inner": None,  # 4 * n_embd, as growgpt's MLP
        "activation_function": "gelu_new",
        "resid_pdrop": dropout,
        "embd_pdrop": dropout,
        "attn_pdrop": dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "use_cache": True,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "tie_word_embeddings": True,
        "torch_dtype": str(dtype).removeprefix("torch."),  # transformers 4
        "dtype": str(dtype).removeprefix("torch."),  # transformers 5
    }


# --- tokenizer -------------------------------------------------------------------------------------

def _tokenizer_files(name: str, block_size: int) -> tuple[dict[str, bytes], int, int]:
    """({file name: bytes} of the tokenizer, vocabulary size, id of <|endoftext|>): `vocab.json` +
    `merges.txt`, `tokenizer.json` (byte-level BPE, written here as JSON: no `tokenizers` or
    `transformers` is needed to export), `tokenizer_config.json`, `special_tokens_map.json`.

    `gpt2`: vocab.json and merges.txt are GPT-2's own `encoder.json` and `vocab.bpe`, the
    sha256-checked files growgpt tokenizes with (see `tokenizer.gpt2_files`). `bytes`: its 256 byte
    ids are exactly a byte-level BPE with no merges (each byte its own token, id = byte value) and id
    256, growgpt's document separator, is `<|endoftext|>` (bos/eos)."""
    if name == "gpt2":
        vocab_bpe, encoder_json = gpt2_files()
        vocab = json.loads(encoder_json.read_text(encoding="utf-8"))
        merges_text = vocab_bpe.read_text(encoding="utf-8")
        merges = [line for line in merges_text.splitlines()[1:] if line.strip()]  # line 1: "#version: 0.2"
        vocab_size, eot = GPT2_VOCAB_SIZE, GPT2_VOCAB_SIZE - 1
        if vocab.get(GPT2_EOT) != eot or len(vocab) != vocab_size:
            raise UserError(f"{encoder_json} is not GPT-2's vocabulary ({GPT2_EOT} is not id {eot})")
        vocab_json, merges_txt = encoder_json.read_bytes(), vocab_bpe.read_bytes()
        use_regex = True
    elif name == "bytes":
        table = bytes_to_unicode()
        vocab = {table[b]: b for b in range(256)}
        vocab[GPT2_EOT] = BYTES_SEPARATOR_ID
        merges = []
        vocab_size, eot = BYTES_VOCAB_SIZE, BYTES_SEPARATOR_ID
        vocab_json = json.dumps(vocab, ensure_ascii=False).encode("utf-8")
        merges_txt = b"#version: 0.2\n"
        use_regex = False  # no merges: splitting into words first changes nothing, skipping it is faster
    else:
        raise UserError(f"export supports the tokenizers {', '.join(EXPORTABLE_TOKENIZERS)}, not {name!r}")
    special = {"id": eot, "content": GPT2_EOT, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": True, "special": True}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    tokenizer_config = {
        "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": GPT2_EOT,
        "eos_token": GPT2_EOT,
        "unk_token": GPT2_EOT,
        "clean_up_tokenization_spaces": False,  # decode gives back the text exactly, as growgpt's does
        "model_max_length": block_size,
        "added_tokens_decoder": {str(eot): {k: v for k, v in special.items() if k != "id"}},
    }
    special_map = {"bos_token": GPT2_EOT, "eos_token": GPT2_EOT, "unk_token": GPT2_EOT}
    files = {
        "vocab.json": vocab_json,
        "merges.txt": merges_txt,
        "tokenizer.json": _json_bytes(tokenizer_json, indent=None),
        "tokenizer_config.json": _json_bytes(tokenizer_config),
        "special_tokens_map.json": _json_bytes(special_map),
    }
    return files, vocab_size, eot


def _json_bytes(obj, indent: int | None = 2) -> bytes:
    return (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode("utf-8")


# --- model card ------------------------------------------------------------------------------------

def _eval_record(run_dir: Path | None, iter_num) -> dict | None:
    """The run's eval record at the checkpoint's iteration (else its last eval record)."""
    if run_dir is None:
        return None
    try:
        evals = [r for r in read_metrics(run_dir) if r.get("kind") == "eval"]
    except UserError:
        return None
    at = [r for r in evals if r["iter"] == iter_num]
    return (at or evals or [None])[-1]


def _model_card(state: dict, path: Path, run_dir: Path | None, n_params: int, zero_bias: bool) -> str:
    """README.md: data, tokens trained, val loss / bits per byte from the run's metrics.jsonl, how it
    was exported; the license is left to the user."""
    args, tok = state["model_args"], state["tokenizer"]
    config = state.get("config") if isinstance(state.get("config"), dict) else {}
    iter_num = state.get("iter_num")
    dataset = state.get("dataset") or config.get("dataset") or ""
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags:", "- gpt2", "- growgpt",
             "---", "", f"# {run_dir.name if run_dir else path.stem}", "",
             "A GPT-2-architecture language model trained with growgpt and exported as a Hugging Face "
             "`GPT2LMHeadModel`.", "", "## Model", "",
             f"- {args['n_layer']} layers, {args['n_head']} heads, width {args['n_embd']}, context "
             f"{args['block_size']} tokens, {n_params:,} parameters (embeddings counted once)",
             f"- tokenizer: `{tok['name']}`" + (" (GPT-2 BPE, 50257 tokens)" if tok["name"] == "gpt2" else
                                                " (UTF-8 bytes 0-255, `<|endoftext|>` = 256)"),
             f"- biases: {'yes' if args['bias'] else 'none in training; exported as zeros (exactly equivalent)'}",
             f"- dropout during training: {args['dropout']}", "", "## Training", ""]
    if dataset:
        lines.append(f"- data: growgpt dataset `{Path(str(dataset)).name}`")
    if type(iter_num) is int:
        lines.append(f"- iterations: {iter_num:,}")
        keys = ("gradient_accumulation_steps", "batch_size", "block_size")
        if all(type(config.get(k)) is int for k in keys):
            per_iter = math.prod(config[k] for k in keys)
            lines.append(f"- tokens trained: {iter_num * per_iter:,} ({per_iter:,} per iteration)")
    record = _eval_record(run_dir, iter_num)
    if record:
        lines.append(f"- val loss {record['val_loss']:.4f} (nats/token, perplexity "
                     f"{perplexity(record['val_loss']):.2f}) at iteration {record['iter']}")
        if record.get("val_bpb") is not None:
            lines.append(f"- val bits per byte {record['val_bpb']:.4f} at iteration {record['iter']}")
    elif isinstance(state.get("best_val_loss"), float) and math.isfinite(state["best_val_loss"]):
        lines.append(f"- best val loss {state['best_val_loss']:.4f} (nats/token)")
    lines += ["", "## Export", "",
              f"Exported by `growgpt export` from `{path.name}`: growgpt's `nn.Linear` weights transposed into "
              "GPT-2's `Conv1D` layout, the vocabulary rows growgpt pads for speed cut off, the output layer "
              "tied to the token embedding." + (" growgpt trained without biases; GPT-2's layout has them, so "
                                                 "they are written as zeros, which changes no output."
                                                 if zero_bias else ""),
              "",
              "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline",
              'model = AutoModelForCausalLM.from_pretrained("HF_DIR")',
              'tokenizer = AutoTokenizer.from_pretrained("HF_DIR")',
              'print(pipeline("text-generation", model="HF_DIR")("The history of", max_new_tokens=40))',
              "```", "",
              "Evaluate: `lm_eval --model hf --model_args pretrained=HF_DIR --tasks hellaswag`", "",
              "`<|endoftext|>` typed in a text is the special token here; growgpt's own encoder reads it as "
              "plain text.", "", "## License", "",
              "Not set: choose one that fits the training data's license before sharing this model.", ""]
    return "\n".join(lines)


# --- writing ---------------------------------------------------------------------------------------

def _check_target(to: Path, ckpt_path: Path, overwrite: bool) -> None:
    if to.exists() and not to.is_dir():
        raise UserError(f"export target {to} is a file, not a folder")
    if to.is_dir() and any(to.iterdir()):
        if not overwrite:
            raise UserError(f"export target {to} exists and is not empty (pass --overwrite to replace it)")
        resolved = to.resolve()
        if resolved == ckpt_path.resolve().parent or resolved in ckpt_path.resolve().parents:
            raise UserError(f"export target {to} holds the checkpoint being exported: choose another folder")
        run_file = next((n for n in _RUN_FILES if (to / n).exists()), None)
        if run_file:
            raise UserError(f"export target {to} holds a growgpt run ({run_file}): it is never replaced, "
                            "choose another folder")


def _write_folder(files: dict[str, bytes], tensors: dict[str, torch.Tensor], to: Path) -> None:
    from safetensors.torch import save_file

    to = Path(os.path.abspath(to))  # "." and "x/.." have a name to put a temporary folder beside
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.tmp-{os.getpid()}")
    old = to.with_name(f".{to.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        ckpt_io.set_plain_file_mode(tmp / "model.safetensors")  # as open() creates the other files
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        for child in tmp.iterdir():
            with open(child, "rb+") as f:
                os.fsync(f.fileno())
        fsync_dir(tmp)
        if to.is_dir():
            if any(to.iterdir()):
                os.replace(to, old)  # checked by _check_target: overwrite was asked for
            else:
                to.rmdir()
        os.replace(tmp, to)
        fsync_dir(to.parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not to.exists():
            os.replace(old, to)  # put the previous export back
        raise UserError(f"cannot write export {to}: {e.strerror or e}") from None
    shutil.rmtree(old, ignore_errors=True)


def export(run_or_checkpoint: str | Path, to: str | Path, checkpoint: str = "best", overwrite: bool = False,
           log: Callable[[str], None] | None = print) -> Path:
    """Write run `run_or_checkpoint`'s checkpoint (`best`, `last`, `auto` or a path; or the checkpoint
    file itself) to the folder `to` as a Hugging Face GPT-2 model (see the module docstring).
    Returns `to`. `log` receives the lines worth printing (None: silent)."""
    to = Path(to)
    state, path, run_dir = _load(run_or_checkpoint, checkpoint)
    name = state["tokenizer"].get("name")
    if name not in EXPORTABLE_TOKENIZERS:
        raise UserError(f"cannot export {path}: its tokenizer is '{name}', which has no Hugging Face equivalent "
                        f"(export supports {' and '.join(EXPORTABLE_TOKENIZERS)})")
    _check_target(to, path, overwrite)
    args = state["model_args"]
    files, vocab_size, eot = _tokenizer_files(name, args["block_size"])
    tensors, zero_bias = hf_state_dict(state, path, vocab_size)
    dtype = tensors["transformer.wte.weight"].dtype
    files["config.json"] = _json_bytes(hf_config(args, vocab_size, eot, dtype))
    files["generation_config.json"] = _json_bytes({"bos_token_id": eot, "eos_token_id": eot})
    n_params = sum(t.numel() for t in tensors.values())
    files["README.md"] = _model_card(state, path, run_dir, n_params, zero_bias).encode("utf-8")
    _write_folder(files, tensors, to)
    if log:
        if zero_bias:
            log("the model has no biases (bias = false): GPT-2's layout has them, "
                "written as zeros (exactly equivalent)")
        log(f"exported {path} ({name} tokenizer, {n_params:,} parameters) to {to}")
    return to
