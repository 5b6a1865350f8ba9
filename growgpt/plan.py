"""Stage plans: which parts each stage trains on, with what schedule and replay (`grow PLAN.toml`).

    title = "enwiki, grown"                         # optional
    [model]  n_layer = 6  n_head = 6  n_embd = 384  block_size = 256
    [data]   wiki = "enwiki"  date = "20251101"  tokenizer = "gpt2"
    [train]  batch_size = 12  gradient_accumulation_steps = 8  device = "auto"   # any train key but the above
    [eval]   batches = 20  prompts = ["The history of"]  max_new_tokens = 100
    [[stage]] name = "a1"    parts = [1]        iters = 20000  learning_rate = 6e-4
    [[stage]] name = "a1-3"  parts = [1, 2, 3]  iters = 10000  learning_rate = 3e-4  warmup_iters = 500
                                                replay = "proportional"

Parts come from a Wikipedia dump (`wiki`, `date`, optional `mirror`, `multistream`, and
`require_checksum`: true by default, false to accept dump files the listing gives no sha1/md5 for)
or, with `files = ["a.xml.bz2", ["b1.bz2", "b2.bz2"], ...]`, from local dump files (part n = entry n;
paths relative to the plan; they must exist when the plan is loaded). The other [data] keys:
tokenizer ("gpt2", the default, or "bytes": UTF-8 bytes, 257 ids; not "char", whose vocabulary
would change as parts are added), min_chars (extract's shortest article; -1, the default, keeps extract's own),
val_fraction and split_seed (prepare's train/val assignment). [eval]: batches and batch_size (0: the
training batch_size) of the per-part val loss, and the samples of each stage: prompts (non-empty
text), max_new_tokens, temperature (0: greedy), top_k (0: no top-k cut) and seed.

Everything is checked when the plan is loaded, before any download, extract or training, and a
mistake is one line naming the key, its table and the plan file: unknown keys in any table (by
name), a value of the wrong type, a number that is not finite or out of its range, text with
control characters, a dump's keys (date, mirror, multistream, require_checksum) in a plan of local
files, a stage with no parts or no iterations, a part the dump does not have (for a Wikipedia dump:
once grow has read its listing, before any download), two stages with one name (stage names are
folder names: run/stages/NAME), and things that cannot change between stages — the model shape and
the tokenizer — set in a stage. A stage's own keys: name, parts, iters, learning_rate,
warmup_iters, min_lr, replay ("proportional" by size, the default, or "uniform" over parts),
new_fraction (the share of batches for the parts this stage adds), and for the first stage
init_from ("scratch" or the path of GPT-2 weights, which need tokenizer = "gpt2").

[train] schedule: "cosine" (the default: every stage re-warms over its warmup_iters and decays over
its iters) or "wsd" (the stages are one constant-LR trunk, warmed up once in the first stage, with a
cooldown branch per stage over cooldown_fraction of its iters, shaped cooldown_shape; see
growgpt.grow). A wsd plan refuses warmup_iters on later stages: they would not re-warm the trunk.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growgpt.config import TrainConfig, load_config, read_toml
from growgpt.errors import UserError
from growgpt.prepare import MAX_SEED  # split_seed and [eval] seed: numpy's and torch's generators take 64 bits too
from growgpt.tokenizer import FIXED_VOCAB_SIZES

MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias")
DATA_KEYS = ("wiki", "date", "mirror", "multistream", "require_checksum", "files", "tokenizer", "min_chars",
             "val_fraction", "split_seed")
# Keys that say where and how to download a Wikipedia dump: meaningless (so refused) with local files.
DUMP_ONLY_KEYS = ("date", "mirror", "multistream", "require_checksum")
EVAL_KEYS = ("batches", "batch_size", "prompts", "max_new_tokens", "temperature", "top_k", "seed")
STAGE_KEYS = ("name", "parts", "iters", "learning_rate", "warmup_iters", "min_lr", "replay", "new_fraction",
              "init_from")
TABLES = ("model", "data", "train", "eval")
# Set by grow itself for every stage, so a plan may not set them in [train].
GROW_OWNED = ("out_dir", "dataset", "parts", "new_parts", "max_iters", "lr_decay_iters", "schedule_start",
              "init_from", "learning_rate", "warmup_iters", "replay", "new_fraction", "always_save_checkpoint",
              "eval_only")
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig)
                   if f.name not in MODEL_KEYS and f.name not in GROW_OWNED)

# Upper bounds that no sensible plan reaches, so that a typo (an extra digit or three) fails at load
# time instead of hours later, or never.
MAX_PART = 1000  # Wikimedia cuts the largest wikis into a few dozen parts
MAX_ITERS = 10**9
MAX_MIN_CHARS = 10**7  # extract's length filter: no article is 10 million characters long
MAX_EVAL_BATCHES = 10_000
MAX_EVAL_BATCH_SIZE = 4096  # batch_size x block_size x 50257 logits must fit in memory
MAX_NEW_TOKENS = 10_000  # the report shows the first few hundred characters of a sample
MAX_TOP_K = max(FIXED_VOCAB_SIZES.values())  # the largest vocabulary a plan may use; a larger top_k cuts nothing
MAX_NAME_BYTES = 128  # a stage name is a folder name: well under the 255 bytes file systems allow
# The baseline's name in grow.json and the report (its folder is run/baseline/jump, not a stage's).
RESERVED_STAGE_NAMES = ("jump",)
# C0 and C1 control characters (NUL included): no plan text needs them, files and reports break on them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# ... except that a prompt may hold tabs and line breaks.
_CONTROL_IN_PROMPT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


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
    require_checksum: bool = True  # refuse dump files the listing gives no sha1/md5 for
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
    temperature: float = 0.8  # 0: greedy
    top_k: int = 200  # 0: no top-k cut
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
        # An explicit schedule = "cosine" is the default: the same signature as a plan without the key.
        train = {k: v for k, v in self.train.items() if not (k == "schedule" and v == "cosine")}
        relevant = {"model": self.model, "train": train, "data": {"tokenizer": self.data.tokenizer,
                    "val_fraction": self.data.val_fraction, "split_seed": self.data.split_seed},
                    "stages": [dataclasses.asdict(s) for s in self.stages[: index + 1]]}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Checking one value: each helper names the key, its table (`where`) and the plan file


def _check_keys(table: dict, allowed: tuple[str, ...], where: str, source: Path, hint: str = "") -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            extra = f" (did you mean '{close[0]}'?)" if close else hint
            raise UserError(f"unknown key '{key}' in {where} of {source}{extra}")


def _bad(key: str, where: str, source: Path, problem: str) -> UserError:
    return UserError(f"key '{key}' in {where} of {source} {problem}")


def _typed(value: Any, kind: type, key: str, where: str, source: Path) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(key, where, source, f"expects {kind.__name__}, got {value!r}")
    return value


def _int_in(value: Any, key: str, where: str, source: Path, low: int, high: int) -> int:
    """An integer (not a bool, not a float) in [low, high]."""
    value = _typed(value, int, key, where, source)
    if not low <= value <= high:
        raise _bad(key, where, source, f"must be an integer in [{low}, {high}], got {value}")
    return value


def _float_in(value: Any, key: str, where: str, source: Path, low: float, high: float = math.inf,
              low_open: bool = False, high_open: bool = False) -> float:
    """A finite number in the range from low to high; `*_open`: that end is excluded. TOML has nan and inf."""
    value = _typed(value, float, key, where, source)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        if high == math.inf:
            span = f"{'>' if low_open else '>='} {low:g}"
        else:
            span = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _bad(key, where, source, f"must be a finite number {span}, got {value!r}")
    return value


def _text(value: Any, key: str, where: str, source: Path, control: re.Pattern = _CONTROL) -> str:
    """A string without control characters (by default none at all; see _CONTROL_IN_PROMPT)."""
    value = _typed(value, str, key, where, source)
    bad = control.search(value)
    if bad:
        raise _bad(key, where, source, f"holds the control character {bad.group()!r}: {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The plan


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    raw = read_toml(path, "plan file")
    _check_keys(raw, ("title", *TABLES, "stage"), "the top level", path)
    for key in TABLES:
        if key in raw and not isinstance(raw[key], dict):
            raise _bad(key, "the top level", path, f"must be a table ([{key}]), got {raw[key]!r}")
    if "stage" in raw and not (isinstance(raw["stage"], list) and all(isinstance(t, dict) for t in raw["stage"])):
        raise _bad("stage", "the top level", path, f"must be an array of tables ([[stage]]), got {raw['stage']!r}")
    title = _text(raw["title"], "title", "the top level", path) if "title" in raw else path.stem
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
    if stages[0].init_from != "scratch" and data.tokenizer != "gpt2":  # train would refuse it after the downloads
        raise _bad("init_from", f"[[stage]] 1 ('{stages[0].name}')", path, f"loads GPT-2 weights, which need "
                   f"tokenizer = 'gpt2' in [data], not {data.tokenizer!r}")
    plan = Plan(path=path, title=title, model=model, data=data, train=train, eval=ev, stages=stages)
    _check_train_config(plan)
    if data.files:
        check_parts_exist(plan, list(range(1, len(data.files) + 1)))
    return plan


PLAN_SCHEDULES = ("cosine", "wsd")


def _check_train_config(plan: Plan) -> None:
    """Let TrainConfig check every model/train value (and the first stage's start) now, before any
    download or training; its message gains the table and the plan file."""
    first = plan.stages[0]
    schedule = plan.train.get("schedule", "cosine")
    if schedule not in PLAN_SCHEDULES:
        raise UserError(f"key 'schedule' in [train] of {plan.path} must be cosine (each stage re-warms and decays) "
                        f"or wsd (a constant-LR trunk with a cooldown branch per stage), got {schedule!r}")
    if schedule == "wsd":
        for number, stage in enumerate(plan.stages[1:], 2):
            if stage.warmup_iters:
                raise _bad("warmup_iters", f"[[stage]] {number} ('{stage.name}')", plan.path,
                           f"is {stage.warmup_iters}: with schedule = \"wsd\" the trunk warms up once, in the first "
                           "stage, and later stages continue it without re-warming; remove the key")
    try:
        plan_train_config(plan)
    except UserError as e:
        message = str(e).replace(" (settings)", "")  # load_config's name for values given as a dict
        named = re.search(r"config key '(\w+)'", message)
        key = named.group(1) if named else ""
        table = ("[model]" if key in plan.model else "[train]" if key in plan.train
                 else f"[[stage]] 1 ('{first.name}')" if key in ("learning_rate", "init_from") else "[model]/[train]")
        raise UserError(f"{table} of {plan.path}: {message}") from None


def plan_train_config(plan: Plan) -> TrainConfig:
    """The plan's [model] and [train] keys over TrainConfig's defaults, with the first stage's
    learning_rate and init_from (grow sets the dataset and the other per-stage keys): what load_plan
    checks, and where the plan's batch_size, dtype, ... are read when the plan leaves them out."""
    first = plan.stages[0]
    return load_config(base={**plan.model, **plan.train, "dataset": "(plan)", "learning_rate": first.learning_rate,
                             "init_from": first.init_from})


def _load_data(table: dict, path: Path) -> DataSpec:
    from growgpt.wiki.dumps import base_url, check_wiki_date

    where = "[data]"
    _check_keys(table, DATA_KEYS, where, path)
    spec = DataSpec()
    for key in ("wiki", "date", "mirror", "tokenizer"):
        if key in table:
            setattr(spec, key, _text(table[key], key, where, path))
    for key in ("multistream", "require_checksum"):
        if key in table:
            setattr(spec, key, _typed(table[key], bool, key, where, path))
    if "min_chars" in table:
        spec.min_chars = _int_in(table["min_chars"], "min_chars", where, path, -1, MAX_MIN_CHARS)
    if "split_seed" in table:
        spec.split_seed = _int_in(table["split_seed"], "split_seed", where, path, 0, MAX_SEED)
    if "val_fraction" in table:
        spec.val_fraction = _float_in(table["val_fraction"], "val_fraction", where, path, 0, 1,
                                      low_open=True, high_open=True)
    if "files" in table:
        spec.files = _load_files(table["files"], path)
    if bool(spec.files) == bool(spec.wiki):
        raise UserError(f"{where} of {path} needs either wiki (and date) for a Wikipedia dump "
                        "or files for local dump parts")
    if spec.files:
        for key in DUMP_ONLY_KEYS:
            if key in table:
                raise _bad(key, where, path, "is for a Wikipedia dump (wiki = ...); this plan's parts are local files")
    else:
        # dumps' own checks, made now rather than at the first download; their message gains key and file
        for key, check in (("wiki", lambda: check_wiki_date(spec.wiki, "latest")),
                           ("date", lambda: check_wiki_date(spec.wiki, spec.date)),
                           ("mirror", lambda: spec.mirror and base_url(spec.mirror))):
            try:
                check()
            except UserError as e:
                raise _bad(key, where, path, f"is not usable: {e}") from None
    if spec.tokenizer not in FIXED_VOCAB_SIZES:
        # the same vocabulary for every part: 'char' builds its vocabulary from the text it is given
        raise _bad("tokenizer", where, path, f"must be 'gpt2' or 'bytes', got {spec.tokenizer!r}: a corpus that "
                   "grows in parts needs a fixed vocabulary (a char vocabulary would change as parts are added)")
    return spec


def _load_files(value: Any, path: Path) -> list[list[Path]]:
    """[data] files: part n = entry n, a path or a list of paths, relative to the plan; each must exist."""
    from growgpt.wiki.tasks import part_stem

    parts: list[list[Path]] = []
    seen: dict[str, Path] = {}  # extract's part name -> the file that has it
    for entry in _typed(value, list, "files", "[data]", path):
        group = entry if isinstance(entry, list) else [entry]
        if not group or not all(isinstance(f, str) for f in group):
            raise _bad("files", "[data]", path, "must list dump files: each part a file path or a list of them")
        files = []
        for name in group:
            file = path.parent / _text(name, "files", "[data]", path)
            problem = _not_a_file(file)
            if problem:
                raise _bad("files", "[data]", path, f"names {_brief_path(file)}, which {problem}")
            file = file.resolve()
            # Each file becomes an extract and token part named after it: two with one name would collide.
            stem = part_stem(file.name)
            if seen.get(stem) == file:
                raise _bad("files", "[data]", path, f"lists {file} twice")
            if stem in seen:
                raise _bad("files", "[data]", path, f"names {seen[stem]} and {file}, which would share the "
                           f"part name '{stem}'")
            seen[stem] = file
            files.append(file)
        parts.append(files)
    return parts


def _load_eval(table: dict, path: Path) -> EvalSpec:
    where = "[eval]"
    _check_keys(table, EVAL_KEYS, where, path)
    spec = EvalSpec()
    integers = {"batches": (1, MAX_EVAL_BATCHES), "batch_size": (0, MAX_EVAL_BATCH_SIZE),
                "max_new_tokens": (1, MAX_NEW_TOKENS), "top_k": (0, MAX_TOP_K), "seed": (0, MAX_SEED)}
    for key, (low, high) in integers.items():
        if key in table:
            setattr(spec, key, _int_in(table[key], key, where, path, low, high))
    if "temperature" in table:
        spec.temperature = _float_in(table["temperature"], "temperature", where, path, 0)
    if "prompts" in table:
        spec.prompts = [_prompt(p, path) for p in _typed(table["prompts"], list, "prompts", where, path)]
    return spec


def _prompt(value: Any, path: Path) -> str:
    prompt = _text(value, "prompts", "[eval]", path, control=_CONTROL_IN_PROMPT)
    if not prompt.strip():
        raise _bad("prompts", "[eval]", path, f"holds an empty prompt {prompt!r}: each prompt needs text")
    if prompt.startswith("FILE:"):  # sample() would read the prompt from that file
        raise _bad("prompts", "[eval]", path, f"holds {prompt!r}: a prompt is text, not FILE:path")
    return prompt


def _stage_name(value: Any, where: str, path: Path) -> str:
    """A stage's name is its folder, run/stages/NAME: a plain, portable folder name."""
    name = _text(value, "name", where, path)
    if not name.strip() or any(c in name for c in "/\\") or name.startswith("."):
        raise _bad("name", where, path, f"is {name!r}: a stage name must be a plain folder name "
                   "(no / or \\, not starting with .)")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _bad("name", where, path, f"is {len(name.encode('utf-8'))} bytes long: a stage name is a folder "
                   f"name, at most {MAX_NAME_BYTES} bytes")
    if name.casefold() in RESERVED_STAGE_NAMES:
        raise _bad("name", where, path, f"is {name!r}, the name of the --baseline run: choose another")
    return name


def _folder_key(name: str) -> str:
    """Names that are one folder on a case-insensitive or normalizing file system (macOS, Windows)."""
    return unicodedata.normalize("NFC", name).casefold()


def _load_stages(items: list, path: Path) -> list[Stage]:
    if not items:
        raise UserError(f"{path} has no [[stage]]: a plan needs at least one")
    stages: list[Stage] = []
    for number, table in enumerate(items, 1):
        where = f"[[stage]] {number}"
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
        name = _stage_name(table["name"], where, path)
        where = f"[[stage]] {number} ('{name}')"
        clash = next((s.name for s in stages if _folder_key(s.name) == _folder_key(name)), None)
        if clash == name:
            raise UserError(f"{path} has two stages named '{name}'")
        if clash is not None:
            raise _bad("name", where, path, f"is '{name}', and another stage is '{clash}': one folder on "
                       "case-insensitive file systems")
        parts = _typed(table["parts"], list, "parts", where, path)
        if not parts:
            raise UserError(f"stage '{name}' of {path} has no parts")
        parts = [_int_in(p, "parts", where, path, 1, MAX_PART) for p in parts]
        if len(set(parts)) != len(parts):
            raise UserError(f"stage '{name}' of {path} lists a part twice: {parts}")
        iters = _typed(table["iters"], int, "iters", where, path)
        if iters < 1:
            raise UserError(f"stage '{name}' of {path} has iters = {iters}: it must train at least 1 iteration")
        stage = Stage(name=name, parts=sorted(parts), iters=_int_in(iters, "iters", where, path, 1, MAX_ITERS),
                      learning_rate=_float_in(table["learning_rate"], "learning_rate", where, path, 0, low_open=True),
                      warmup_iters=_int_in(table.get("warmup_iters", 0), "warmup_iters", where, path, 0, iters - 1))
        if "min_lr" in table:
            stage.min_lr = _float_in(table["min_lr"], "min_lr", where, path, 0)
        if "replay" in table:
            stage.replay = _typed(table["replay"], str, "replay", where, path)
            if stage.replay not in ("proportional", "uniform"):
                raise _bad("replay", where, path, f"must be proportional or uniform, got {stage.replay!r}")
        if "new_fraction" in table:
            stage.new_fraction = _float_in(table["new_fraction"], "new_fraction", where, path, 0, 1,
                                           low_open=True, high_open=True)
        if "init_from" in table:
            if number > 1:
                raise UserError(f"stage '{name}' of {path} sets init_from: only the first stage may; "
                                "later stages continue from the stage before")
            stage.init_from = _init_from(table["init_from"], where, path)
        stages.append(stage)
    return stages


def _not_a_file(file: Path, folder_ok: bool = False) -> str | None:
    """Why `file` cannot be read as an input file (None: it can). A name too long for the filesystem,
    or one the OS refuses, is a reason like any other, not an OSError."""
    try:
        if file.is_file() or (folder_ok and file.is_dir()):
            return None
        return "is not a file" if file.exists() else "does not exist"
    except (OSError, ValueError) as e:  # ENAMETOOLONG, EACCES; ValueError: a NUL byte
        return f"cannot be looked up ({getattr(e, 'strerror', None) or e})"


def _brief_path(file: Path | str) -> str:
    text = str(file)
    return text if len(text) <= 200 else f"{text[:100]}...({len(text)} characters)"


def _init_from(value: Any, where: str, path: Path) -> str:
    """'scratch' or GPT-2 weights on disk (read, like train reads them, relative to the working directory)."""
    init_from = _text(value, "init_from", where, path)
    if init_from == "resume":
        raise _bad("init_from", where, path, "is 'resume': grow resumes a stage on its own; "
                   "use 'scratch' or the path of GPT-2 weights")
    problem = _not_a_file(Path(init_from), folder_ok=True) if init_from != "scratch" else None
    if problem:
        raise _bad("init_from", where, path, f"names {_brief_path(init_from)}, which {problem} "
                   "(expected 'scratch' or the path of GPT-2 weights)")
    return init_from


def check_parts_exist(plan: Plan, available: list[int]) -> None:
    for stage in plan.stages:
        for part in stage.parts:
            if part not in available:
                from growgpt.wiki.dumps import format_ranges

                raise UserError(f"stage '{stage.name}' of {plan.path} names part {part}, which the dump does not have "
                                f"(parts: {format_ranges(available)})")
