"""Where training numbers go: a JSONL file always, TensorBoard and W&B when asked for.

`metrics.jsonl` in the run folder holds one JSON object per line: `{"kind": "train", "iter": ...}`
and `{"kind": "eval", ...}` records. It is the source of truth later steps (reports, tests) read;
the optional loggers are views. On resume, records past the checkpoint's iteration are dropped first,
so a resumed run's file reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from growgpt.errors import UserError

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash ends the usable file
    return records


def truncate_metrics(run_dir: str | Path, resume_iter: int) -> None:
    """Keep train records of steps before `resume_iter` and evals up to it (atomic rewrite)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return
    kept = [r for r in read_metrics(run_dir)
            if r.get("iter", 0) < resume_iter or (r.get("kind") != "train" and r.get("iter", 0) == resume_iter)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)


class MetricsLogger:
    def __init__(self, run_dir: str | Path, config: dict[str, Any], enabled: bool = True) -> None:
        self.enabled = enabled
        self._file = None
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
        if config.get("tensorboard_log"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("config key 'tensorboard_log' needs TensorBoard: pip install 'growgpt[tensorboard]'") from None
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
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
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
