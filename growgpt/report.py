"""The report of a grow run: did growing the corpus in stages work, and what did it cost?

`growgpt grow` records every finished stage in `RUN_DIR/grow.json` (its evaluation on the val set of
every part, seen or not, its cost and a few samples). `write_report(RUN_DIR)` turns that file and the
stages' `metrics.jsonl` files into three files in RUN_DIR, each written atomically:

* `report.md`   – the report as Markdown (it links `loss_curves.png`);
* `report.html` – the same report as one self-contained page (the plot is embedded; open it anywhere);
* `loss_curves.png` – train loss (light) and val loss (points) against iteration over all stages,
  with a dashed line where each stage after the first begins, and the jump baseline if there is one.

What a reader finds in the report, top to bottom:

1. A one-paragraph summary: how many stages, the final union val loss, the worst forgetting seen,
   and how growing compares with training from scratch on the union ("jump"), if that was run.
2. The stage × part val-loss matrix: one row per stage, one column per part and one for the union of
   all parts' val sets; each cell is "loss (perplexity)". Cells of parts the stage had not been
   trained on yet are in italics and marked "·unseen". A cell whose loss rose since the previous stage
   is marked "▲ +x.x %" – for a part already trained on, that is forgetting. The jump baseline, if
   run, is the bottom row.
3. The loss curves.
4. The cost of each stage: parts, new parts, iterations, tokens, wall time, tokens/s, MFU.
5. Samples: for each prompt, what every stage's model wrote (truncated to 400 characters).
6. Grow vs jump: final union loss, tokens and time of each, and which one is better by how much.
7. A plain verdict per stage (`verdicts`): how the union loss moved and whether parts trained on in
   earlier stages got worse. A rise of more than 1 % counts as forgetting: "mild forgetting" up to
   5 %, "forgetting" above; 1 % or less is "no forgetting".
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_bytes
from growgpt.metrics import read_metrics

GROW_FILE = "grow.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LOSS_PNG = "loss_curves.png"

FORGETTING_PCT = 1.0         # a rise above this (in %) of an already-trained part's val loss is forgetting
STRONG_FORGETTING_PCT = 5.0  # above this it is plain "forgetting", up to it "mild forgetting"
SAMPLE_CHARS = 400           # samples are cut to this many characters in the report
BASELINE_LABEL = "(from scratch on the union)"

MINUS = "\u2212"
ARROW = "\u2192"
EN_DASH = "\u2013"
RISE = "\u25b2"


# --------------------------------------------------------------------------------------------------
# Reading grow.json
# --------------------------------------------------------------------------------------------------

def load_results(run_dir: str | Path) -> dict:
    """Read `run_dir/grow.json`; a missing or unreadable file is a UserError."""
    run_dir = Path(run_dir)
    path = run_dir / GROW_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: no {GROW_FILE} \u2014 run `growgpt grow PLAN.toml --workdir ...` first")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(results, dict) or not isinstance(results.get("stages", []), list):
        raise UserError(f"{path}: not a grow results file (expected an object with a 'stages' list)")
    results.setdefault("stages", [])
    results.setdefault("baseline", None)
    if not results.get("parts"):  # derive the part order from what the stages name
        parts: list[str] = []
        for stage in results["stages"] + ([results["baseline"]] if results["baseline"] else []):
            for p in list(stage.get("parts", [])) + list(((stage.get("eval") or {}).get("parts") or {})):
                if str(p) not in parts:
                    parts.append(str(p))
        results["parts"] = parts
    results["parts"] = [str(p) for p in results["parts"]]
    return results


def _loss(ev: dict | None) -> float | None:
    value = (ev or {}).get("loss")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _part_eval(stage: dict, part: str) -> dict | None:
    return ((stage.get("eval") or {}).get("parts") or {}).get(part)


def _union_eval(stage: dict) -> dict | None:
    return (stage.get("eval") or {}).get("union")


def _stage_parts(stage: dict) -> list[str]:
    return [str(p) for p in stage.get("parts", [])]


def _new_parts(stages: list[dict], k: int) -> list[str]:
    stage = stages[k]
    if stage.get("new_parts") is not None:
        return [str(p) for p in stage["new_parts"]]
    seen = _seen_before(stages, k)
    return [p for p in _stage_parts(stage) if p not in seen]


def _seen_before(stages: list[dict], k: int) -> set[str]:
    """Parts trained on in the stages before stage k."""
    return {p for s in stages[:k] for p in _stage_parts(s)}


def _pct(old: float, new: float) -> float:
    return (new - old) / old * 100.0 if old else math.inf if new > old else 0.0


# --------------------------------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------------------------------

def compact_parts(parts: list[str], order: list[str] | None = None) -> str:
    """Part names as compact ranges: ["1", "4", "5", "6"] -> "1, 4–6".

    Consecutive means next to each other in `order` (the run's part list) when given, else in integer
    order for integer names; other names are listed one by one.
    """
    parts = [str(p) for p in parts]
    if not parts:
        return "none"
    order = [str(p) for p in order] if order else []
    if all(p in order for p in parts):
        position = {p: i for i, p in enumerate(order)}
    elif all(re.fullmatch(r"-?\d+", p) for p in parts):
        position = {p: int(p) for p in parts}
    else:
        return ", ".join(parts)
    ordered = sorted(dict.fromkeys(parts), key=lambda p: position[p])
    runs: list[list[str]] = []
    for p in ordered:
        if runs and position[p] == position[runs[-1][-1]] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}{EN_DASH}{r[-1]}" for r in runs)


def _parts_phrase(parts: list[str], order: list[str]) -> str:
    return f"{'part' if len(parts) == 1 else 'parts'} {compact_parts(parts, order)}"


def _f_loss(x: float | None) -> str:
    return "\u2013" if x is None else f"{x:.2f}"


def _f_ppl(x: Any) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "\u2013"
    return f"{x:.1f}" if x < 1000 else f"{x:,.0f}"


def _f_signed_pct(p: float) -> str:
    if math.isinf(p):
        return "+\u221e %"
    text = f"{abs(p):.1f} %"
    return f"+{text}" if p >= 0 else f"{MINUS}{text}"


def _f_count(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "\u2013"
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}"
    return f"{x:.0f}"


def _f_time(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "\u2013"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _f_mfu(x: Any) -> str:
    return f"{x * 100:.1f} %" if isinstance(x, (int, float)) and math.isfinite(x) else "\u2013"


def _f_iters(stage: dict) -> str:
    a, b = stage.get("start_iter"), stage.get("end_iter")
    if a is None and b is None:
        return "\u2013"
    return f"{a if a is not None else '?'} {ARROW} {b if b is not None else '?'}"


def _f_lr(x: Any) -> str:
    return f"{x:.1e}" if isinstance(x, (int, float)) else "\u2013"


# --------------------------------------------------------------------------------------------------
# The analysis: matrix cells, verdicts, grow vs jump
# --------------------------------------------------------------------------------------------------

def _cell(row: dict, prev: dict | None, part: str | None, trained: set[str] | None) -> dict:
    """One matrix cell: loss, ppl, unseen?, and the % change since the previous stage when it rose."""
    ev = _union_eval(row) if part is None else _part_eval(row, part)
    loss = _loss(ev)
    rise = None
    if prev is not None and loss is not None:
        old = _loss(_union_eval(prev) if part is None else _part_eval(prev, part))
        if old is not None and loss > old:
            rise = _pct(old, loss)
    return {"loss": loss, "ppl": (ev or {}).get("ppl"), "rise": rise,
            "unseen": part is not None and trained is not None and part not in trained}


def _matrix(results: dict) -> list[tuple[str, list[dict]]]:
    """Rows of (label, cells); cells follow results["parts"] then the union."""
    parts = results["parts"]
    stages = results["stages"]
    rows = []
    for k, stage in enumerate(stages):
        trained = _seen_before(stages, k) | set(_stage_parts(stage))
        prev = stages[k - 1] if k else None
        rows.append((str(stage.get("name", f"stage {k + 1}")),
                     [_cell(stage, prev, p, trained) for p in parts] + [_cell(stage, prev, None, None)]))
    base = results.get("baseline")
    if base:
        trained = set(_stage_parts(base)) if base.get("parts") else set(parts)
        rows.append((f"{base.get('name') or 'jump'} {BASELINE_LABEL}",
                     [_cell(base, None, p, trained) for p in parts] + [_cell(base, None, None, None)]))
    return rows


def _forgetting_label(max_rise: float) -> str:
    if max_rise <= FORGETTING_PCT:
        return "no forgetting"
    return "mild forgetting" if max_rise <= STRONG_FORGETTING_PCT else "forgetting"


def _old_part_changes(stages: list[dict], k: int, order: list[str]) -> list[tuple[str, float, float, float]]:
    """(part, old loss, new loss, % change) for every part trained before stage k, in part order."""
    seen = _seen_before(stages, k)
    changes = []
    for part in [p for p in order if p in seen] + sorted(seen - set(order)):
        old, new = _loss(_part_eval(stages[k - 1], part)), _loss(_part_eval(stages[k], part))
        if old is not None and new is not None:
            changes.append((part, old, new, _pct(old, new)))
    return changes


def verdicts(results: dict) -> list[str]:
    """One plain sentence per finished stage.

    Stage 1: "Stage a1 trained part 1 from scratch: union val loss 5.10 (ppl 164.0)."
    Stage k >= 2: "Stage a1-3 (added parts 2–3): union val loss 4.91 → 4.40 (−10.4 %); part 1 rose by
    2.3 % (3.95 → 4.04): mild forgetting." Parts count as forgotten when their val loss rose by more
    than FORGETTING_PCT since the previous stage; only parts trained on in an earlier stage count.
    """
    stages = results.get("stages") or []
    order = [str(p) for p in results.get("parts") or []]
    out = []
    for k, stage in enumerate(stages):
        name = stage.get("name", f"stage {k + 1}")
        union = _loss(_union_eval(stage))
        if k == 0:
            ppl = (_union_eval(stage) or {}).get("ppl")
            ppl_text = f" (ppl {_f_ppl(ppl)})" if isinstance(ppl, (int, float)) else ""
            out.append(f"Stage {name} trained {_parts_phrase(_stage_parts(stage), order)} from scratch: "
                       f"union val loss {_f_loss(union)}{ppl_text}.")
            continue
        new = _new_parts(stages, k)
        added = f"added {_parts_phrase(new, order)}" if new else "no new parts"
        old_union = _loss(_union_eval(stages[k - 1]))
        if union is not None and old_union is not None:
            union_text = (f"union val loss {_f_loss(old_union)} {ARROW} {_f_loss(union)} "
                          f"({_f_signed_pct(_pct(old_union, union))})")
        else:
            union_text = f"union val loss {_f_loss(union)}"
        changes = _old_part_changes(stages, k, order)
        if not changes:
            tail = "no part trained before was evaluated in both stages"
        else:
            rose = [c for c in changes if c[3] > FORGETTING_PCT]
            label = _forgetting_label(max(c[3] for c in changes))
            if rose:
                pieces = [f"part {p} rose by {_f_signed_pct(pct).lstrip('+')} ({_f_loss(a)} {ARROW} {_f_loss(b)})"
                          for p, a, b, pct in rose]
                tail = f"{'; '.join(pieces)}: {label}"
            else:
                earlier = _parts_phrase([c[0] for c in changes], order)
                worst = max(c[3] for c in changes)
                moved = ("all fell" if worst <= 0 and len(changes) > 1 else "fell" if worst <= 0
                         else f"rose by at most {_f_signed_pct(worst).lstrip('+')}")
                tail = f"earlier {earlier} {moved}: {label}"
        out.append(f"Stage {name} ({added}): {union_text}; {tail}.")
    return out


def _totals(stages: list[dict], key: str) -> float | None:
    values = [s.get(key) for s in stages]
    return sum(values) if values and all(isinstance(v, (int, float)) for v in values) else None


def grow_vs_jump(results: dict) -> str | None:
    """The plain sentence comparing the last stage with the jump baseline; None without a baseline."""
    base, stages = results.get("baseline"), results.get("stages") or []
    if not base or not stages:
        return None
    grow_loss, jump_loss = _loss(_union_eval(stages[-1])), _loss(_union_eval(base))
    if grow_loss is None or jump_loss is None:
        return "Grow vs jump: no union val loss to compare."
    g_tok, j_tok = _totals(stages, "tokens"), base.get("tokens")
    g_sec, j_sec = _totals(stages, "seconds"), base.get("seconds")
    diff = jump_loss - grow_loss
    if round(grow_loss, 2) == round(jump_loss, 2):
        verdict = "growing and jumping end up level"
    elif diff > 0:
        verdict = f"growing is better by {diff:.2f} ({abs(_pct(jump_loss, grow_loss)):.1f} % lower loss)"
    else:
        verdict = f"jumping is better by {-diff:.2f} ({abs(_pct(grow_loss, jump_loss)):.1f} % lower loss)"
    cost = []
    if isinstance(g_tok, (int, float)) and isinstance(j_tok, (int, float)) and j_tok:
        cost.append(f"{g_tok / j_tok:.2f}\u00d7 the tokens ({_f_count(g_tok)} vs {_f_count(j_tok)})")
    if isinstance(g_sec, (int, float)) and isinstance(j_sec, (int, float)) and j_sec:
        cost.append(f"{g_sec / j_sec:.2f}\u00d7 the time ({_f_time(g_sec)} vs {_f_time(j_sec)})")
    cost_text = f", with growing using {' and '.join(cost)}" if cost else ""
    text = (f"Growing ended at a union val loss of {_f_loss(grow_loss)}, jumping at {_f_loss(jump_loss)}: "
            f"{verdict}{cost_text}.")
    missing = [p for p in results["parts"] if p not in _seen_before(stages, len(stages))]
    if missing:
        text += f" The grow run has not trained on {_parts_phrase(missing, results['parts'])} yet."
    return text


def _summary(results: dict) -> str:
    stages, parts = results["stages"], results["parts"]
    if not stages:
        return (f"No stage has finished yet, so there is nothing to report beyond the plan's "
                f"{len(parts)} part(s).")
    last = stages[-1]
    union = _union_eval(last) or {}
    text = (f"{len(stages)} stage{'s' if len(stages) != 1 else ''} grew the model over "
            f"{_parts_phrase(parts, parts)}. The last stage, {last.get('name', '?')}, trained on "
            f"{_parts_phrase(_stage_parts(last), parts)} and reached a union val loss of "
            f"{_f_loss(_loss(union))} (ppl {_f_ppl(union.get('ppl'))}) over the val sets of all parts.")
    missing = [p for p in parts if p not in _seen_before(stages, len(stages))]
    if missing:
        text += f" {_parts_phrase(missing, parts).capitalize()} {'has' if len(missing) == 1 else 'have'} not been trained on yet."
    worst = None
    for k in range(1, len(stages)):
        for part, a, b, pct in _old_part_changes(stages, k, parts):
            if worst is None or pct > worst[0]:
                worst = (pct, part, stages[k].get("name", f"stage {k + 1}"), a, b)
    if worst is None:
        pass
    elif worst[0] > FORGETTING_PCT:
        text += (f" The largest rise of a part already trained on was {_f_signed_pct(worst[0])} "
                 f"(part {worst[1]} in stage {worst[2]}, {_f_loss(worst[3])} {ARROW} {_f_loss(worst[4])}): "
                 f"{_forgetting_label(worst[0])}.")
    else:
        text += (f" No part already trained on rose by more than {FORGETTING_PCT:g} % from one stage to "
                 f"the next: no forgetting.")
    comparison = grow_vs_jump(results)
    text += f" {comparison}" if comparison else " No jump baseline (training from scratch on the union) was run."
    return text


def _samples(results: dict) -> tuple[list[str], list[str], dict[str, dict[str, list[str]]]]:
    """(column labels, prompts in first-seen order, prompt -> column -> texts)."""
    columns: list[tuple[str, dict]] = [(str(s.get("name", f"stage {k + 1}")), s) for k, s in enumerate(results["stages"])]
    if results.get("baseline"):
        columns.append((str(results["baseline"].get("name") or "jump"), results["baseline"]))
    prompts: list[str] = []
    table: dict[str, dict[str, list[str]]] = {}
    for label, row in columns:
        for sample in row.get("samples") or []:
            prompt = str(sample.get("prompt", ""))
            if prompt not in table:
                prompts.append(prompt)
                table[prompt] = {}
            table[prompt].setdefault(label, []).append(_truncate(str(sample.get("text", ""))))
    return [c[0] for c in columns], prompts, table


def _truncate(text: str) -> str:
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS].rstrip() + " \u2026"


# --------------------------------------------------------------------------------------------------
# The plot
# --------------------------------------------------------------------------------------------------

def _curves(run_dir: Path, row: dict) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train points, val points) of one stage's metrics.jsonl; empty when the file is missing."""
    if not row.get("run_dir"):
        return [], []
    try:
        records = read_metrics(run_dir / row["run_dir"])
    except (OSError, UnicodeDecodeError):
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
    start = row.get("start_iter")
    its = [i for i, _ in train + val]
    if isinstance(start, int) and start > 0 and its and max(its) < start:
        train = [(i + start, v) for i, v in train]
        val = [(i + start, v) for i, v in val]
    return train, val


def plot_loss_curves(results: dict, run_dir: str | Path) -> bytes:
    """The loss-curves PNG as bytes (matplotlib's Agg canvas; no display is needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("the grow report needs matplotlib: pip install matplotlib") from None
    run_dir = Path(run_dir)
    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labelled_train = labelled_val = False
    all_train: list[float] = []
    all_val: list[float] = []
    for stage in results["stages"]:
        train, val = _curves(run_dir, stage)
        all_train += [v for _, v in train]
        all_val += [v for _, v in val]
        if train:
            ax.plot(*zip(*train), color="tab:blue", alpha=0.3, linewidth=0.8,
                    label=None if labelled_train else "grow: train loss")
            labelled_train = True
        if val:
            ax.plot(*zip(*val), "o-", color="tab:blue", markersize=3.5, linewidth=1.4,
                    label=None if labelled_val else "grow: val loss")
            labelled_val = True
    base = results.get("baseline")
    if base:
        train, val = _curves(run_dir, base)
        all_train += [v for _, v in train]
        all_val += [v for _, v in val]
        name = base.get("name") or "jump"
        if train:
            ax.plot(*zip(*train), color="tab:orange", alpha=0.3, linewidth=0.8, label=f"{name}: train loss")
        if val:
            ax.plot(*zip(*val), "s-", color="tab:orange", markersize=3.5, linewidth=1.4, label=f"{name}: val loss")
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


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Inline Markdown text: special characters escaped, line breaks folded."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", "").replace("\n", " \u23ce ")


def _md_block(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(cell: dict) -> str:
    text = f"{_f_loss(cell['loss'])} ({_f_ppl(cell['ppl'])})" if cell["loss"] is not None else "\u2013"
    if cell["unseen"]:
        text = f"_{text}_ \u00b7unseen"
    if cell["rise"] is not None:
        text += f" {RISE} {_f_signed_pct(cell['rise'])}"
    return text


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _stage_rows(results: dict) -> list[tuple[str, dict, str]]:
    """(label, row, new parts text) for the cost table: the stages, then the baseline."""
    stages, parts = results["stages"], results["parts"]
    rows = [(str(s.get("name", f"stage {k + 1}")), s, compact_parts(_new_parts(stages, k), parts))
            for k, s in enumerate(stages)]
    if results.get("baseline"):
        rows.append((f"{results['baseline'].get('name') or 'jump'} (baseline)", results["baseline"], "\u2013"))
    return rows


def _cost_cells(row: dict, parts: list[str]) -> list[str]:
    return [compact_parts(_stage_parts(row), parts), _f_iters(row), _f_count(row.get("tokens")),
            _f_time(row.get("seconds")), _f_count(row.get("tokens_per_s")), _f_mfu(row.get("mfu")),
            _f_lr(row.get("learning_rate")), str(row.get("replay") or "\u2013")]


COST_HEADER = ["Stage", "Parts", "New parts", "Iterations", "Tokens", "Time", "Tokens/s", "MFU", "LR", "Replay"]
LEGEND = ("Cells are val loss (perplexity) on each part's val set; \"union\" is the union of all parts' "
          "val sets. _Italic_ \u00b7unseen: the stage had not been trained on that part yet. "
          f"{RISE} +x %: the loss rose since the previous stage (for a part already trained on: forgetting).")


def render_markdown(results: dict, png_name: str = LOSS_PNG) -> str:
    parts = results["parts"]
    title = results.get("title") or "growgpt grow report"
    out = [f"# {_md(title)}", "", _md(_summary(results)), ""]

    out += ["## Val loss: stage \u00d7 part", ""]
    header = ["Stage"] + [f"part {_md(p)}" for p in parts] + ["union"]
    out += [_md_table(header, [[_md(label)] + [_md_cell(c) for c in cells] for label, cells in _matrix(results)]), ""]
    out += [LEGEND, ""]

    out += ["## Loss curves", "", f"![Train and val loss across stages]({png_name})", ""]

    out += ["## Stages", ""]
    rows = []
    for label, row, new in _stage_rows(results):
        cells = _cost_cells(row, parts)
        rows.append([_md(v) for v in [label, cells[0], new, *cells[1:]]])
    out += [_md_table(COST_HEADER, rows), ""]

    columns, prompts, table = _samples(results)
    out += ["## Samples", ""]
    if not prompts:
        out += ["No samples were recorded.", ""]
    for i, prompt in enumerate(prompts, 1):
        out += [f"### Prompt {i}: \u201c{_md(prompt)}\u201d", ""]
        for label in columns:
            for text in table[prompt].get(label, []):
                out += [f"**{_md(label)}**", "", _md_block(text), ""]

    if results.get("baseline"):
        out += ["## Grow vs jump", ""]
        base, stages = results["baseline"], results["stages"]
        if stages:
            out += [_md_table(["", "Union val loss", "Tokens", "Time"], [
                [f"grow (last stage {_md(stages[-1].get('name', '?'))})", _f_loss(_loss(_union_eval(stages[-1]))),
                 _f_count(_totals(stages, "tokens")), _f_time(_totals(stages, "seconds"))],
                [_md(f"{base.get('name') or 'jump'} {BASELINE_LABEL}"), _f_loss(_loss(_union_eval(base))),
                 _f_count(base.get("tokens")), _f_time(base.get("seconds"))]]), ""]
        out += [_md(grow_vs_jump(results) or "No stage has finished yet."), ""]

    out += ["## Verdict", ""]
    lines = verdicts(results)
    out += [f"- {_md(v)}" for v in lines] if lines else ["No stage has finished yet."]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.label, th.label { text-align: left; }
td.unseen { font-style: italic; color: #888; background: #fafafa; }
td.rise { background: #fde8e8; } .rise-mark { color: #c0392b; font-weight: 600; white-space: nowrap; }
tr.baseline td { border-top: 2px solid #888; background: #fff8ec; }
.legend, .note { color: #555; font-size: .9em; }
table.samples td { text-align: left; min-width: 14em; max-width: 30em; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .88em; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_cell(cell: dict) -> str:
    classes = [c for c, on in (("unseen", cell["unseen"]), ("rise", cell["rise"] is not None)) if on]
    text = f"{_f_loss(cell['loss'])} ({_f_ppl(cell['ppl'])})" if cell["loss"] is not None else "\u2013"
    body = _h(text)
    if cell["unseen"]:
        body += " \u00b7unseen"
    if cell["rise"] is not None:
        body += f' <span class="rise-mark">{RISE} {_h(_f_signed_pct(cell["rise"]))}</span>'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}>{body}</td>"


def _html_table(header: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f'<th class="label">{_h(h)}</th>' if i == 0 else f"<th>{_h(h)}</th>" for i, h in enumerate(header))
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def render_html(results: dict, png: bytes) -> str:
    parts = results["parts"]
    title = results.get("title") or "growgpt grow report"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_h(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_h(title)}</h1>", f"<p>{_h(_summary(results))}</p>"]

    out.append("<h2>Val loss: stage \u00d7 part</h2>")
    rows = []
    n_stages = len(results["stages"])
    for i, (label, cells) in enumerate(_matrix(results)):
        tr = ' class="baseline"' if i >= n_stages else ""
        rows.append(f'<tr{tr}><td class="label">{_h(label)}</td>' + "".join(_html_cell(c) for c in cells) + "</tr>")
    out.append(_html_table(["Stage"] + [f"part {p}" for p in parts] + ["union"], rows, "matrix"))
    out.append(f'<p class="legend">{_h(LEGEND).replace("_Italic_", "<i>Italic</i>")}</p>')

    out.append("<h2>Loss curves</h2>")
    out.append(f'<img alt="Train and val loss across stages" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')

    out.append("<h2>Stages</h2>")
    rows = []
    for label, row, new in _stage_rows(results):
        cells = _cost_cells(row, parts)
        values = [cells[0], new] + cells[1:]
        rows.append(f'<tr><td class="label">{_h(label)}</td>' + "".join(f"<td>{_h(v)}</td>" for v in values) + "</tr>")
    out.append(_html_table(COST_HEADER, rows, "stages"))

    out.append("<h2>Samples</h2>")
    columns, prompts, table = _samples(results)
    if not prompts:
        out.append('<p class="note">No samples were recorded.</p>')
    else:
        rows = []
        for prompt in prompts:
            cells = "".join("<td>" + "<hr>".join(f"<pre>{_h(t)}</pre>" for t in table[prompt].get(c, [])) + "</td>"
                            for c in columns)
            rows.append(f'<tr><td class="label"><pre>{_h(prompt)}</pre></td>{cells}</tr>')
        out.append(_html_table(["Prompt"] + columns, rows, "samples"))

    if results.get("baseline"):
        base, stages = results["baseline"], results["stages"]
        out.append("<h2>Grow vs jump</h2>")
        if stages:
            rows = [f'<tr><td class="label">{_h(label)}</td>' + "".join(f"<td>{_h(v)}</td>" for v in values) + "</tr>"
                    for label, values in (
                        (f"grow (last stage {stages[-1].get('name', '?')})",
                         [_f_loss(_loss(_union_eval(stages[-1]))), _f_count(_totals(stages, "tokens")),
                          _f_time(_totals(stages, "seconds"))]),
                        (f"{base.get('name') or 'jump'} {BASELINE_LABEL}",
                         [_f_loss(_loss(_union_eval(base))), _f_count(base.get("tokens")), _f_time(base.get("seconds"))]))]
            out.append(_html_table(["", "Union val loss", "Tokens", "Time"], rows))
        out.append(f"<p>{_h(grow_vs_jump(results) or 'No stage has finished yet.')}</p>")

    out.append("<h2>Verdict</h2>")
    lines = verdicts(results)
    out.append("<ul>" + "".join(f"<li>{_h(v)}</li>" for v in lines) + "</ul>" if lines
               else '<p class="note">No stage has finished yet.</p>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------

def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html and loss_curves.png into run_dir; return their paths.

    Keys of the returned dict: "markdown", "html", "png".
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    png = plot_loss_curves(results, run_dir)
    paths = {"png": run_dir / LOSS_PNG, "markdown": run_dir / REPORT_MD, "html": run_dir / REPORT_HTML}
    atomic_write_bytes(paths["png"], png)
    atomic_write_bytes(paths["markdown"], render_markdown(results).encode("utf-8"))
    atomic_write_bytes(paths["html"], render_html(results, png).encode("utf-8"))
    return paths
