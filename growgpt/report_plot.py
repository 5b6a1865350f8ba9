"""The grow report's loss-curves plot: train loss (light) and val loss (points) against iteration over all
stages, a dashed line where each stage after the first begins, and the jump baseline if there is one.

wsd cooldown branches are drawn as short side tracks in a lighter colour, the other schedule's chain (if
compared) in another colour. matplotlib's Agg canvas renders it, so no display is needed; metrics files
that are missing or unreadable draw nothing rather than fail the report.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

from growgpt.errors import UserError
from growgpt.metrics import read_metrics
from growgpt.report_data import baseline_name, cooldown_branch_of, main_schedule, schedule_chains, schedule_label


def curves(run_dir: Path, row: dict, folder: str | None = None,
            start: int | None = None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train points, val points) of one stage's metrics.jsonl; empty when the file is missing.

    folder: the run folder (relative to run_dir) to read, row["run_dir"] by default (for a wsd stage,
    that is its cooldown branch; its trunk is row["trunk_dir"]); start: its first iteration, else
    row["start_iter"]."""
    folder = folder if folder is not None else row.get("run_dir")
    if not folder or not isinstance(folder, str):
        return [], []
    try:
        records = read_metrics(run_dir / folder)
    except (OSError, UnicodeDecodeError, ValueError, UserError):
        return [], []
    train, val = [], []
    for r in records:
        it = r.get("iter")
        if not isinstance(it, (int, float)):
            continue
        if r.get("kind") == "train" and isinstance(r.get("loss"), (int, float)):
            train.append((int(it), float(r["loss"])))
        elif r.get("kind") == "eval" and isinstance(r.get("val_loss"), (int, float)):
            val.append((int(it), float(r["val_loss"])))
    # A stage whose iterations were counted from 0 instead of from its start_iter: shift it.
    start = row.get("start_iter") if start is None else start
    its = [i for i, _ in train + val]
    if isinstance(start, int) and start > 0 and its and max(its) < start:
        train = [(i + start, v) for i, v in train]
        val = [(i + start, v) for i, v in val]
    return train, val


class Series(NamedTuple):
    """One line of the loss-curves plot."""

    label: str                          # "grow: train loss", "grow-WSD cooldown branches: val loss", …
    kind: str                           # "train" or "val"
    color: str
    marker: str
    points: list[tuple[int, float]]     # (iteration, loss)


def loss_series(results: dict, run_dir: str | Path) -> list[Series]:
    """The lines of the loss-curves plot, one per stage and kind (stages of a chain share a label).

    The main chain in blue; the other schedule's chain (--compare-schedules), if any, in purple. A wsd
    stage is two lines: its trunk (trunk_dir) and its cooldown branch (run_dir), a short side track off the
    trunk's end, in a lighter colour; the next stage continues the trunk. The jump baseline in orange.
    Missing or unreadable metrics files draw nothing."""
    run_dir = Path(run_dir)
    out: list[Series] = []

    def add(train: list, val: list, color: str, name: str, marker: str = "o") -> None:
        for points, kind in ((train, "train"), (val, "val")):
            if points:
                out.append(Series(f"{name}: {kind} loss", kind, color, marker, points))

    main = main_schedule(results)
    colors = {main: ("tab:blue", "tab:cyan")}
    for schedule in schedule_chains(results):
        colors.setdefault(schedule, ("tab:purple", "tab:pink"))
    named = len(colors) > 1 or main != "cosine"
    for schedule, stages in schedule_chains(results).items():
        trunk_color, branch_color = colors[schedule]
        name = schedule_label(schedule) if named else "grow"
        for stage in stages:
            branch = cooldown_branch_of(stage)
            if branch is None:
                add(*curves(run_dir, stage), trunk_color, name)
                continue
            trunk_train, trunk_val = curves(run_dir, stage, stage.get("trunk_dir"))
            add(trunk_train, trunk_val, trunk_color, f"{name} trunk")
            start = branch.get("start_iter")
            train, val = curves(run_dir, stage, stage.get("run_dir"), start if isinstance(start, int) else None)
            # Drawn from the trunk point it branches off, so that it reads as a side track.
            if train and trunk_train and trunk_train[-1][0] < train[0][0]:
                train = [trunk_train[-1], *train]
            if val and trunk_val and trunk_val[-1][0] < val[0][0]:
                val = [trunk_val[-1], *val]
            add(train, val, branch_color, f"{name} cooldown branches", marker="D")
    base = results.get("baseline")
    if base:
        add(*curves(run_dir, base), "tab:orange", baseline_name(base), marker="s")
    return out


def plot_loss_curves(results: dict, run_dir: str | Path) -> bytes:
    """The loss-curves PNG as bytes (matplotlib's Agg canvas; no display is needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("the grow report needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    series = loss_series(results, run_dir)
    all_train = [v for s in series if s.kind == "train" for _, v in s.points]
    all_val = [v for s in series if s.kind == "val" for _, v in s.points]
    labelled: set[str] = set()
    for s in series:
        style = dict(color=s.color, label=None if s.label in labelled else s.label)
        labelled.add(s.label)
        if s.kind == "train":
            ax.plot(*zip(*s.points), alpha=0.3, linewidth=0.8, **style)
        else:
            ax.plot(*zip(*s.points), f"{s.marker}-", markersize=3.5, linewidth=1.4, **style)
    for stage in results["stages"][1:]:
        start = stage.get("start_iter")
        if isinstance(start, (int, float)):
            ax.axvline(start, color="0.4", linestyle="--", linewidth=0.9)
            ax.text(start, 0.98, f" {stage.get('name', '')}", transform=ax.get_xaxis_transform(),
                    rotation=90, va="top", ha="left", fontsize=8, color="0.3")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no metrics.jsonl records found", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
    if len(all_train) >= 50:
        # The first few iterations' train loss (ln(vocab) and above) would squash everything else:
        # cut the y axis at the 98th percentile of the train loss, never below any val point.
        ordered = sorted(all_train)
        top = max([ordered[int(0.98 * (len(ordered) - 1))]] + all_val)
        bottom = min(ordered + all_val)
        if top < ordered[-1]:
            ax.set_ylim(bottom - 0.03 * (top - bottom), top + 0.05 * (top - bottom))
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("Loss across stages" + (" (dashed: a new stage begins)" if len(results["stages"]) > 1 else ""))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
