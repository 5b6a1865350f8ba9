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
that cools down from a given iteration (the curve itself is growgpt.train.lr_at).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
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
    schedule_start: int = 0
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
    wandb_run_name: str = "run"
    wandb_mode: str = "online"  # online | offline | disabled

    def validate(self) -> "TrainConfig":
        self._check_types()
        positive = ("eval_interval", "log_interval", "eval_iters", "batch_size", "block_size",
                    "gradient_accumulation_steps", "n_layer", "n_head", "n_embd", "lr_decay_iters")
        for key in positive:
            if getattr(self, key) <= 0:
                raise UserError(f"config key '{key}' must be > 0, got {getattr(self, key)}")
        for key in ("max_iters", "warmup_iters", "seed", "schedule_start"):
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
        stable_end = cooldown_start(self) - self.schedule_start
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
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = _int_to_float(key, value, "settings")
                setattr(self, key, value)
            if type(value) is not kind:
                raise UserError(f"config key '{key}' expects {kind.__name__}, got {type(value).__name__} {value!r}")
            if kind is float and not math.isfinite(value):
                raise UserError(f"config key '{key}' must be a finite number, got {value!r}")
            if kind is int and abs(value) > _int_limit(key):
                raise _too_large(key, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cooldown_start(cfg: TrainConfig) -> int:
    """The iteration at which the wsd cooldown begins (its LR is still learning_rate; the next one is
    lower), counted like the iteration number, from 0 — schedule_start included. An integer computed
    once: the cooldown lasts round(lr_decay_iters * cooldown_fraction) iterations (Python's round, halves
    to even), at least one, and
    ends at schedule_start + lr_decay_iters with min_lr. Meaningless for cosine (no cooldown)."""
    cooldown_iters = max(1, round(cfg.lr_decay_iters * cfg.cooldown_fraction))
    return cfg.schedule_start + cfg.lr_decay_iters - cooldown_iters  # cooldown_iters <= lr_decay_iters


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
    if kind is float and not math.isfinite(value):
        raise UserError(f"config key '{key}' ({source}) must be a finite number, got {value!r}")
    return value


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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- `base` <- TOML file <- `--set key=value` overrides, validated."""
    values: dict[str, Any] = {}
    for key, value in (base or {}).items():
        _check_key(key, "settings")
        values[key] = _coerce(key, value, "settings")
    if path is not None:
        path = Path(path)
        raw = read_toml(path, "config file")
        for key, value in _flatten(raw, str(path)).items():
            _check_key(key, str(path))
            values[key] = _coerce(key, value, str(path))
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        _check_key(key, "--set")
        values[key] = _coerce(key, value, "--set", from_text=True)
    return TrainConfig(**values).validate()
