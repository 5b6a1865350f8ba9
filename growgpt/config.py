"""Training configuration: one typed dataclass with nanoGPT's key names.

A config comes from defaults, then an optional TOML file, then `--set key=value` overrides, in that
order. Every key is checked: an unknown key fails with its name (and the closest known one), a value
of the wrong type or out of range fails naming the key. TOML may group keys in tables (`[model]`,
`[optim]`, ...); table names are ignored so flat nanoGPT-style files and grouped ones both work.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from growgpt.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


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
    # learning-rate schedule: linear warmup, then cosine decay to min_lr, counted from schedule_start
    # (a grow stage starts its own schedule where the previous stage stopped)
    decay_lr: bool = True
    schedule_start: int = 0
    warmup_iters: int = 2000
    lr_decay_iters: int = 600000
    min_lr: float = 6e-5
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _coerce(key: str, value: Any, source: str, from_text: bool = False) -> Any:
    """Check `value` against the type of field `key`; command-line text (`from_text`) is parsed."""
    kind = type(getattr(TrainConfig(), key))
    if from_text and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return text.lower() in ("true", "1", "yes")
            return kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
        except ValueError:
            raise UserError(f"config key '{key}' ({source}) expects {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if type(value) is not kind:
        raise UserError(f"config key '{key}' ({source}) expects {kind.__name__}, got {type(value).__name__} {value!r}")
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
