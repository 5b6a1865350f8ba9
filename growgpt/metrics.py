"""Where training numbers go: a JSONL file always, TensorBoard and W&B when asked for.

`metrics.jsonl` in the run folder holds one JSON object per line: `{"kind": "train", "iter": ...}`
and `{"kind": "eval", ...}` records. It is the source of truth later steps (reports, tests) read;
the optional loggers are views. On resume, records past the checkpoint's iteration are dropped first,
so a resumed run's file reads as if the run had never stopped.

A line that cannot be read — cut short by a crash, a byte that is not UTF-8, JSON that is not an
object, a record without a numeric `iter` or without the numbers its kind always has — is skipped
and counted, never taken to end the file: every readable record before and after it is kept, and
resuming (which rewrites the file atomically) says how many lines it left out.

The two conversions of a loss every reader shows live here too, so they are written once:
`perplexity` (exp, capped) and `bits_per_byte` (nats / (bytes x ln 2)).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_bytes

METRICS_FILE = "metrics.jsonl"
# exp(50) ~ 5e21: an untrained or diverging model's loss would overflow exp() for no information.
MAX_PERPLEXITY_LOSS = 50.0
LN2 = math.log(2.0)


def perplexity(loss: float) -> float:
    """exp(loss), the loss in nats per token, capped at exp(50) so it never overflows."""
    return math.exp(min(loss, MAX_PERPLEXITY_LOSS))


def bits_per_byte(nats: float, n_bytes: float | None) -> float | None:
    """Bits per byte of `nats` over text of `n_bytes` UTF-8 bytes; None when the bytes are unknown or 0."""
    return nats / (n_bytes * LN2) if n_bytes else None


# The numbers MetricsLogger always writes for a kind, which readers (grow's run statistics, the
# report, tests) index directly; a record of that kind without them is unreadable. MFU may be null.
REQUIRED_NUMBERS = {"train": ("loss", "lr", "ms_per_iter", "tokens_per_s"), "eval": ("train_loss", "val_loss")}
# Bits per byte are optional: files written before they were logged stay readable, and a tokenizer
# without a per-token byte table logs null.
OPTIONAL_NUMBERS = {"train": ("mfu",), "eval": ("train_bpb", "val_bpb")}


def _is_number(value: Any) -> bool:
    """A finite int or float that converts to float (readers do): not a bool, NaN or a 400-digit int."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _parse_record(raw: bytes) -> dict | None:
    """One line as a record, or None when it is not one (see the module docstring)."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: bad JSON, huge integer literals
        return None
    if not isinstance(record, dict) or not _is_number(record.get("iter")):
        return None
    kind = record.get("kind")
    if not all(_is_number(record.get(key)) for key in REQUIRED_NUMBERS.get(kind, ())):
        return None
    if not all(record.get(key) is None or _is_number(record[key]) for key in OPTIONAL_NUMBERS.get(kind, ())):
        return None
    return record


def read_metrics_checked(run_dir: str | Path) -> tuple[list[dict], list[int]]:
    """(the readable records of the run's metrics.jsonl in file order, the 1-based numbers of the
    lines that were skipped as unreadable). A missing file has no records."""
    path = Path(run_dir) / METRICS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    records, skipped = [], []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        record = _parse_record(raw)
        if record is None:
            skipped.append(number)
        else:
            records.append(record)
    return records, skipped


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The readable records of the run's metrics.jsonl; unreadable lines are skipped."""
    return read_metrics_checked(run_dir)[0]


def truncate_metrics(run_dir: str | Path, resume_iter: int) -> int:
    """Keep train records of steps before `resume_iter` and evals up to it (atomic rewrite); every
    readable record in that range is kept, unreadable lines are left out with one warning on
    stderr. Returns the number of lines left out as unreadable."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    records, skipped = read_metrics_checked(run_dir)
    kept = [r for r in records if r["iter"] < resume_iter or (r.get("kind") != "train" and r["iter"] == resume_iter)]
    if skipped:
        where = ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
        print(f"growgpt: warning: {path}: skipped {len(skipped)} unreadable line(s) (line {where}); "
              f"kept the {len(kept)} readable record(s) up to iter {resume_iter}", file=sys.stderr, flush=True)
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8"))
    return len(skipped)


class MetricsLogger:
    def __init__(self, run_dir: str | Path, config: dict[str, Any], enabled: bool = True) -> None:
        self.enabled = enabled
        self._file = None
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        run_dir = Path(run_dir)
        self._path = run_dir / METRICS_FILE
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "a", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write {self._path}: {e.strerror or e}") from None
        if config.get("tensorboard_log"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("config key 'tensorboard_log' needs TensorBoard: "
                                "pip install 'growgpt[tensorboard]'") from None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if config.get("wandb_log"):
            try:
                import wandb
            except ImportError:
                raise UserError("config key 'wandb_log' needs Weights & Biases: pip install 'growgpt[wandb]'") from None
            self._wandb = wandb.init(project=config.get("wandb_project"), name=config.get("wandb_run_name"),
                                     config=config, mode=config.get("wandb_mode", "online"), dir=str(run_dir))

    def log(self, kind: str, iteration: int, **values: Any) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "iter": iteration, **values}
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as e:  # e.g. a full disk: the checkpoints written so far are kept
            raise UserError(f"cannot write {self._path}: {e.strerror or e}") from None
        numeric = {f"{kind}/{k}": v for k, v in values.items() if isinstance(v, (int, float)) and v is not None}
        if self._tb is not None:
            for key, value in numeric.items():
                self._tb.add_scalar(key, value, iteration)
        if self._wandb is not None:
            self._wandb.log(numeric, step=iteration)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
