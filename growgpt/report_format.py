"""How the grow report writes its numbers and the words for a paired difference.

Plain functions of a number or a `stats.PairedDifference`, shared by the report's analysis
(report_verdicts, report_compare), its sections and its console lines, so that a figure reads the same
everywhere: loss with 2 decimals, bpb with 3, a difference with as many as its interval needs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from growgpt import stats

MINUS = "\u2212"
ARROW = "\u2192"
EN_DASH = "\u2013"
RISE = "\u25b2"               # ▲ a rise beyond evaluation noise (or, without an interval, any rise)
RISE_WITHIN_NOISE = "\u25b3"  # △ a rise within evaluation noise

METRIC_NAMES = {"loss": "val loss", "bpb": "val bpb"}

NO_INTERVAL_NOTE = "(no interval: re-run grow to rescore)"
ONE_BATCH_NOTE = "(no interval from 1 val batch: raise `[eval] batches`)"
NOT_COMPARABLE = "not comparable (scored on different batches)"


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


def parts_phrase(parts: list[str], order: list[str]) -> str:
    return f"{'part' if len(parts) == 1 else 'parts'} {compact_parts(parts, order)}"


def f_loss(x: float | None) -> str:
    return "\u2013" if x is None else f"{x:.2f}"


def f_bpb(x: float | None) -> str:
    return "\u2013" if x is None else f"{x:.3f}"  # a third digit: bpb is about a third of the loss


def f_metric(x: float | None, metric: str) -> str:
    return f_bpb(x) if metric == "bpb" else f_loss(x)


def f_ppl(x: Any) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "\u2013"
    return f"{x:.1f}" if x < 1000 else f"{x:,.0f}"


def f_signed_pct(p: float) -> str:
    if math.isinf(p):
        return "+\u221e %"
    text = f"{abs(p):.1f} %"
    return f"+{text}" if p >= 0 else f"{MINUS}{text}"


def f_signed(diff: float, digits: int) -> str:
    """"+0.012", "−0.012" or "0.000": a difference without an interval."""
    return f"{'+' if diff > 0 else MINUS if diff < 0 else ''}{abs(diff):.{digits}f}"


def f_count(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "\u2013"
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}"
    return f"{x:.0f}"


def f_time(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "\u2013"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def f_mfu(x: Any) -> str:
    """MFU as a percentage; "?" above 100 % (a grow.json from before MFU was checked: the peak it was
    measured against was too low), a dash when unknown."""
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "\u2013"
    return f"{x * 100:.1f} %" if x <= 1 else "? (peak too low)"


def f_iters(stage: dict) -> str:
    a, b = stage.get("start_iter"), stage.get("end_iter")
    if a is None and b is None:
        return "\u2013"
    return f"{a if a is not None else '?'} {ARROW} {b if b is not None else '?'}"


def f_lr(x: Any) -> str:
    return f"{x:.1e}" if isinstance(x, (int, float)) else "\u2013"


# --------------------------------------------------------------------------------------------------
# Paired differences: how sure a difference between two scores is (growgpt.stats)
# --------------------------------------------------------------------------------------------------

def diff_digits(metric: str, half_width: float | None) -> int:
    """Decimals of a difference: as the matrix prints the metric, more when the interval is narrower
    (at least one significant digit of the half-width)."""
    digits = 3 if metric == "bpb" else 2
    if half_width:
        digits = max(digits, min(6, -math.floor(math.log10(half_width))))
    return digits


def f_pm(pair: stats.PairedDifference, signed: bool = True) -> str:
    """"+0.022 ± 0.008": a paired difference and the half-width of its 95 % interval (unsigned: "0.022 ± …")."""
    return f_pm_values(pair.metric, pair.diff, pair.half_width, signed)


def f_pm_values(metric: str, diff: float, half_width: float, signed: bool = True) -> str:
    """"+0.022 ± 0.008" for any difference and half-width of `metric` (paired, or over seeds)."""
    digits = diff_digits(metric, half_width)
    value = f"{abs(diff):.{digits}f}"
    if signed and float(value) != 0:
        value = ("+" if diff > 0 else MINUS) + value
    return f"{value} \u00b1 {half_width:.{digits}f}"


def f_diff(pair: stats.PairedDifference) -> str:
    """"+0.012 ± 0.004", or the bare difference without an interval, a dash when not comparable."""
    if pair.has_interval:
        return f_pm(pair)
    if pair.diff is None:
        return "\u2013"
    return f_signed(pair.diff, diff_digits(pair.metric, None))


def no_difference(pair: stats.PairedDifference) -> str:
    """The words for an interval that includes 0."""
    if pair.half_width == 0:  # the same figure on every batch: more batches would not change that
        return f"no difference detectable with {pair.batches} val batches (the same on every batch)"
    digits = diff_digits(pair.metric, pair.half_width)
    return (f"no difference detectable with {pair.batches} val batches \u2014 raise `[eval] batches` to "
            f"tighten it (\u00b1{pair.half_width:.{digits}f} now)")


def _no_interval_words(pair: stats.PairedDifference) -> str:
    """The verdict of a pair without an interval: not comparable, or why there is no interval."""
    if pair.status == stats.DIFFERENT_BATCHES:
        return NOT_COMPARABLE
    return (NO_INTERVAL_NOTE if pair.status == stats.NO_BATCH_SUMS else ONE_BATCH_NOTE).strip("()")


def winner_words(pair: stats.PairedDifference) -> str:
    """The short verdict of a grow − jump pair, as the per-part table gives it."""
    if pair.has_interval:
        return "growing better" if pair.fell else "jumping better" if pair.rose else "no difference detectable"
    return _no_interval_words(pair)


def versus_words(pair: stats.PairedDifference, label: str) -> str:
    """The verdict of `label` − other: "<label> better"/"worse" when the interval excludes 0."""
    if pair.has_interval:
        return f"{label} better" if pair.fell else f"{label} worse" if pair.rose else no_difference(pair)
    return _no_interval_words(pair)


def interval_notes(pairs: list[stats.PairedDifference | None]) -> str:
    """" (no interval: …)" for a sentence some of whose comparisons have no interval; "" otherwise."""
    statuses = {p.status for p in pairs if p is not None}
    notes = [note for status, note in ((stats.NO_BATCH_SUMS, NO_INTERVAL_NOTE), (stats.ONE_BATCH, ONE_BATCH_NOTE))
             if status in statuses]
    return "".join(f" {n}" for n in notes)


def method_text(pairs: list[stats.PairedDifference | None]) -> str:
    """"95 % paired t-interval over 20 val batches" for the pairs that have an interval."""
    counts = sorted({p.batches for p in pairs if p is not None and p.has_interval})
    over = f"over {counts[0]} val batches" if len(counts) == 1 else "over the val batches both scores share"
    return f"{stats.CONFIDENCE * 100:.0f} % paired t-interval {over}"
