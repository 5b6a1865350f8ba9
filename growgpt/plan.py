"""Stage plans: which parts each stage trains on, with what schedule and replay (`grow PLAN.toml`).

    title = "enwiki, grown"                         # optional
    [model]  n_layer = 6  n_head = 6  n_embd = 384  block_size = 256
    [data]   wiki = "enwiki"  date = "20251101"  tokenizer = "gpt2"
    [train]  batch_size = 12  gradient_accumulation_steps = 8  device = "auto"   # any train key but the above
    [eval]   batches = 20  prompts = ["The history of"]  max_new_tokens = 100
    [[stage]] name = "a1"    parts = [1]        iters = 20000  learning_rate = 6e-4
    [[stage]] name = "a1-3"  parts = [1, 2, 3]  iters = 10000  learning_rate = 3e-4  warmup_iters = 500  replay = "proportional"

Parts come from a Wikipedia dump (`wiki`, `date`, optional `mirror`, `multistream`) or, with
`files = ["a.xml.bz2", ["b1.bz2", "b2.bz2"], ...]`, from local dump files (part n = entry n; paths
relative to the plan). Everything is checked before any work starts: unknown keys in any table (by
name), a stage with no parts or no iterations, a part the dump does not have, two stages with one
name, and things that cannot change between stages — the model shape and the tokenizer — set in a
stage. A stage's own keys: name, parts, iters, learning_rate, warmup_iters, min_lr, replay
("proportional" by size, the default, or "uniform" over parts), new_fraction (the share of batches
for the parts this stage adds), and for the first stage init_from.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growgpt.config import TrainConfig, read_toml
from growgpt.errors import UserError

MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias")
DATA_KEYS = ("wiki", "date", "mirror", "multistream", "files", "tokenizer", "min_chars", "val_fraction", "split_seed")
EVAL_KEYS = ("batches", "batch_size", "prompts", "max_new_tokens", "temperature", "top_k", "seed")
STAGE_KEYS = ("name", "parts", "iters", "learning_rate", "warmup_iters", "min_lr", "replay", "new_fraction",
              "init_from")
# Set by grow itself for every stage, so a plan may not set them in [train].
GROW_OWNED = ("out_dir", "dataset", "parts", "new_parts", "max_iters", "lr_decay_iters", "schedule_start",
              "init_from", "learning_rate", "warmup_iters", "replay", "new_fraction", "always_save_checkpoint",
              "eval_only")
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig)
                   if f.name not in MODEL_KEYS and f.name not in GROW_OWNED)


@dataclass
class Stage:
    name: str
    parts: list[int]
    iters: int
    learning_rate: float
    warmup_iters: int
    min_lr: float | None = None
    replay: str = "proportional"
    new_fraction: float = 0.0
    init_from: str = "scratch"


@dataclass
class DataSpec:
    wiki: str = ""
    date: str = "latest"
    mirror: str = ""
    multistream: bool = False
    files: list[list[Path]] = field(default_factory=list)
    tokenizer: str = "gpt2"
    min_chars: int = -1  # -1: extract's default
    val_fraction: float = 0.1
    split_seed: int = 1337  # the fixed salt of the train/val assignment


@dataclass
class EvalSpec:
    batches: int = 20
    batch_size: int = 0  # 0: the training batch_size
    prompts: list[str] = field(default_factory=lambda: ["The history of", "In 1990,", "The city is"])
    max_new_tokens: int = 60
    temperature: float = 0.8
    top_k: int = 200
    seed: int = 1234


@dataclass
class Plan:
    path: Path
    title: str
    model: dict[str, Any]
    data: DataSpec
    train: dict[str, Any]
    eval: EvalSpec
    stages: list[Stage]

    @property
    def all_parts(self) -> list[int]:
        return sorted({p for s in self.stages for p in s.parts})

    def stage_signature(self, index: int) -> str:
        """What a finished stage's results depend on: change any of it and the stage is redone."""
        relevant = {"model": self.model, "train": self.train, "data": {"tokenizer": self.data.tokenizer,
                    "val_fraction": self.data.val_fraction, "split_seed": self.data.split_seed},
                    "stages": [dataclasses.asdict(s) for s in self.stages[: index + 1]]}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_keys(table: dict, allowed: tuple[str, ...], where: str, source: Path, hint: str = "") -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            extra = f" (did you mean '{close[0]}'?)" if close else hint
            raise UserError(f"unknown key '{key}' in {where} of {source}{extra}")


def _typed(value: Any, kind: type, key: str, where: str, source: Path) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"key '{key}' in {where} of {source} expects {kind.__name__}, got {value!r}")
    return value


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    raw = read_toml(path, "plan file")
    _check_keys(raw, ("title", "model", "data", "train", "eval", "stage"), "the top level", path)
    model = dict(raw.get("model", {}))
    _check_keys(model, MODEL_KEYS, "[model]", path)
    for key in ("n_layer", "n_head", "n_embd", "block_size"):
        if key not in model:
            raise UserError(f"[model] of {path} must set '{key}'")
    train = dict(raw.get("train", {}))
    for key in train:
        if key in MODEL_KEYS:
            raise UserError(f"unknown key '{key}' in [train] of {path}: the model shape goes in [model]")
        if key in GROW_OWNED:
            raise UserError(f"unknown key '{key}' in [train] of {path}: grow sets it for each stage "
                            "(learning_rate, warmup_iters, replay, new_fraction go in each [[stage]])")
    _check_keys(train, TRAIN_KEYS, "[train]", path)
    data = _load_data(raw.get("data", {}), path)
    ev = _load_eval(raw.get("eval", {}), path)
    stages = _load_stages(raw.get("stage", []), path)
    plan = Plan(path=path, title=str(raw.get("title", path.stem)), model=model, data=data, train=train, eval=ev,
                stages=stages)
    # Let TrainConfig check every model/train value now, before any download or training.
    from growgpt.config import load_config

    load_config(base={**model, **train, "dataset": "(plan)", "learning_rate": stages[0].learning_rate})
    return plan


def _load_data(table: dict, path: Path) -> DataSpec:
    _check_keys(table, DATA_KEYS, "[data]", path)
    spec = DataSpec()
    for key in ("wiki", "date", "mirror", "tokenizer"):
        if key in table:
            setattr(spec, key, _typed(table[key], str, key, "[data]", path))
    if "multistream" in table:
        spec.multistream = _typed(table["multistream"], bool, "multistream", "[data]", path)
    for key in ("min_chars", "split_seed"):
        if key in table:
            setattr(spec, key, _typed(table[key], int, key, "[data]", path))
    if "val_fraction" in table:
        spec.val_fraction = _typed(table["val_fraction"], float, "val_fraction", "[data]", path)
        if not 0 < spec.val_fraction < 1:
            raise UserError(f"key 'val_fraction' in [data] of {path} must be between 0 and 1")
    if "files" in table:
        files = _typed(table["files"], list, "files", "[data]", path)
        for entry in files:
            group = entry if isinstance(entry, list) else [entry]
            if not group or not all(isinstance(f, str) for f in group):
                raise UserError(f"key 'files' in [data] of {path}: each part is a file path or a list of them")
            spec.files.append([(path.parent / f).resolve() for f in group])
    if bool(spec.files) == bool(spec.wiki):
        raise UserError(f"[data] of {path} needs either wiki (and date) for a Wikipedia dump or files for local dump parts")
    if spec.tokenizer != "gpt2":
        raise UserError(f"key 'tokenizer' in [data] of {path}: a corpus that grows in parts needs 'gpt2' "
                        "(a char vocabulary would change as parts are added)")
    return spec


def _load_eval(table: dict, path: Path) -> EvalSpec:
    _check_keys(table, EVAL_KEYS, "[eval]", path)
    spec = EvalSpec()
    kinds = {"batches": int, "batch_size": int, "prompts": list, "max_new_tokens": int, "temperature": float,
             "top_k": int, "seed": int}
    for key, value in table.items():
        setattr(spec, key, _typed(value, kinds[key], key, "[eval]", path))
    if spec.batches < 1 or spec.max_new_tokens < 1:
        raise UserError(f"[eval] of {path}: batches and max_new_tokens must be >= 1")
    if not all(isinstance(p, str) for p in spec.prompts):
        raise UserError(f"key 'prompts' in [eval] of {path} must be a list of strings")
    return spec


def _load_stages(items: list, path: Path) -> list[Stage]:
    if not isinstance(items, list) or not items:
        raise UserError(f"{path} has no [[stage]]: a plan needs at least one")
    stages: list[Stage] = []
    for number, table in enumerate(items, 1):
        where = f"[[stage]] {number}"
        if not isinstance(table, dict):
            raise UserError(f"{where} of {path} must be a table")
        for key in table:
            if key in MODEL_KEYS:
                raise UserError(f"{where} of {path} sets '{key}': the model shape cannot change between stages "
                                "(set it once in [model])")
            if key == "tokenizer":
                raise UserError(f"{where} of {path} sets 'tokenizer': the tokenizer cannot change between stages "
                                "(set it once in [data])")
        _check_keys(table, STAGE_KEYS, where, path)
        for key in ("name", "parts", "iters", "learning_rate"):
            if key not in table:
                raise UserError(f"{where} of {path} must set '{key}'")
        name = _typed(table["name"], str, "name", where, path)
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise UserError(f"{where} of {path}: stage name {name!r} must be a plain folder name")
        parts = _typed(table["parts"], list, "parts", where, path)
        if not parts:
            raise UserError(f"stage '{name}' of {path} has no parts")
        if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in parts):
            raise UserError(f"stage '{name}' of {path}: parts are part numbers >= 1, got {parts}")
        if len(set(parts)) != len(parts):
            raise UserError(f"stage '{name}' of {path} lists a part twice: {parts}")
        stage = Stage(name=name, parts=sorted(parts),
                      iters=_typed(table["iters"], int, "iters", where, path),
                      learning_rate=_typed(table["learning_rate"], float, "learning_rate", where, path),
                      warmup_iters=_typed(table.get("warmup_iters", 0), int, "warmup_iters", where, path))
        if "min_lr" in table:
            stage.min_lr = _typed(table["min_lr"], float, "min_lr", where, path)
        if "replay" in table:
            stage.replay = _typed(table["replay"], str, "replay", where, path)
            if stage.replay not in ("proportional", "uniform"):
                raise UserError(f"stage '{name}' of {path}: replay must be proportional or uniform, got {stage.replay!r}")
        if "new_fraction" in table:
            stage.new_fraction = _typed(table["new_fraction"], float, "new_fraction", where, path)
            if not 0 < stage.new_fraction < 1:
                raise UserError(f"stage '{name}' of {path}: new_fraction must be between 0 and 1")
        if "init_from" in table:
            if number > 1:
                raise UserError(f"stage '{name}' of {path} sets init_from: only the first stage may; "
                                "later stages continue from the stage before")
            stage.init_from = _typed(table["init_from"], str, "init_from", where, path)
        if stage.iters < 1:
            raise UserError(f"stage '{name}' of {path} has iters = {stage.iters}: it must train at least 1 iteration")
        if stage.learning_rate <= 0 or stage.warmup_iters < 0 or stage.warmup_iters >= stage.iters:
            raise UserError(f"stage '{name}' of {path}: learning_rate must be > 0 and 0 <= warmup_iters < iters")
        if any(s.name == name for s in stages):
            raise UserError(f"{path} has two stages named '{name}'")
        stages.append(stage)
    return stages


def check_parts_exist(plan: Plan, available: list[int]) -> None:
    for stage in plan.stages:
        for part in stage.parts:
            if part not in available:
                from growgpt.dumps import _ranges

                raise UserError(f"stage '{stage.name}' of {plan.path} names part {part}, which the dump does not have "
                                f"(parts: {_ranges(available)})")
