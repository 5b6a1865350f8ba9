"""Training configuration: one typed dataclass with nanoGPT's key names.

A config comes from defaults, then an optional TOML file, then `--set key=value` overrides, in that
order. Every key is checked: an unknown key fails with its name (and the closest known one), a value
of the wrong type or out of range fails naming the key. TOML may group keys in tables (`[model]`,
`[optim]`, ...); table names are ignored so flat nanoGPT-style files and grouped ones both work.

Numbers are checked for what the code can use, whatever their source (TOML, `--set`, a `base` dict):
a float key must be finite (no nan or inf), an integer key must be a whole number (`2e3` is 2000,
`1.5` is refused, never truncated) no larger than MAX_INT = 2**53, the largest integer a float or a
JSON reader holds exactly (iteration numbers go through both), and `seed` must be below 2**63, so
that `seed + rank + iteration` still fits the unsigned 64 bits `torch.manual_seed` takes. Whether a
model of that shape fits in memory is checked by the trainer (it needs the device and the vocabulary).

The learning-rate schedule's keys are checked together (a wsd warmup may not run into its cooldown);
`cooldown_start` says where a wsd cooldown begins and `cooldown_branch` turns a config into a branch
that cools down from a given iteration (the curve itself is growgpt.train.lr_at). `schedule_start` is
an iteration number or, with init_from = "resume" only, the string "resume" (SCHEDULE_START_RESUME):
the trainer replaces it with the checkpoint's iteration, so the warmup and the decay start afresh there
(lr_decay_iters then counts from that iteration, as it counts from a grow stage's first one).

FIELD_HELP gives every key a one-line meaning; `config_help` turns it and the defaults into the key
list `growgpt train --help` prints, so the help cannot drift from the dataclass. Overrides may also be
written nanoGPT's way, `--key=value` (`--compile=False`), parsed and checked exactly as `--set`.
A config file is TOML: a `.py` file (nanoGPT's format) is refused before it is read, with a hint to
convert it; a file with another suffix is read when it parses as TOML (`/dev/stdin`, `<(...)`).
`wandb_run_name = ""` (the default) becomes `<out_dir's name>-<YYYYmmdd-HHMMSS>` when the config is
loaded with `wandb_log` on.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import time
import tomllib
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from growgpt.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
SCHEDULES = ("cosine", "wsd", "constant")
COOLDOWN_SHAPES = ("linear", "1-sqrt")
MAX_INT = 2**53  # the largest integer that floats (the LR schedule) and JSON readers (metrics) hold exactly
MAX_SEED = 2**63 - 1  # seed + rank + iteration must stay below 2**64 for torch.manual_seed
SCHEDULE_START_RESUME = "resume"  # schedule_start's one non-integer value: the checkpoint's iteration


@dataclass
class TrainConfig:
    # I/O
    out_dir: str = "out"
    dataset: str = ""  # a DATA_DIR written by `growgpt prepare` (one dataset, or a corpus of parts)
    # which parts of a corpus to train on, and how to mix them (see growgpt.data)
    parts: str = ""  # comma-separated part names; "" = every part
    replay: str = "proportional"  # proportional (by tokens) | uniform (over parts)
    new_parts: str = ""  # with new_fraction > 0: these parts get new_fraction of the batches
    new_fraction: float = 0.0
    eval_interval: int = 2000
    log_interval: int = 1
    eval_iters: int = 200
    eval_only: bool = False
    always_save_checkpoint: bool = True
    init_from: str = "scratch"  # scratch | resume | path to a GPT-2 HF folder or .safetensors file
    # data
    batch_size: int = 12
    block_size: int = 1024
    gradient_accumulation_steps: int = 40
    # model
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    # AdamW
    learning_rate: float = 6e-4
    max_iters: int = 600000
    weight_decay: float = 1e-1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    # learning-rate schedule, counted from schedule_start (a grow stage starts its own schedule where the
    # previous stage stopped) over a horizon of lr_decay_iters; see growgpt.train.lr_at.
    # cosine: linear warmup, then cosine decay to min_lr at the horizon.
    # wsd (warmup-stable-decay): the same warmup, then constant learning_rate, then over the last
    # cooldown_fraction of the horizon a decay to min_lr shaped linear or 1-sqrt (Hägele et al. 2024,
    # arXiv 2405.18392: a short 1-sqrt cooldown matches cosine, and can branch off a constant-LR trunk).
    # constant: the same warmup, then learning_rate with no decay at all: a wsd trunk, which grow's wsd
    # plans train, branching a cooldown (cooldown_branch) off it at each stage's end.
    decay_lr: bool = True  # false: constant learning_rate, whatever the schedule
    schedule: str = "cosine"  # cosine | wsd | constant
    schedule_start: int | str = 0  # or "resume" (with init_from = "resume"): the checkpoint's iteration
    warmup_iters: int = 2000
    lr_decay_iters: int = 600000
    min_lr: float = 6e-5
    cooldown_fraction: float = 0.2  # wsd: the final share of lr_decay_iters spent cooling down, in (0, 1]
    cooldown_shape: str = "1-sqrt"  # wsd: linear | 1-sqrt
    # system
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = True
    seed: int = 1337
    peak_flops: float = 0.0  # dense peak FLOP/s for MFU; 0 = look the device up (or measure on CPU)
    # logging (JSONL metrics are always written to out_dir/metrics.jsonl)
    tensorboard_log: bool = False
    wandb_log: bool = False
    wandb_project: str = "growgpt"
    wandb_run_name: str = ""  # "" = <out_dir name>-<YYYYmmdd-HHMMSS>, set when loaded with wandb_log
    wandb_mode: str = "online"  # online | offline | disabled

    def validate(self) -> TrainConfig:
        self._check_types()
        positive = ("eval_interval", "log_interval", "eval_iters", "batch_size", "block_size",
                    "gradient_accumulation_steps", "n_layer", "n_head", "n_embd", "lr_decay_iters")
        for key in positive:
            if getattr(self, key) <= 0:
                raise UserError(f"config key '{key}' must be > 0, got {getattr(self, key)}")
        if self.schedule_start == SCHEDULE_START_RESUME and self.init_from != "resume":
            raise UserError(f"config key 'schedule_start' = \"resume\" starts a fresh schedule at the checkpoint's "
                            f"iteration: it needs init_from = \"resume\" (init_from is {self.init_from!r})")
        for key in ("max_iters", "warmup_iters", "seed", "schedule_start"):
            if key == "schedule_start" and self.schedule_start == SCHEDULE_START_RESUME:
                continue
            if getattr(self, key) < 0:
                raise UserError(f"config key '{key}' must be >= 0, got {getattr(self, key)}")
        for key in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "peak_flops"):
            if getattr(self, key) < 0:
                raise UserError(f"config key '{key}' must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"config key 'dropout' must be in [0, 1), got {self.dropout}")
        for key in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise UserError(f"config key '{key}' must be in [0, 1), got {getattr(self, key)}")
        if self.n_embd % self.n_head:
            raise UserError(f"config key 'n_embd' ({self.n_embd}) must be a multiple of 'n_head' ({self.n_head})")
        if self.device not in DEVICES:
            raise UserError(f"config key 'device' must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"config key 'dtype' must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.wandb_mode not in ("online", "offline", "disabled"):
            raise UserError(f"config key 'wandb_mode' must be online, offline or disabled, got {self.wandb_mode!r}")
        if self.replay not in ("proportional", "uniform"):
            raise UserError(f"config key 'replay' must be proportional or uniform, got {self.replay!r}")
        self._check_schedule()
        if not 0.0 <= self.new_fraction < 1.0:
            raise UserError(f"config key 'new_fraction' must be in [0, 1), got {self.new_fraction}")
        if self.new_fraction > 0 and not self.new_parts:
            raise UserError("config key 'new_fraction' needs 'new_parts': the parts that get that fraction")
        if not self.dataset:
            raise UserError("config key 'dataset' is required: the DATA_DIR written by `growgpt prepare`")
        if self.init_from in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"):
            raise UserError(
                f"config key 'init_from' = {self.init_from!r}: growgpt loads GPT-2 weights from disk only; "
                "give the path of a local Hugging Face folder (config.json + model.safetensors) or a .safetensors file"
            )
        return self

    def _check_schedule(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UserError(f"config key 'schedule' must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise UserError(f"config key 'cooldown_shape' must be one of {', '.join(COOLDOWN_SHAPES)}, "
                            f"got {self.cooldown_shape!r}")
        if not 0.0 < self.cooldown_fraction <= 1.0:
            raise UserError(f"config key 'cooldown_fraction' must be in (0, 1], got {self.cooldown_fraction}")
        stable_end = self.lr_decay_iters - _cooldown_iters(self)  # from schedule_start, whatever it is
        if self.schedule == "wsd" and self.warmup_iters > stable_end:
            # The cooldown would begin before the warmup reached learning_rate: the curve would jump.
            raise UserError(
                f"config key 'warmup_iters' ({self.warmup_iters}) must be <= the wsd cooldown start "
                f"({stable_end} = lr_decay_iters {self.lr_decay_iters} less its cooldown_fraction "
                f"{self.cooldown_fraction:g}): lower warmup_iters or cooldown_fraction, or raise lr_decay_iters")

    def _check_types(self) -> None:
        """Every value of the kind its key declares (also for a TrainConfig built directly), every
        number finite and every integer within MAX_INT."""
        for key, kind in _KINDS.items():
            value = getattr(self, key)
            if key == "schedule_start" and value == SCHEDULE_START_RESUME:
                continue
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = _int_to_float(key, value, "settings")
                setattr(self, key, value)
            if type(value) is not kind:
                raise UserError(f"config key '{key}' expects {kind.__name__}, got {type(value).__name__} {value!r}")
            # (isinstance, not `kind is`: type(value) is kind here, and the type checker sees it)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"config key '{key}' must be a finite number, got {value!r}")
            if kind is int and isinstance(value, int) and abs(value) > _int_limit(key):
                raise _too_large(key, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cooldown_start(cfg: TrainConfig) -> int:
    """The iteration at which the wsd cooldown begins (its LR is still learning_rate; the next one is
    lower), counted like the iteration number, from 0 — schedule_start included. An integer computed
    once: the cooldown lasts round(lr_decay_iters * cooldown_fraction) iterations (Python's round, halves
    to even), at least one, and
    ends at schedule_start + lr_decay_iters with min_lr. Meaningless for cosine (no cooldown)."""
    if not isinstance(cfg.schedule_start, int):
        raise ValueError(f"schedule_start = {cfg.schedule_start!r} is not resolved to an iteration yet")
    return cfg.schedule_start + cfg.lr_decay_iters - _cooldown_iters(cfg)  # cooldown_iters <= lr_decay_iters


def _cooldown_iters(cfg: TrainConfig) -> int:
    return cooldown_length(cfg.lr_decay_iters, cfg.cooldown_fraction)


def cooldown_length(iters: int, fraction: float) -> int:
    """Iterations of a cooldown over `fraction` of `iters`: rounded (halves to even), at least one."""
    return max(1, round(iters * fraction))


def cooldown_branch(cfg: TrainConfig, start: int, iters: int) -> TrainConfig:
    """`cfg` made into a branch that cools down from iteration `start` over `iters` iterations and stops
    there: wsd with no warmup, the whole horizon a cooldown (cooldown_fraction 1). Its LR is learning_rate
    at `start` — the constant LR of a wsd trunk past its warmup, so the branch continues the trunk without
    a jump — and min_lr at `start + iters`, with cfg's cooldown_shape. A trunk's own cooldown is the
    branch at cooldown_start(trunk) over the rest of its horizon."""
    return dataclasses.replace(cfg, schedule="wsd", warmup_iters=0, cooldown_fraction=1.0, schedule_start=start,
                               lr_decay_iters=iters, max_iters=start + iters).validate()


_FIELDS = {f.name: f for f in fields(TrainConfig)}
_KINDS: dict[str, type] = {name: type(getattr(TrainConfig(), name)) for name in _FIELDS}
_MAX_DIGITS = 30  # text numbers with more digits than this are refused before being converted (cheap)


# One line per key for `growgpt train --help` (tests check every field has one).
FIELD_HELP: dict[str, str] = {
    "out_dir": "the run folder: checkpoints, metrics.jsonl, model.safetensors",
    "dataset": "a DATA_DIR written by `growgpt prepare` (required)",
    "parts": "comma-separated parts of a corpus to train on; \"\" = every part",
    "replay": "how parts are mixed: proportional (by tokens) or uniform (over parts)",
    "new_parts": "with new_fraction > 0: the parts that get new_fraction of the batches",
    "new_fraction": "share of batches drawn from new_parts, in [0, 1); 0 = replay rule only",
    "eval_interval": "evaluate and checkpoint every this many iterations",
    "log_interval": "print and log a train line every this many iterations",
    "eval_iters": "batches per split in each evaluation",
    "eval_only": "evaluate once and stop (no training, no checkpoint)",
    "always_save_checkpoint": "save ckpt.pt at every evaluation, not only when val loss improves",
    "init_from": "scratch | resume | path to a local GPT-2 HF folder or .safetensors file",
    "batch_size": "sequences per micro-batch (per process)",
    "block_size": "context length in tokens",
    "gradient_accumulation_steps": "micro-batches per optimizer step, over all DDP processes",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block (n_embd must be a multiple)",
    "n_embd": "embedding width",
    "dropout": "dropout probability, in [0, 1)",
    "bias": "biases in linear layers and LayerNorms",
    "learning_rate": "peak learning rate (AdamW)",
    "max_iters": "stop after this many iterations (counted from 0, across resumes)",
    "weight_decay": "AdamW weight decay on 2-D weights",
    "beta1": "AdamW beta1, in [0, 1)",
    "beta2": "AdamW beta2, in [0, 1)",
    "grad_clip": "clip the gradient norm to this; 0 disables clipping",
    "decay_lr": "false: constant learning_rate throughout, no warmup",
    "schedule": "cosine | wsd (warmup-stable-decay) | constant (a wsd trunk)",
    "schedule_start": "iteration the schedule counts from (grow sets it per stage); \"resume\" (with "
                      "init_from = resume): a fresh warmup and decay from the checkpoint's iteration",
    "warmup_iters": "linear warmup iterations",
    "lr_decay_iters": "schedule horizon: the LR reaches min_lr this many iterations after schedule_start",
    "min_lr": "learning rate at the end of the decay",
    "cooldown_fraction": "wsd: final share of lr_decay_iters spent cooling down, in (0, 1]",
    "cooldown_shape": "wsd: cooldown curve, linear or 1-sqrt",
    "device": "auto | cpu | cuda | mps",
    "dtype": "auto | float32 | bfloat16 | float16 (auto: bfloat16, else float16, on CUDA; float32 elsewhere)",
    "compile": "torch.compile the model",
    "seed": "random seed (data order, init, dropout); below 2**63",
    "peak_flops": "dense peak FLOP/s for MFU; 0 = look the device up (or measure on CPU)",
    "tensorboard_log": "also log to TensorBoard in out_dir (needs the tensorboard extra)",
    "wandb_log": "also log to Weights & Biases (needs the wandb extra)",
    "wandb_project": "W&B project name",
    "wandb_run_name": "W&B run name; \"\" = out_dir's folder name + start time",
    "wandb_mode": "online | offline (no network) | disabled",
}


def format_default(value: Any) -> str:
    """A default as it is written in TOML: `true`, `"cosine"`, `0.0006`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def config_help() -> str:
    """Every config key with its TOML default and its meaning, one line each, in declaration order."""
    rows = [(f"{f.name} = {format_default(f.default)}", FIELD_HELP.get(f.name, "")) for f in fields(TrainConfig)]
    width = max(len(left) for left, _ in rows)
    return "\n".join(f"  {left:<{width}}  {meaning}" for left, meaning in rows)


def default_run_name(out_dir: str, now: float | None = None) -> str:
    """The W&B run name when none is set: out_dir's folder name and the local start time."""
    name = Path(out_dir).name or Path(out_dir).resolve().name or "run"
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def _int_limit(key: str) -> int:
    return MAX_SEED if key == "seed" else MAX_INT


def _brief(value: Any) -> str:
    """A number for a message: a 5000-digit one would flood the terminal."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text)} characters)"


def _too_large(key: str, value: Any, source: str = "") -> UserError:
    limit = "2**63 - 1" if key == "seed" else "2**53"
    where = f" ({source})" if source else ""
    return UserError(f"config key '{key}'{where} is too large: {_brief(value)} (at most {limit} = {_int_limit(key):,})")


def _int_to_float(key: str, value: int, source: str) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range (TOML and --set allow any length)
        raise UserError(f"config key '{key}' ({source}) must be a finite number, got {_brief(value)}") from None


def _parse_text(key: str, kind: type, text: str, source: str) -> Any:
    """A `--set` value as the key's kind. Integers may be written as floats (`2e3`, `2000.0`) when
    they are whole; huge exponents are refused before Python builds a giant integer from them."""
    bad_kind = UserError(f"config key '{key}' ({source}) expects {kind.__name__}, got {_brief(repr(text))}")
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise bad_kind
        return text.lower() in ("true", "1", "yes")
    if kind is float:
        try:
            return float(text)  # non-finite values are refused by _coerce
        except ValueError:
            raise bad_kind from None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise bad_kind from None
    if not number.is_finite():
        raise UserError(f"config key '{key}' ({source}) expects a finite whole number, got {text!r}")
    if number.adjusted() >= _MAX_DIGITS:
        raise _too_large(key, text, source)
    if number != number.to_integral_value():
        raise UserError(f"config key '{key}' ({source}) expects a whole number, got {text!r}")
    return int(number)


def _coerce(key: str, value: Any, source: str, from_text: bool = False) -> Any:
    """Check `value` against the type of field `key`; command-line text (`from_text`) is parsed."""
    kind = _KINDS[key]
    if key == "schedule_start" and isinstance(value, str) and not (from_text and _is_number_text(value)):
        text = _unquote(value).strip() if from_text else value
        if text != SCHEDULE_START_RESUME:
            raise UserError(f"config key 'schedule_start' ({source}) expects a whole number or \"resume\", "
                            f"got {_brief(repr(value))}")
        return SCHEDULE_START_RESUME
    if from_text and kind is not str:
        value = _parse_text(key, kind, value.strip(), source)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = _int_to_float(key, value, source)
    if kind is int and isinstance(value, float):  # TOML `2000.0` or `2e3`; `1.5` is not an integer
        if not (math.isfinite(value) and value.is_integer()):
            raise UserError(f"config key '{key}' ({source}) expects a whole number, got {value!r}")
        value = int(value)
    if kind is int and type(value) is int and abs(value) > _int_limit(key):
        raise _too_large(key, value, source)
    if type(value) is not kind:
        shown = "a table" if isinstance(value, dict) else f"{type(value).__name__} {value!r}"
        raise UserError(f"config key '{key}' ({source}) expects {kind.__name__}, got {shown}")
    if isinstance(value, float) and not math.isfinite(value):  # type(value) is kind, as checked above
        raise UserError(f"config key '{key}' ({source}) must be a finite number, got {value!r}")
    return value


def _is_number_text(text: str) -> bool:
    try:
        Decimal(text.strip())
    except InvalidOperation:
        return False
    return True


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a one-line UserError naming it."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path} is not valid TOML: {e}") from None


def _check_key(key: str, source: str) -> None:
    if key not in _FIELDS:
        close = difflib.get_close_matches(key, _FIELDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown config key '{key}' in {source}{hint}")


def _flatten(table: dict[str, Any], source: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and key in _FIELDS:  # `n_layer = {...}` or `[n_layer]`: not a group
            raise UserError(f"config key '{key}' ({source}) expects {_KINDS[key].__name__}, got a table")
        if isinstance(value, dict):
            for inner_key, inner in _flatten(value, source).items():
                flat[inner_key] = inner
        else:
            flat[key] = value
    return flat


def read_config_file(path: Path) -> dict[str, Any]:
    """A training config file. `.py` (nanoGPT's format: Python, not TOML) is refused before it is
    read, even when its lines happen to be valid TOML; any other suffix is read as TOML, and one that
    is not `.toml` and does not parse is refused as not a TOML config."""
    suffix = path.suffix.lower()
    if suffix == ".py":
        raise UserError(
            f"config file {path} is Python (nanoGPT's format); growgpt reads TOML: copy its `key = value` lines "
            f"into {path.with_suffix('.toml').name}, writing true/false for True/False and quoting strings")
    if suffix == ".toml":
        return read_toml(path, "config file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"config file {path} is not a TOML config (growgpt reads TOML; name it .toml): {e}") from None


def _split_override(item: str) -> tuple[str, str, str, bool]:
    """(key, value, source, nanogpt) of `key=value` (`--set`) or `--key=value` (nanoGPT's style)."""
    nanogpt = item.startswith("--")
    if nanogpt:
        body = item[2:]
        if "=" not in body:
            raise UserError(f"{_brief(item)}: write a config override as --key=value or --set key=value")
        key, value = body.split("=", 1)
        key = key.strip()
        return key, value, _brief(item), True
    if "=" not in item:
        raise UserError(f"--set expects key=value, got {item!r}")
    key, value = item.split("=", 1)
    return key.strip(), value, "--set", False


def _unquote(value: str) -> str:
    """nanoGPT style passes values through Python's literal_eval: `--init_from='resume'` is `resume`."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- `base` <- TOML file <- overrides, validated. An override is `key=value` (`--set`)
    or nanoGPT's `--key=value`; both are parsed and checked alike, applied in order."""
    values: dict[str, Any] = {}
    for key, value in (base or {}).items():
        _check_key(key, "settings")
        values[key] = _coerce(key, value, "settings")
    if path is not None:
        path = Path(path)
        raw = read_config_file(path)
        for key, value in _flatten(raw, str(path)).items():
            _check_key(key, str(path))
            values[key] = _coerce(key, value, str(path))
    for item in overrides or []:
        key, value, source, nanogpt = _split_override(item)
        _check_key(key, source)
        if nanogpt and _KINDS[key] is str:
            value = _unquote(value)
        values[key] = _coerce(key, value, source, from_text=True)
    cfg = TrainConfig(**values).validate()
    if cfg.wandb_log and not cfg.wandb_run_name:
        cfg.wandb_run_name = default_run_name(cfg.out_dir)
    return cfg
