"""The report of a grow run: did growing the corpus in stages work, and what did it cost?

`growgpt grow` records every finished stage in `RUN_DIR/grow.json` (its evaluation on the val set of
every part, seen or not, its cost and a few samples). `write_report(RUN_DIR)` turns that file and the
stages' `metrics.jsonl` files into three files in RUN_DIR, each written atomically:

* `report.md`   – the report as Markdown (it links `loss_curves.png`);
* `report.html` – the same report as one self-contained page (the plot is embedded; open it anywhere);
* `loss_curves.png` – train loss (light) and val loss (points) against iteration over all stages,
  with a dashed line where each stage after the first begins, and the jump baseline if there is one;
  wsd cooldown branches as short side tracks in a lighter colour, the other schedule's chain (if
  compared) in another colour.

The console gets `console_summary` (the line `growgpt grow` prints), `console_matrix`, `verdicts` and
`schedule_comparison_lines` (the schedule comparison and the seed spread, for `growgpt demo`).

What a reader finds in the report, top to bottom:

1. A one-paragraph summary: how many stages, the final union val bits per byte (and loss), the
   worst forgetting seen, and how growing compares with training from scratch on the union ("jump"),
   if that was run.
2. The stage × part matrices: one row per stage, one column per part and one for the union of all
   parts' val sets. First in bits per byte (bpb: nats ÷ (UTF-8 bytes × ln 2), which does not depend
   on the tokenizer, so it compares with other runs and published numbers), then in val loss per
   token, each cell "loss (perplexity)". Cells of parts the stage had not been trained on yet are in
   italics and marked "·unseen". A cell that rose since the previous stage beyond evaluation noise is
   marked "▲ +x.x %" – for a part already trained on, that is forgetting; one that rose within noise
   gets the quieter "△ +x.x %". The jump baseline, if run, is the bottom row.
3. The loss curves.
4. The cost of each stage: parts, new parts, iterations, tokens, training-step time (evaluations
   and checkpoints excluded), tokens/s and MFU over that time, as the training console prints them;
   a wsd stage as two rows (its trunk, its cooldown branch), then the chain's total (branches
   counted in), the baseline, and the same table for the other schedule's chain if compared.
5. Samples: for each prompt, what every stage's model wrote (truncated to 400 characters).
6. Grow vs jump: final union bpb and loss, tokens and time of each, which one is better by how much
   (± the 95 % interval), and the same part by part.
7. Schedules: grow-cosine vs grow-WSD vs jump (only when grow.json has "variants": the plan's stages
   trained with the other schedule too, `grow --compare-schedules`). One row per model – each chain's
   last stage and the baseline – with its final union bpb and loss, the tokens in the final model's
   lineage, the tokens trained in all and the training-step time (cooldown branches included), then
   each pairwise difference (grow-WSD − grow-cosine, grow-WSD − jump, grow-cosine − jump) with its ±
   and verdict, and the same stage by stage for the two chains. It says that jump and grow-cosine
   trained on equal tokens, and how much grow-WSD's final model saw on top (its last branch, as a %
   of the trunk).
8. Seed spread (only when the jump and/or the chain were trained again with other seeds, `--repeat K`
   and `--repeat-grow`): mean, sample SD and range of the final union bpb over the K seeds of each;
   with repeated chains, grow − jump seed by seed (seed offset n against seed offset n) and a 95 %
   t-interval over those K differences (df K − 1), which then decides the grow-vs-jump verdict
   everywhere. Without repeated chains, a grow − jump difference below about 2·√2·SD of jump's seeds
   is said to be within seed-to-seed noise.
9. A plain verdict per stage (`verdicts`): how the union val bpb moved and whether parts trained on in
   earlier stages got worse, then a note on what the ± mean.

Schedules (grow.json "schedule" and each stage's "schedule"): a cosine stage re-warms and decays; a wsd
stage is a stretch of a constant-LR trunk (its folder `trunk_dir`) whose scores, samples and matrix
cells are those of a short cooldown branch off the trunk's end (`run_dir`, the stage's "branch"
record: iterations, tokens, time). The next stage continues the trunk, so a wsd chain's final model has
seen every trunk stretch plus the last branch, while its cost counts every branch: the cost table shows
trunk and branch as rows of their own and counts branches in the totals, the plot draws each branch as
a short side track off the trunk, and grow vs jump's tokens and time include branches.

How sure a difference is: every model is scored on the same val batches, so two scores pair up batch
by batch (growgpt.stats). Each difference is shown as "new − old ± h", h the half-width of its 95 %
paired t-interval over the N val batches; the difference is exactly that of the two figures in the
matrix. "better", "worse" and "forgetting" need the interval to exclude 0 ("mild forgetting" up to
a 5 % rise, "forgetting" above); otherwise the words are "no difference detectable with N val batches
— raise `[eval] batches` to tighten it (±h now)". Two scores drawn on different batches (other
[eval] settings, another union) are "not comparable (scored on different batches)". The intervals
cover evaluation-sampling noise only (which val windows were scored), not seed-to-seed training noise.
The one exception is the interval over seeds (section 8): "over K seeds: grow − jump = d ± h (95 % t over
seeds: covers training noise: init and batch order, as well as evaluation sampling)"; the report names the
noise each interval covers wherever it shows one.
A grow.json written before evaluation kept per-batch sums has no intervals: the old rule applies (a
rise of more than 1 % is forgetting) and the sentences say "(no interval: re-run grow to rescore)".

The verdicts, the summary and grow vs jump compare bits per byte when every score has them, else the
loss (a grow.json written before bpb was recorded); the intervals use the same metric, never a mix.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any, NamedTuple

from growgpt import stats
from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_bytes
from growgpt.metrics import read_metrics

GROW_FILE = "grow.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LOSS_PNG = "loss_curves.png"

FORGETTING_PCT = 1.0         # without an interval (old grow.json): a rise above this (in %) is forgetting
STRONG_FORGETTING_PCT = 5.0  # above this it is plain "forgetting", up to it "mild forgetting"
SAMPLE_CHARS = 400           # samples are cut to this many characters in the report
BASELINE_LABEL = "(from scratch on the union)"

MINUS = "\u2212"
ARROW = "\u2192"
EN_DASH = "\u2013"
RISE = "\u25b2"               # ▲ a rise beyond evaluation noise (or, without an interval, any rise)
RISE_WITHIN_NOISE = "\u25b3"  # △ a rise within evaluation noise


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


def _loss(ev: dict | None, metric: str = "loss") -> float | None:
    """A score's val loss (metric "loss") or bits per byte ("bpb"); None when it has none."""
    value = (ev or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _scored_rows(results: dict) -> list[dict]:
    return list(results.get("stages") or []) + ([results["baseline"]] if results.get("baseline") else [])


def _compare_metric(results: dict) -> str:
    """"bpb" when every recorded score (each part and the union, of every stage and the baseline) has
    bits per byte, else "loss": the verdicts never mix the two."""
    for row in _scored_rows(results):
        scores = list(((row.get("eval") or {}).get("parts") or {}).values()) + [_union_eval(row)]
        if any(_loss(ev) is not None and _loss(ev, "bpb") is None for ev in scores):
            return "loss"
    return "bpb"


def _bytes_per_token(results: dict) -> float | None:
    """UTF-8 bytes per token of the union's val set (the whole set when the manifests count its bytes,
    else the scored windows), from the last row that has it."""
    for row in reversed(_scored_rows(results)):
        union = _union_eval(row) or {}
        tokens, n_bytes = union.get("val_tokens"), union.get("val_bytes")
        if isinstance(tokens, int) and tokens > 0 and isinstance(n_bytes, int) and n_bytes > 0:
            return n_bytes / tokens
        if isinstance(union.get("bytes_per_token"), (int, float)):
            return float(union["bytes_per_token"])
    return None


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


def _f_bpb(x: float | None) -> str:
    return "\u2013" if x is None else f"{x:.3f}"  # a third digit: bpb is about a third of the loss


def _f_metric(x: float | None, metric: str) -> str:
    return _f_bpb(x) if metric == "bpb" else _f_loss(x)


METRIC_NAMES = {"loss": "val loss", "bpb": "val bpb"}


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
    """MFU as a percentage; "?" above 100 % (a grow.json from before MFU was checked: the peak it was
    measured against was too low), a dash when unknown."""
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "\u2013"
    return f"{x * 100:.1f} %" if x <= 1 else "? (peak too low)"


def _f_iters(stage: dict) -> str:
    a, b = stage.get("start_iter"), stage.get("end_iter")
    if a is None and b is None:
        return "\u2013"
    return f"{a if a is not None else '?'} {ARROW} {b if b is not None else '?'}"


def _f_lr(x: Any) -> str:
    return f"{x:.1e}" if isinstance(x, (int, float)) else "\u2013"


# --------------------------------------------------------------------------------------------------
# Paired differences: how sure a difference between two scores is (growgpt.stats)
# --------------------------------------------------------------------------------------------------

NO_INTERVAL_NOTE = "(no interval: re-run grow to rescore)"
ONE_BATCH_NOTE = "(no interval from 1 val batch: raise `[eval] batches`)"
NOT_COMPARABLE = "not comparable (scored on different batches)"


def _drawn(row: dict, part: str | None) -> dict | None:
    """How a score's val batches were drawn: the score's own record (grow stamps each score), else its
    row's; for the union also which corpus parts it covers."""
    ev = row.get("eval") or {}
    score = (_union_eval(row) if part is None else _part_eval(row, part)) or {}
    drawn = score.get("batches") or ev.get("batches")
    drawn = dict(drawn) if isinstance(drawn, dict) else {}
    if part is None and isinstance(ev.get("union_parts"), list):
        drawn["union_parts"] = sorted(map(str, ev["union_parts"]))
    return drawn or None


def _pair(old_row: dict, new_row: dict, part: str | None, metric: str) -> stats.PairedDifference:
    """new − old of one part's score (the union's for part None), with its paired interval if there is one."""
    def score(row: dict) -> dict | None:
        return _union_eval(row) if part is None else _part_eval(row, part)

    return stats.paired_difference(score(old_row), score(new_row), metric, _drawn(old_row, part),
                                   _drawn(new_row, part))


def _diff_digits(metric: str, half_width: float | None) -> int:
    """Decimals of a difference: as the matrix prints the metric, more when the interval is narrower
    (at least one significant digit of the half-width)."""
    digits = 3 if metric == "bpb" else 2
    if half_width:
        digits = max(digits, min(6, -math.floor(math.log10(half_width))))
    return digits


def _f_pm(pair: stats.PairedDifference, signed: bool = True) -> str:
    """"+0.022 ± 0.008": a paired difference and the half-width of its 95 % interval (unsigned: "0.022 ± …")."""
    return _f_pm_values(pair.metric, pair.diff, pair.half_width, signed)


def _f_pm_values(metric: str, diff: float, half_width: float, signed: bool = True) -> str:
    """"+0.022 ± 0.008" for any difference and half-width of `metric` (paired, or over seeds)."""
    digits = _diff_digits(metric, half_width)
    value = f"{abs(diff):.{digits}f}"
    if signed and float(value) != 0:
        value = ("+" if diff > 0 else MINUS) + value
    return f"{value} \u00b1 {half_width:.{digits}f}"


def _no_difference(pair: stats.PairedDifference) -> str:
    """The words for an interval that includes 0."""
    if pair.half_width == 0:  # the same figure on every batch: more batches would not change that
        return f"no difference detectable with {pair.batches} val batches (the same on every batch)"
    digits = _diff_digits(pair.metric, pair.half_width)
    return (f"no difference detectable with {pair.batches} val batches \u2014 raise `[eval] batches` to "
            f"tighten it (\u00b1{pair.half_width:.{digits}f} now)")


def _interval_notes(pairs: list[stats.PairedDifference | None]) -> str:
    """" (no interval: …)" for a sentence some of whose comparisons have no interval; "" otherwise."""
    statuses = {p.status for p in pairs if p is not None}
    notes = [note for status, note in ((stats.NO_BATCH_SUMS, NO_INTERVAL_NOTE), (stats.ONE_BATCH, ONE_BATCH_NOTE))
             if status in statuses]
    return "".join(f" {n}" for n in notes)


def _method(pairs: list[stats.PairedDifference | None]) -> str:
    """"95 % paired t-interval over 20 val batches" for the pairs that have an interval."""
    counts = sorted({p.batches for p in pairs if p is not None and p.has_interval})
    over = f"over {counts[0]} val batches" if len(counts) == 1 else "over the val batches both scores share"
    return f"{stats.CONFIDENCE * 100:.0f} % paired t-interval {over}"


# --------------------------------------------------------------------------------------------------
# The analysis: matrix cells, verdicts, grow vs jump
# --------------------------------------------------------------------------------------------------

def _cell(row: dict, prev: dict | None, part: str | None, trained: set[str] | None, metric: str = "loss") -> dict:
    """One matrix cell: the metric's value ("loss" or "bpb"), ppl, unseen?, the % change since the
    previous stage when it rose, and the paired difference from the previous stage (None for the first)."""
    ev = _union_eval(row) if part is None else _part_eval(row, part)
    value = _loss(ev, metric)
    rise = pair = None
    if prev is not None and value is not None:
        old = _loss(_union_eval(prev) if part is None else _part_eval(prev, part), metric)
        if old is not None:
            pair = _pair(prev, row, part, metric)
            if value > old:
                rise = _pct(old, value)
    return {"metric": metric, "value": value, "ppl": (ev or {}).get("ppl"), "rise": rise, "pair": pair,
            "unseen": part is not None and trained is not None and part not in trained}


def _rise_mark(cell: dict) -> str | None:
    """▲ for a rise beyond evaluation noise, or any rise that has no interval; △ for a rise within noise."""
    if cell["rise"] is None:
        return None
    pair = cell["pair"]
    return RISE_WITHIN_NOISE if pair is not None and pair.has_interval and not pair.rose else RISE


def _matrix(results: dict, metric: str = "loss") -> list[tuple[str, list[dict]]]:
    """Rows of (label, cells) of one metric ("loss" or "bpb"); cells follow results["parts"] then the union."""
    parts = results["parts"]
    stages = results["stages"]
    rows = []
    for k, stage in enumerate(stages):
        trained = _seen_before(stages, k) | set(_stage_parts(stage))
        prev = stages[k - 1] if k else None
        rows.append((str(stage.get("name", f"stage {k + 1}")),
                     [_cell(stage, prev, p, trained, metric) for p in parts]
                     + [_cell(stage, prev, None, None, metric)]))
    base = results.get("baseline")
    if base:
        trained = set(_stage_parts(base)) if base.get("parts") else set(parts)
        rows.append((f"{base.get('name') or 'jump'} {BASELINE_LABEL}",
                     [_cell(base, None, p, trained, metric) for p in parts]
                     + [_cell(base, None, None, None, metric)]))
    return rows


def _forgetting_label(max_rise: float) -> str:
    """The word for the largest % rise of parts trained before, when no interval judges it."""
    if max_rise <= FORGETTING_PCT:
        return "no forgetting"
    return _forgetting_strength(max_rise)


def _forgetting_strength(rise: float) -> str:
    """The word for a rise that is forgetting: "mild" up to STRONG_FORGETTING_PCT."""
    return "mild forgetting" if rise <= STRONG_FORGETTING_PCT else "forgetting"


class Change(NamedTuple):
    """How a part trained before stage k moved from stage k−1 to stage k."""

    part: str
    old: float
    new: float
    pct: float
    pair: stats.PairedDifference  # new − old, paired over the val batches when it can be

    @property
    def is_forgetting(self) -> bool:
        """A rise whose interval excludes 0; without an interval, a rise above FORGETTING_PCT."""
        if self.pair.has_interval:
            return self.pair.rose
        return self.pair.status != stats.DIFFERENT_BATCHES and self.pct > FORGETTING_PCT

    @property
    def rose_within_noise(self) -> bool:
        return self.pair.has_interval and self.new > self.old and not self.pair.rose


def _old_part_changes(stages: list[dict], k: int, order: list[str], metric: str = "loss") -> list[Change]:
    """The change of the metric of every part trained before stage k, in part order."""
    seen = _seen_before(stages, k)
    changes = []
    for part in [p for p in order if p in seen] + sorted(seen - set(order)):
        old, new = _loss(_part_eval(stages[k - 1], part), metric), _loss(_part_eval(stages[k], part), metric)
        if old is not None and new is not None:
            changes.append(Change(part, old, new, _pct(old, new), _pair(stages[k - 1], stages[k], part, metric)))
    return changes


def _rise_text(change: Change, metric: str) -> str:
    """"part 1 rose by 2.3 % (0.955 → 0.977; +0.022 ± 0.008)"; without an interval "(0.955 → 0.977)"."""
    interval = f"; {_f_pm(change.pair)}" if change.pair.has_interval else ""
    return (f"part {change.part} rose by {_f_signed_pct(change.pct).lstrip('+')} "
            f"({_f_metric(change.old, metric)} {ARROW} {_f_metric(change.new, metric)}{interval})")


def _forgetting_tail(changes: list[Change], order: list[str], metric: str) -> str:
    """What became of the parts trained before a stage: forgetting only where a rise is beyond noise."""
    if not changes:
        return "no part trained before was evaluated in both stages"
    apart = [c for c in changes if c.pair.status == stats.DIFFERENT_BATCHES]
    judged = [c for c in changes if c.pair.status != stats.DIFFERENT_BATCHES]
    forgot = [c for c in judged if c.is_forgetting]
    noisy = [c for c in judged if c.rose_within_noise]
    clauses = []
    if forgot:
        clauses.append(f"{'; '.join(_rise_text(c, metric) for c in forgot)}: "
                       f"{_forgetting_strength(max(c.pct for c in forgot))}")
    if noisy:
        widest = max((c.pair for c in noisy), key=lambda p: p.half_width)
        clauses.append(f"{'; '.join(_rise_text(c, metric) for c in noisy)}, within noise: {_no_difference(widest)}")
    if judged and not forgot and not noisy:
        # No rise, or (without intervals) none above FORGETTING_PCT.
        earlier = _parts_phrase([c.part for c in judged], order)
        worst = max(c.pct for c in judged)
        if all(c.new == c.old for c in judged):
            moved = "did not change"
        elif worst <= 0:
            moved = "all fell" if len(judged) > 1 else "fell"
        else:
            moved = f"rose by at most {_f_signed_pct(worst).lstrip('+')}"
        clauses.append(f"earlier {earlier} {moved}: {_forgetting_label(worst)}")
    if apart:
        clauses.append(f"{_parts_phrase([c.part for c in apart], order)}: {NOT_COMPARABLE}")
    return "; ".join(clauses)


def _union_move(old_row: dict, new_row: dict, metric: str) -> tuple[str, stats.PairedDifference | None]:
    """"union val bpb 1.187 → 1.064 (−10.4 %; −0.123 ± 0.004): better", and the pair behind it."""
    what = f"union {METRIC_NAMES[metric]}"
    old, new = _loss(_union_eval(old_row), metric), _loss(_union_eval(new_row), metric)
    if old is None or new is None:
        return f"{what} {_f_metric(new, metric)}", None
    pair = _pair(old_row, new_row, None, metric)
    text = f"{what} {_f_metric(old, metric)} {ARROW} {_f_metric(new, metric)} ({_f_signed_pct(_pct(old, new))}"
    if pair.has_interval:
        words = "better" if pair.fell else "worse" if pair.rose else _no_difference(pair)
        return f"{text}; {_f_pm(pair)}): {words}", pair
    if pair.status == stats.DIFFERENT_BATCHES:
        return f"{text}): {NOT_COMPARABLE}", pair
    return f"{text})", pair


def verdicts(results: dict) -> list[str]:
    """One plain sentence per finished stage.

    Stage 1: "Stage a1 trained part 1 from scratch: union val bpb 1.234 (loss 5.10, ppl 164.0)."
    Stage k >= 2: "Stage a1-3 (added parts 2–3): union val bpb 1.187 → 1.064 (−10.4 %; −0.123 ± 0.004):
    better; part 1 rose by 2.3 % (0.955 → 0.977; +0.022 ± 0.008): mild forgetting."

    Each difference is new − old with the half-width of its 95 % paired t-interval (growgpt.stats).
    "better"/"worse" and "forgetting" only when the interval excludes 0 ("mild" up to
    STRONG_FORGETTING_PCT); a change within it is "no difference detectable with N val batches —
    raise `[eval] batches` to tighten it (±x now)"; two scores drawn on different batches are "not
    comparable". Only parts trained on in an earlier stage count as forgotten.

    Scores without per-batch sums (a grow.json written before evaluation kept them) keep the old rule
    — a rise above FORGETTING_PCT is forgetting — and the sentence ends "(no interval: re-run grow to
    rescore)". Without bits per byte in every score (see _compare_metric) the same sentences use the
    val loss: "union val loss 5.10 (ppl 164.0)", "part 1 rose by 2.3 % (3.95 → 4.04)".
    """
    stages = results.get("stages") or []
    order = [str(p) for p in results.get("parts") or []]
    metric = _compare_metric(results)
    what = f"union {METRIC_NAMES[metric]}"
    out = []
    for k, stage in enumerate(stages):
        name = stage.get("name", f"stage {k + 1}")
        if k == 0:
            ev = _union_eval(stage) or {}
            details = [f"loss {_f_loss(_loss(ev))}"] if metric == "bpb" else []
            if isinstance(ev.get("ppl"), (int, float)):
                details.append(f"ppl {_f_ppl(ev['ppl'])}")
            details_text = f" ({', '.join(details)})" if details else ""
            out.append(f"Stage {name} trained {_parts_phrase(_stage_parts(stage), order)} from scratch: "
                       f"{what} {_f_metric(_loss(ev, metric), metric)}{details_text}.")
            continue
        new = _new_parts(stages, k)
        added = f"added {_parts_phrase(new, order)}" if new else "no new parts"
        union_text, union_pair = _union_move(stages[k - 1], stage, metric)
        changes = _old_part_changes(stages, k, order, metric)
        notes = _interval_notes([union_pair] + [c.pair for c in changes])
        out.append(f"Stage {name} ({added}): {union_text}; {_forgetting_tail(changes, order, metric)}{notes}.")
    return out


def _totals(stages: list[dict], key: str) -> float | None:
    """The sum of `key` ("tokens", "seconds") over a chain's stages, wsd cooldown branches included: what
    the chain spent in all. None when a stage lacks the figure."""
    values = [s.get(key) for s in stages] + [b.get(key) for b in map(_branch, stages) if b is not None]
    return sum(values) if values and all(_is_number(v) for v in values) else None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _branch(stage: dict) -> dict | None:
    """A wsd stage's cooldown branch (its own iterations, tokens, time); None for a cosine stage."""
    branch = stage.get("branch")
    return branch if isinstance(branch, dict) else None


def _grow_minus_jump(results: dict, part: str | None, metric: str) -> stats.PairedDifference:
    """grow − jump (the last stage minus the baseline) on one part, or the union for part None."""
    return _pair(results["baseline"], results["stages"][-1], part, metric)


def _winner_words(pair: stats.PairedDifference) -> str:
    """The short verdict of a grow − jump pair, as the per-part table gives it."""
    if pair.has_interval:
        return "growing better" if pair.fell else "jumping better" if pair.rose else "no difference detectable"
    if pair.status == stats.DIFFERENT_BATCHES:
        return NOT_COMPARABLE
    return (NO_INTERVAL_NOTE if pair.status == stats.NO_BATCH_SUMS else ONE_BATCH_NOTE).strip("()")


def grow_vs_jump(results: dict) -> str | None:
    """The plain sentence comparing the last stage with the jump baseline; None without a baseline.

    "Growing ended at a union val bpb of 1.064, jumping at 1.080: growing is better by 0.016 ± 0.004
    (1.5 % lower bpb), with growing using …" — "better" only when the paired interval of grow − jump
    excludes 0, else "no difference detectable with N val batches — raise …"."""
    base, stages = results.get("baseline"), results.get("stages") or []
    if not base or not stages:
        return None
    metric = _compare_metric(results)
    noun = "loss" if metric == "loss" else "bpb"
    digits = 2 if metric == "loss" else 3  # as the report prints them
    grow_loss, jump_loss = _loss(_union_eval(stages[-1]), metric), _loss(_union_eval(base), metric)
    if grow_loss is None or jump_loss is None:
        return f"Grow vs jump: no union {METRIC_NAMES[metric]} to compare."
    g_tok, j_tok = _totals(stages, "tokens"), base.get("tokens")
    g_sec, j_sec = _totals(stages, "seconds"), base.get("seconds")
    pair = _grow_minus_jump(results, None, metric)
    lower = (f"{abs(_pct(jump_loss, grow_loss)):.1f} % lower {noun}" if grow_loss < jump_loss
             else f"{abs(_pct(grow_loss, jump_loss)):.1f} % lower {noun}")
    if pair.has_interval:
        winner = "growing" if pair.fell else "jumping" if pair.rose else None
        verdict = f"{winner} is better by {_f_pm(pair, signed=False)} ({lower})" if winner else _no_difference(pair)
    elif pair.status == stats.DIFFERENT_BATCHES:
        verdict = NOT_COMPARABLE
    else:  # no interval: the difference as it stands, flagged
        diff = jump_loss - grow_loss
        if round(grow_loss, digits) == round(jump_loss, digits):
            verdict = "growing and jumping end up level"
        else:
            verdict = f"{'growing' if diff > 0 else 'jumping'} is better by {abs(diff):.{digits}f} ({lower})"
        verdict += _interval_notes([pair])
    cost = []
    if isinstance(g_tok, (int, float)) and isinstance(j_tok, (int, float)) and j_tok:
        cost.append(f"{g_tok / j_tok:.2f}\u00d7 the tokens ({_f_count(g_tok)} vs {_f_count(j_tok)})")
    if isinstance(g_sec, (int, float)) and isinstance(j_sec, (int, float)) and j_sec:
        cost.append(f"{g_sec / j_sec:.2f}\u00d7 the time ({_f_time(g_sec)} vs {_f_time(j_sec)})")
    cost_text = f", with growing using {' and '.join(cost)}" if cost else ""
    spread = seed_spread(results)
    if spread is not None and spread.metric != metric:
        spread = None  # never mix the metrics of two intervals in one sentence
    if spread is not None and spread.has_interval:
        # Repeated seeds: the verdict follows the interval over seeds; this seed's paired one stays as a detail.
        this_seed = f"{_f_pm(pair)} ({EVAL_NOISE_SHORT})" if pair.has_interval else verdict
        verdict = (f"{_seed_interval_text(spread)}: {_seed_words(spread)}; this seed alone: grow {MINUS} jump "
                   f"{this_seed}")
    text = (f"Growing ended at a union {METRIC_NAMES[metric]} of {_f_metric(grow_loss, metric)}, jumping at "
            f"{_f_metric(jump_loss, metric)}: {verdict}{cost_text}.")
    if spread is not None and not spread.has_interval and _seed_threshold(spread) is not None:
        threshold = _seed_threshold(spread)
        digits = _diff_digits(metric, threshold or None)
        text += (f" Jump's union {METRIC_NAMES[metric]} has a sample SD of {spread.jump.sd:.{digits}f} over "
                 f"{spread.jump.k} seeds: a grow {MINUS} jump difference smaller than about 2\u00b7\u221a2\u00b7SD = "
                 f"{threshold:.{digits}f} is within seed-to-seed noise (training noise: init and batch order), "
                 f"which the \u00b1 above does not cover; this one ({abs(grow_loss - jump_loss):.{digits}f}) is "
                 f"{'within' if abs(grow_loss - jump_loss) < threshold else 'beyond'} it.")
    missing = [p for p in results["parts"] if p not in _seen_before(stages, len(stages))]
    if missing:
        text += f" The grow run has not trained on {_parts_phrase(missing, results['parts'])} yet."
    return text


# --------------------------------------------------------------------------------------------------
# Schedules (grow-cosine vs grow-WSD vs jump) and seeds
# --------------------------------------------------------------------------------------------------

SCHEDULE_LABELS = {"cosine": "grow-cosine", "wsd": "grow-WSD"}
SCHEDULES_HEADING = "Schedules: grow-cosine vs grow-WSD vs jump"
SEEDS_HEADING = "Seed spread"
# What an interval over seeds covers (each seed trains its own model), as the report words it.
SEED_NOISE = ("95 % t over seeds: covers training noise: init and batch order, as well as evaluation "
              "sampling")
SEED_NOISE_PLAIN = "training noise (init and batch order) as well as evaluation sampling"
EVAL_NOISE_SHORT = "evaluation-sampling noise only"


def _schedule_label(schedule: str) -> str:
    return SCHEDULE_LABELS.get(schedule, f"grow-{schedule}")


def _main_schedule(results: dict) -> str:
    """The main chain's schedule: results["schedule"], else its stages', else cosine (an older grow.json)."""
    named = results.get("schedule") or next((s.get("schedule") for s in results.get("stages") or []
                                             if isinstance(s.get("schedule"), str)), None)
    return str(named or "cosine")


def _chains(results: dict) -> dict[str, list[dict]]:
    """schedule -> the stage entries of the chain trained with it: the main chain, then the variants."""
    chains: dict[str, list[dict]] = {}
    if results.get("stages"):
        chains[_main_schedule(results)] = list(results["stages"])
    for key, variant in (results.get("variants") or {}).items():
        # Only a finished chain of the same stages: an interrupted one's last stage is not its final model.
        if isinstance(variant, dict) and isinstance(variant.get("stages"), list) and variant["stages"] and \
                [s.get("name") for s in variant["stages"]] == [s.get("name") for s in results.get("stages") or []]:
            chains.setdefault(str(variant.get("schedule") or key), list(variant["stages"]))
    return chains


def _lineage_tokens(stages: list[dict]) -> float | None:
    """Tokens the chain's final model has seen: every stage's trunk (or whole cosine stage), plus, for a
    wsd chain, the last stage's cooldown branch only (each branch is a side track; the next stage
    continues the trunk)."""
    trunk = [s.get("tokens") for s in stages]
    if not stages or not all(_is_number(v) for v in trunk):
        return None
    last = _branch(stages[-1])
    if last is None:
        return sum(trunk)
    return sum(trunk) + last["tokens"] if _is_number(last.get("tokens")) else None


class Contestant(NamedTuple):
    """One model of the schedule comparison: a chain's last stage, or the jump baseline."""

    key: str                     # the schedule ("cosine", "wsd"), or "jump"
    label: str                   # "grow-cosine", "grow-WSD", "jump"
    row: dict                    # the scored entry
    main: bool                   # the main chain (results["stages"]) or the baseline
    lineage_tokens: float | None  # tokens in the final model's lineage
    tokens: float | None         # tokens trained in all, branches included
    seconds: float | None        # training-step time in all, branches included


def _contestants(results: dict) -> list[Contestant]:
    """grow-cosine, grow-WSD (whichever is main or variant) and jump, those that exist; [] without variants."""
    if not results.get("variants"):
        return []
    chains, main = _chains(results), _main_schedule(results)
    order = sorted(chains, key=lambda s: (s not in SCHEDULE_LABELS, list(SCHEDULE_LABELS).index(s)
                                          if s in SCHEDULE_LABELS else 0, s))
    out = [Contestant(s, _schedule_label(s), chains[s][-1], s == main and bool(results.get("stages")),
                      _lineage_tokens(chains[s]), _totals(chains[s], "tokens"), _totals(chains[s], "seconds"))
           for s in order]
    base = results.get("baseline")
    if base:
        out.append(Contestant("jump", "jump", base, True, base.get("tokens"), base.get("tokens"),
                              base.get("seconds")))
    return out


def _extended_metric(results: dict) -> str:
    """The metric of the schedule and seed comparisons: the report's (_compare_metric), and "loss" when
    a union score of a variant or a repeat lacks bits per byte."""
    metric = _compare_metric(results)
    if metric == "bpb":
        extra = [s for v in (results.get("variants") or {}).values() if isinstance(v, dict)
                 for s in v.get("stages") or []]
        extra += [s for r in results.get("repeats") or [] for s in r.get("stages") or []]
        extra += list((results.get("baseline") or {}).get("repeats") or [])
        if any(_loss(_union_eval(r)) is not None and _loss(_union_eval(r), "bpb") is None for r in extra):
            return "loss"
    return metric


def _versus_words(pair: stats.PairedDifference, label: str) -> str:
    """The verdict of `label` − other: "<label> better"/"worse" when the interval excludes 0."""
    if pair.has_interval:
        return f"{label} better" if pair.fell else f"{label} worse" if pair.rose else _no_difference(pair)
    if pair.status == stats.DIFFERENT_BATCHES:
        return NOT_COMPARABLE
    return (NO_INTERVAL_NOTE if pair.status == stats.NO_BATCH_SUMS else ONE_BATCH_NOTE).strip("()")


def _f_diff(pair: stats.PairedDifference) -> str:
    """"+0.012 ± 0.004", or the bare difference without an interval, a dash when not comparable."""
    if pair.has_interval:
        return _f_pm(pair)
    if pair.diff is None:
        return "\u2013"
    digits = _diff_digits(pair.metric, None)
    return f"{'+' if pair.diff > 0 else MINUS if pair.diff < 0 else ''}{abs(pair.diff):.{digits}f}"


class Versus(NamedTuple):
    """a − b between two contestants on the union, paired over the val batches."""

    a: Contestant
    b: Contestant
    pair: stats.PairedDifference

    @property
    def label(self) -> str:
        return f"{self.a.label} {MINUS} {self.b.label}"


def _versus(results: dict, metric: str) -> list[Versus]:
    """WSD − cosine, WSD − jump, cosine − jump (those whose both sides exist, both scored)."""
    contestants = _contestants(results)
    grows = [c for c in contestants if c.key != "jump"]
    order = [c for c in grows if c.key == "wsd"] + [c for c in grows if c.key != "wsd"] + \
            [c for c in contestants if c.key == "jump"]
    out = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if _loss(_union_eval(a.row), metric) is not None and _loss(_union_eval(b.row), metric) is not None:
                out.append(Versus(a, b, _pair(b.row, a.row, None, metric)))
    return out


StageVersus = tuple[str, "float | None", "float | None", "stats.PairedDifference | None"]


def _per_stage_versus(results: dict, metric: str) -> list[StageVersus]:
    """(stage, cosine value, wsd value, wsd − cosine) for each stage both chains have, in the plan's order."""
    chains = _chains(results)
    if not results.get("variants") or "cosine" not in chains or "wsd" not in chains:
        return []
    wsd = {str(s.get("name")): s for s in chains["wsd"]}
    out = []
    for stage in chains["cosine"]:
        other = wsd.get(str(stage.get("name")))
        if other is None:
            continue
        c, w = _loss(_union_eval(stage), metric), _loss(_union_eval(other), metric)
        out.append((str(stage.get("name")), c, w, _pair(stage, other, None, metric) if None not in (c, w) else None))
    return out


def _pct_more(extra: float, base: float) -> str:
    return f"+{extra / base * 100:.1f} %" if base else "\u2013"


def _schedule_notes(results: dict, metric: str) -> list[str]:
    """What the schedule comparison's rows hold: equal tokens for jump and grow-cosine, the branch grow-WSD's
    final model saw on top, and the noise the ± cover."""
    by_key = {c.key: c for c in _contestants(results)}
    notes = []
    cos, wsd, jump = by_key.get("cosine"), by_key.get("wsd"), by_key.get("jump")
    if cos and jump and _is_number(cos.tokens) and _is_number(jump.tokens):
        if cos.tokens == jump.tokens:
            notes.append(f"Jump and grow-cosine trained on equal tokens ({_f_count(jump.tokens)} each): their "
                         f"difference is at equal training tokens.")
        else:
            notes.append(f"Jump trained on {_f_count(jump.tokens)} tokens, grow-cosine on {_f_count(cos.tokens)}: "
                         f"not equal training tokens.")
    if wsd:
        stages = _chains(results)["wsd"]
        trunk = [s.get("tokens") for s in stages]
        last = _branch(stages[-1])
        if all(_is_number(v) for v in trunk) and last is not None and _is_number(last.get("tokens")):
            trunk_sum = sum(trunk)
            equal = ", as many as grow-cosine's stages" if cos and cos.tokens == trunk_sum else ""
            text = (f"grow-WSD's final model saw its constant-LR trunk ({_f_count(trunk_sum)} tokens{equal}) plus "
                    f"its last cooldown branch on top ({_f_count(last['tokens'])} tokens, "
                    f"{_pct_more(last['tokens'], trunk_sum)} of the trunk)")
            if _is_number(wsd.tokens) and len(stages) > 1:
                text += (f"; counting every stage's branch, grow-WSD trained on {_f_count(wsd.tokens)} tokens "
                         f"({_pct_more(wsd.tokens - trunk_sum, trunk_sum)} of the trunk)")
            notes.append(text + ". The next stage of a wsd chain continues the trunk, never a branch.")
    pairs = [v.pair for v in _versus(results, metric)]
    if any(p.has_interval for p in pairs):
        notes.append(f"Each \u00b1 is the half-width of the {_method(pairs)} (every model was scored on the same "
                     f"val batches): every interval here covers {stats.NOISE_COVERED}.")
    return notes


# Seeds -------------------------------------------------------------------------------------------

class Spread(NamedTuple):
    """The final union score of K runs that differ only in their seed."""

    label: str
    values: list[tuple[int, float]]  # (seed offset, value)

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(v for _, v in self.values) / self.k

    @property
    def sd(self) -> float | None:
        """The sample standard deviation (n − 1); None for fewer than 2 runs."""
        if self.k < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for _, v in self.values) / (self.k - 1))

    @property
    def low(self) -> float:
        return min(v for _, v in self.values)

    @property
    def high(self) -> float:
        return max(v for _, v in self.values)


class SeedSpread(NamedTuple):
    """The seed-to-seed spread of jump (the baseline and its repeats) and of the grow chain (the main chain
    and its repeats), and grow − jump per seed with a t-interval over seeds."""

    metric: str
    jump: Spread | None
    grow: Spread | None
    diffs: list[tuple[int, float]]   # (seed offset, grow − jump), seed offsets both have
    mean_diff: float | None          # over diffs
    half_width: float | None         # of the 95 % t-interval over the K diffs (df K − 1); None for K < 2

    @property
    def has_interval(self) -> bool:
        return self.half_width is not None

    @property
    def grow_better(self) -> bool:
        return self.has_interval and self.mean_diff + self.half_width < 0

    @property
    def jump_better(self) -> bool:
        return self.has_interval and self.mean_diff - self.half_width > 0


def _same_plan(repeat: dict, reference: dict) -> bool:
    """Whether a seed repeat was trained for the same plan as the run it repeats: grow signs a repeat with
    the reference's signature and a "-seedN" suffix. Rows without signatures are taken as they are."""
    mine, theirs = repeat.get("signature"), reference.get("signature")
    return not (isinstance(mine, str) and isinstance(theirs, str)) or mine.startswith(theirs)


def _offset(row: dict, default: int = 0) -> int:
    value = row.get("seed_offset", default)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def seed_spread(results: dict) -> SeedSpread | None:
    """The seed spread; None when neither the baseline nor the chain was repeated with other seeds.

    jump: the baseline (seed offset 0) and results["baseline"]["repeats"]; grow: the main chain's last
    stage (offset 0) and the last stage of each complete chain in results["repeats"]. grow − jump pairs
    seed offset n of the chain with seed offset n of the jump; with K >= 2 such pairs the interval is
    mean ± t(0.975, K − 1) × SD ÷ √K over the K differences: it covers training noise (init, batch
    order) as well as evaluation sampling.
    """
    base, stages = results.get("baseline"), results.get("stages") or []
    jump_repeats = [r for r in (base or {}).get("repeats") or [] if isinstance(r, dict)]
    grow_repeats = [r for r in results.get("repeats") or [] if isinstance(r, dict)]
    if not jump_repeats and not grow_repeats:
        return None
    metric = _extended_metric(results)
    jump = grow = None
    if base:
        values = {}
        for row in [base, *(r for r in jump_repeats if _same_plan(r, base))]:
            value = _loss(_union_eval(row), metric)
            if value is not None:
                values.setdefault(_offset(row), value)
        jump = Spread("jump", sorted(values.items())) if values else None
    if stages:
        values = {}
        last_name = stages[-1].get("name")
        main = _loss(_union_eval(stages[-1]), metric)
        if main is not None:
            values[0] = main
        for run in grow_repeats:
            chain = run.get("stages") or []
            if (len(chain) != len(stages) or chain[-1].get("name") != last_name
                    or not _same_plan(chain[-1], stages[-1])):
                continue  # under way (its last stage is not the chain's final model), or another plan's
            value = _loss(_union_eval(chain[-1]), metric)
            if value is not None:
                values.setdefault(_offset(run, _offset(chain[-1])), value)
        grow = Spread(_schedule_label(_main_schedule(results)), sorted(values.items())) if values else None
    diffs: list[tuple[int, float]] = []
    if jump and grow and grow_repeats:
        jump_by = dict(jump.values)
        diffs = [(n, g - jump_by[n]) for n, g in grow.values if n in jump_by]
    mean_diff = half_width = None
    if diffs:
        k = len(diffs)
        mean_diff = sum(d for _, d in diffs) / k
        if k >= 2:
            sd = math.sqrt(sum((d - mean_diff) ** 2 for _, d in diffs) / (k - 1))
            half_width = stats.t_quantile(0.5 + stats.CONFIDENCE / 2, k - 1) * sd / math.sqrt(k)
    return SeedSpread(metric, jump, grow, diffs, mean_diff, half_width)


def _seed_words(spread: SeedSpread) -> str:
    """The verdict of grow − jump over seeds."""
    k = len(spread.diffs)
    if spread.grow_better:
        return f"growing is better by {_f_pm_values(spread.metric, spread.mean_diff, spread.half_width, False)}"
    if spread.jump_better:
        return f"jumping is better by {_f_pm_values(spread.metric, spread.mean_diff, spread.half_width, False)}"
    if spread.half_width == 0:
        return f"no difference detectable over {k} seeds (the same on every seed)"
    digits = _diff_digits(spread.metric, spread.half_width)
    return (f"no difference detectable over {k} seeds \u2014 raise `--repeat` to tighten it "
            f"(\u00b1{spread.half_width:.{digits}f} now)")


def _seed_interval_text(spread: SeedSpread) -> str:
    """"over K seeds: grow − jump = d ± h (95 % t over seeds: covers …)"."""
    return (f"over {len(spread.diffs)} seeds: grow {MINUS} jump = "
            f"{_f_pm_values(spread.metric, spread.mean_diff, spread.half_width)} ({SEED_NOISE})")


def _seed_threshold(spread: SeedSpread) -> float | None:
    """2·√2·SD of jump over seeds: the size a grow − jump difference of single runs must exceed to stand out
    of seed-to-seed noise (the SD of a difference of two runs is √2·SD; ±2 of those)."""
    return 2 * math.sqrt(2) * spread.jump.sd if spread.jump and spread.jump.sd is not None else None


def _seed_sentences(results: dict, spread: SeedSpread) -> list[str]:
    """The seed spread in words, each saying which noise it covers."""
    metric, out = spread.metric, []
    name = METRIC_NAMES[metric]
    for s in (spread.jump, spread.grow):
        if s is None or s.k < 2:
            continue
        out.append(f"{s.label} over {s.k} seeds: final union {name} mean {_f_metric(s.mean, metric)}, "
                   f"sample SD {s.sd:.{_diff_digits(metric, s.sd or None)}f}, range {_f_metric(s.low, metric)}"
                   f"{EN_DASH}{_f_metric(s.high, metric)}: training noise (init and batch order) on one set of "
                   f"val batches.")
    if spread.has_interval:
        out.append(f"Seed by seed (seed offset n of the chain against seed offset n of the jump), "
                   f"{_seed_interval_text(spread)}: {_seed_words(spread)}.")
    elif spread.jump and spread.jump.sd is not None:
        threshold = _seed_threshold(spread)
        digits = _diff_digits(metric, threshold or None)
        text = (f"The grow chain was not repeated with other seeds (`--repeat-grow`): a grow {MINUS} jump "
                f"difference smaller than about 2\u00b7\u221a2\u00b7SD = {threshold:.{digits}f} is within "
                f"seed-to-seed noise")
        grow_value = _loss(_union_eval((results.get("stages") or [{}])[-1]), metric) if results.get("stages") else None
        jump_value = dict(spread.jump.values).get(0)
        if grow_value is not None and jump_value is not None:
            d = grow_value - jump_value
            inside = abs(d) < threshold
            text += (f"; this run's is {'+' if d > 0 else MINUS if d < 0 else ''}"
                     f"{abs(d):.{digits}f}: {'within' if inside else 'beyond'} seed-to-seed noise")
        out.append(text + ".")
    return out


def schedule_comparison_lines(results: dict) -> list[str]:
    """Console lines for the schedule comparison and the seed spread (`growgpt demo` prints them); [] when
    the run has no variants and no repeats. Each ± says which noise it covers."""
    metric = _extended_metric(results)
    lines = []
    contestants = [c for c in _contestants(results) if _loss(_union_eval(c.row), metric) is not None]
    if contestants:
        versus = _versus(results, metric)
        pairs = [v.pair for v in versus]
        how = (f"{_method(pairs)}: {stats.NOISE_COVERED}" if any(p.has_interval for p in pairs)
               else "no intervals")
        lines.append(f"schedules, union {METRIC_NAMES[metric]} (\u00b1 {how}):")
        width = max(len(c.label) for c in contestants) + 2
        for c in contestants:
            lines.append(f"  {c.label:<{width}s}{_loss(_union_eval(c.row), metric):.4f}  "
                         f"(tokens in its lineage {_f_count(c.lineage_tokens)}, trained in all {_f_count(c.tokens)}, "
                         f"{_f_time(c.seconds)})")
        width = max([len(v.label) for v in versus] + [0]) + 2
        for v in versus:
            lines.append(f"  {v.label:<{width}s}{_f_diff(v.pair)}: {_versus_words(v.pair, v.a.label)}")
    spread = seed_spread(results)
    if spread:
        pieces = []
        for s in (spread.jump, spread.grow):
            if s is not None and s.k >= 2:
                pieces.append(f"{s.label} {s.mean:.4f} mean, SD {s.sd:.4f} over {s.k} seeds "
                              f"(range {s.low:.4f}{EN_DASH}{s.high:.4f})")
        if spread.has_interval:
            pieces.append(f"{_seed_interval_text(spread)}: {_seed_words(spread)}")
        elif spread.jump and spread.jump.sd is not None:
            pieces.append(f"grow {MINUS} jump within about \u00b1{_seed_threshold(spread):.4f} "
                          f"(2\u00b7\u221a2\u00b7SD) is seed-to-seed noise")
        if pieces:
            lines.append(f"seeds, union {METRIC_NAMES[metric]}: " + "; ".join(pieces))
    return lines


def _schedule_blocks(results: dict) -> list[tuple]:
    """The schedule comparison section as blocks: ("p", text) and ("table", header, rows)."""
    metric = _extended_metric(results)
    noun = "bpb" if metric == "bpb" else "loss"
    contestants = _contestants(results)
    if not contestants:
        return []
    blocks: list[tuple] = []
    main = _main_schedule(results)
    rows = []
    for c in contestants:
        union = _union_eval(c.row)
        role = ("baseline, cosine" if c.key == "jump" else "main chain" if c.main else "variant: --compare-schedules")
        rows.append([f"{c.label} ({role})", _f_bpb(_loss(union, "bpb")), _f_loss(_loss(union)),
                     _f_count(c.lineage_tokens), _f_count(c.tokens), _f_time(c.seconds)])
    blocks.append(("table", ["", "Union val bpb", "Union val loss", "Tokens in the final model's lineage",
                             "Tokens trained in all (branches included)", "Train time (trunk + branches)"], rows))
    versus = _versus(results, metric)
    spread = seed_spread(results)
    if versus:
        rows = [[v.label, _f_diff(v.pair), _versus_words(v.pair, v.a.label)] for v in versus]
        if spread and spread.has_interval:
            grow_label = _schedule_label(main)
            rows.append([f"{grow_label} {MINUS} jump over {len(spread.diffs)} seeds",
                         _f_pm_values(metric, spread.mean_diff, spread.half_width),
                         _seed_words(spread).replace("growing", grow_label)])
        blocks.append(("table", ["Union", f"Difference ({noun})", "Verdict"], rows))
    blocks += [("p", text) for text in _schedule_notes(results, metric)]
    if spread and spread.has_interval:
        blocks.append(("p", f"The row over seeds is a 95 % t-interval over the per-seed differences (see "
                            f"{SEEDS_HEADING}): it covers {SEED_NOISE_PLAIN}."))
    per_stage = _per_stage_versus(results, metric)
    if per_stage:
        rows = [[name, _f_metric(c, metric), _f_metric(w, metric), _f_diff(p) if p else "\u2013",
                 _versus_words(p, "grow-WSD") if p else "\u2013"] for name, c, w, p in per_stage]
        blocks.append(("p", f"Stage by stage (each stage's model: the cosine stage, and the wsd stage's cooldown "
                            f"branch), union {METRIC_NAMES[metric]}:"))
        blocks.append(("table", ["Stage", f"grow-cosine ({noun})", f"grow-WSD ({noun})",
                                 f"grow-WSD {MINUS} grow-cosine", "Verdict"], rows))
    return blocks


def _seed_blocks(results: dict) -> list[tuple]:
    """The seed spread section as blocks; [] without repeats."""
    spread = seed_spread(results)
    if spread is None:
        return []
    metric = spread.metric
    noun = "bpb" if metric == "bpb" else "loss"
    blocks: list[tuple] = []
    rows = []
    for s in (spread.jump, spread.grow):
        if s is not None:
            rows.append([s.label, str(s.k), _f_metric(s.mean, metric),
                         "\u2013" if s.sd is None else f"{s.sd:.{_diff_digits(metric, s.sd or None)}f}",
                         f"{_f_metric(s.low, metric)} {EN_DASH} {_f_metric(s.high, metric)}"])
    if rows:
        blocks.append(("table", ["Runs", "Seeds", f"Mean union {noun}", "Sample SD", "Range"], rows))
    if spread.diffs:
        jump_by, grow_by = dict(spread.jump.values), dict(spread.grow.values)
        digits = _diff_digits(metric, spread.half_width or None)
        rows = [[f"+{n}" if n else "0 (main)", _f_metric(grow_by[n], metric), _f_metric(jump_by[n], metric),
                 f"{'+' if d > 0 else MINUS if d < 0 else ''}{abs(d):.{digits}f}"]
                for n, d in spread.diffs]
        blocks.append(("table", ["Seed offset", f"{spread.grow.label} ({noun})", f"jump ({noun})",
                                 f"grow {MINUS} jump"], rows))
    blocks += [("p", text) for text in _seed_sentences(results, spread)]
    blocks.append(("p", f"Which noise each interval covers: a \u00b1 over seeds spans models trained with other "
                        f"seeds and covers {SEED_NOISE_PLAIN}; a paired \u00b1 between two models (the matrices, "
                        f"grow vs jump, the schedules) covers {stats.NOISE_COVERED}."))
    return blocks


def _md_blocks(blocks: list[tuple]) -> list[str]:
    out = []
    for block in blocks:
        if block[0] == "p":
            out += [_md_prose(block[1]), ""]
        else:
            out += [_md_table([_md(h) for h in block[1]], [[_md_prose(c) for c in r] for r in block[2]]), ""]
    return out


def _html_blocks(blocks: list[tuple], cls: str) -> list[str]:
    out = []
    for block in blocks:
        if block[0] == "p":
            out.append(f"<p>{_h_prose(block[1])}</p>")
        else:
            rows = [f'<tr><td class="label">{_h(r[0])}</td>' + "".join(f"<td>{_h_prose(v)}</td>" for v in r[1:])
                    + "</tr>" for r in block[2]]
            out.append(_html_table(block[1], rows, cls))
    return out


def _summary(results: dict) -> str:
    stages, parts = results["stages"], results["parts"]
    if not stages:
        return (f"No stage has finished yet, so there is nothing to report beyond the plan's "
                f"{len(parts)} part(s).")
    last = stages[-1]
    union = _union_eval(last) or {}
    metric = _compare_metric(results)
    reached = f"a union val loss of {_f_loss(_loss(union))} (ppl {_f_ppl(union.get('ppl'))})"
    if metric == "bpb":
        reached = (f"a union val bpb of {_f_bpb(_loss(union, 'bpb'))} (loss {_f_loss(_loss(union))}, "
                   f"ppl {_f_ppl(union.get('ppl'))})")
    text = (f"{len(stages)} stage{'s' if len(stages) != 1 else ''} grew the model over "
            f"{_parts_phrase(parts, parts)}. The last stage, {last.get('name', '?')}, trained on "
            f"{_parts_phrase(_stage_parts(last), parts)} and reached {reached} over the val sets of all parts.")
    missing = [p for p in parts if p not in _seen_before(stages, len(stages))]
    if missing:
        text += f" {_parts_phrase(missing, parts).capitalize()} {'has' if len(missing) == 1 else 'have'} not been trained on yet."
    text += _forgetting_summary(results, metric)
    comparison = grow_vs_jump(results)
    text += f" {comparison}" if comparison else " No jump baseline (training from scratch on the union) was run."
    return text


def _forgetting_summary(results: dict, metric: str) -> str:
    """" The largest rise … : mild forgetting." over all stages: the largest rise that is forgetting
    (beyond noise, or above FORGETTING_PCT without an interval); "" when no part was scored twice."""
    stages, parts = results["stages"], results["parts"]
    judged = [(stages[k].get("name", f"stage {k + 1}"), c) for k in range(1, len(stages))
              for c in _old_part_changes(stages, k, parts, metric) if c.pair.status != stats.DIFFERENT_BATCHES]
    if not judged:
        return ""
    notes = _interval_notes([c.pair for _, c in judged])
    forgot = [(name, c) for name, c in judged if c.is_forgetting]
    if forgot:
        name, worst = max(forgot, key=lambda nc: nc[1].pct)
        beyond = " beyond evaluation noise" if worst.pair.has_interval else ""
        interval = f"; {_f_pm(worst.pair)}" if worst.pair.has_interval else ""
        return (f" The largest rise{beyond} of a part already trained on was {_f_signed_pct(worst.pct)} "
                f"(part {worst.part} in stage {name}, {_f_metric(worst.old, metric)} {ARROW} "
                f"{_f_metric(worst.new, metric)}{interval}): {_forgetting_strength(worst.pct)}{notes}.")
    if all(c.pair.has_interval for _, c in judged):
        return " No part already trained on rose beyond evaluation noise from one stage to the next: no forgetting."
    return (f" No part already trained on rose by more than {FORGETTING_PCT:g} % from one stage to "
            f"the next: no forgetting{notes}.")


def console_summary(results: dict) -> str:
    """One line for the console after `growgpt grow`: the last stage's union val bpb (or loss), grow −
    jump and the forgetting found, each difference with its ± (half-width of the 95 % paired interval)."""
    stages = results.get("stages") or []
    if not stages:
        return "no stage has finished yet"
    metric = _compare_metric(results)
    union = _union_eval(stages[-1]) or {}
    def four(x: float | None) -> str:  # the console's 4 decimals, a dash for a missing score
        return "\u2013" if x is None else f"{x:.4f}"

    if metric == "bpb":
        reached = f"union val bpb {four(_loss(union, 'bpb'))} (loss {four(_loss(union))})"
    else:
        reached = f"union val loss {four(_loss(union))}"
    pieces = [f"after '{stages[-1].get('name', '?')}' {reached}"]
    spread = seed_spread(results) if results.get("baseline") else None
    if spread is not None and spread.has_interval and spread.metric == metric:
        pieces.append(f"grow {MINUS} jump {_f_pm_values(metric, spread.mean_diff, spread.half_width)} {metric} over "
                      f"{len(spread.diffs)} seeds (training and evaluation noise): {_seed_words(spread)}")
    elif results.get("baseline") and _loss(_union_eval(results["baseline"]), metric) is not None:
        pair = _grow_minus_jump(results, None, metric)
        if pair.has_interval:
            words = ("growing is better" if pair.fell else "jumping is better" if pair.rose
                     else f"no difference detectable with {pair.batches} val batches")
            pieces.append(f"grow {MINUS} jump {_f_pm(pair)} {metric}: {words}")
        elif pair.status == stats.DIFFERENT_BATCHES:
            pieces.append(f"grow vs jump: {NOT_COMPARABLE}")
        else:  # the difference as it stands, flagged
            diff = _loss(union, metric) - _loss(_union_eval(results["baseline"]), metric)
            sign = "+" if diff > 0 else MINUS if diff < 0 else ""
            pieces.append(f"grow {MINUS} jump {sign}{abs(diff):.{_diff_digits(metric, None)}f} {metric} "
                          f"{_interval_notes([pair]).strip()}")
    wsd_vs_cosine = next((v for v in _versus(results, _extended_metric(results))
                          if (v.a.key, v.b.key) == ("wsd", "cosine")), None)
    if wsd_vs_cosine is not None:
        words = _versus_words(wsd_vs_cosine.pair, "grow-WSD").split(" \u2014 ")[0]  # without the advice
        pieces.append(f"grow-WSD {MINUS} grow-cosine {_f_diff(wsd_vs_cosine.pair)} {wsd_vs_cosine.pair.metric}: "
                      f"{words}")
    changes = [(stages[k].get("name", f"stage {k + 1}"), c) for k in range(1, len(stages))
               for c in _old_part_changes(stages, k, results["parts"], metric)]
    forgot = [f"part {c.part} in '{name}' " + (_f_pm(c.pair) if c.pair.has_interval else _f_signed_pct(c.pct))
              for name, c in changes if c.is_forgetting]
    if forgot:
        pieces.append(f"forgetting: {', '.join(forgot)}")
    elif changes:
        paired = all(c.pair.has_interval for _, c in changes)
        pieces.append("no forgetting beyond evaluation noise" if paired else f"no forgetting {NO_INTERVAL_NOTE}")
    return "; ".join(pieces)


def console_matrix(results: dict) -> list[str]:
    """The stage × part matrix in bpb (the loss when not every score has it) as console lines, each
    cell marked ▲ (a rise beyond evaluation noise), △ (a rise within noise), and a legend line."""
    metric = _compare_metric(results)
    rows = [(label.removesuffix(f" {BASELINE_LABEL}"), cells) for label, cells in _matrix(results, metric)]
    label_width = max([14] + [len(label) + 2 for label, _ in rows])
    lines = [f"{METRIC_NAMES[metric]:<{label_width}s}"
             + "".join(f"{'part ' + p:>12s}" for p in results["parts"]) + f"{'union':>12s}"]
    for label, cells in rows:
        text = "".join(f"{_f_metric(c['value'], metric) + ' ' + (_rise_mark(c) or ' '):>12s}" for c in cells)
        lines.append(f"{label:<{label_width}s}{text}")
    pairs = [c["pair"] for _, cells in rows for c in cells]
    if any(p is not None and p.has_interval for p in pairs):
        lines.append(f"{RISE} rose beyond evaluation noise, {RISE_WITHIN_NOISE} rose within noise "
                     f"({_method(pairs)}; evaluation-sampling noise only, not seed-to-seed noise)")
    elif any(c["rise"] is not None for _, cells in rows for c in cells):
        lines.append(f"{RISE} rose since the previous stage {NO_INTERVAL_NOTE}")
    return lines


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

def _curves(run_dir: Path, row: dict, folder: str | None = None,
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

    main = _main_schedule(results)
    colors = {main: ("tab:blue", "tab:cyan")}
    for schedule in _chains(results):
        colors.setdefault(schedule, ("tab:purple", "tab:pink"))
    named = len(colors) > 1 or main != "cosine"
    for schedule, stages in _chains(results).items():
        trunk_color, branch_color = colors[schedule]
        name = _schedule_label(schedule) if named else "grow"
        for stage in stages:
            branch = _branch(stage)
            if branch is None:
                add(*_curves(run_dir, stage), trunk_color, name)
                continue
            trunk_train, trunk_val = _curves(run_dir, stage, stage.get("trunk_dir"))
            add(trunk_train, trunk_val, trunk_color, f"{name} trunk")
            start = branch.get("start_iter")
            train, val = _curves(run_dir, stage, stage.get("run_dir"), start if isinstance(start, int) else None)
            # Drawn from the trunk point it branches off, so that it reads as a side track.
            if train and trunk_train and trunk_train[-1][0] < train[0][0]:
                train = [trunk_train[-1], *train]
            if val and trunk_val and trunk_val[-1][0] < val[0][0]:
                val = [trunk_val[-1], *val]
            add(train, val, branch_color, f"{name} cooldown branches", marker="D")
    base = results.get("baseline")
    if base:
        add(*_curves(run_dir, base), "tab:orange", str(base.get("name") or "jump"), marker="s")
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


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Inline Markdown text: special characters escaped, line breaks folded."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", "").replace("\n", " \u23ce ")


EVAL_BATCHES_KEY = "`[eval] batches`"  # the plan key the verdicts point to, as code in either format


# The plan key and the grow options the report points to, as code in either format.
CODE_SPANS = (EVAL_BATCHES_KEY, "`--repeat`", "`--repeat-grow`", "`--compare-schedules`")


def _md_prose(text: str) -> str:
    """A sentence of the report as Markdown: escaped like _md, the plan key and options left as inline code."""
    text = _md(text)
    for span in CODE_SPANS:
        text = text.replace(_md(span), span)
    return text


def _h_prose(text: str) -> str:
    """A sentence of the report as HTML: escaped, the plan key and options as <code>."""
    text = _h(text)
    for span in CODE_SPANS:
        text = text.replace(_h(span), f"<code>{_h(span.strip('`'))}</code>")
    return text


def _md_block(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _cell_text(cell: dict) -> str:
    """A matrix cell's number: "bpb", or "loss (perplexity)"; a dash when the score is missing."""
    if cell["value"] is None:
        return "\u2013"
    if cell["metric"] == "bpb":
        return _f_bpb(cell["value"])
    return f"{_f_loss(cell['value'])} ({_f_ppl(cell['ppl'])})"


def _md_cell(cell: dict) -> str:
    text = _cell_text(cell)
    if cell["unseen"]:
        text = f"_{text}_ \u00b7unseen"
    mark = _rise_mark(cell)
    if mark:
        text += f" {mark} {_f_signed_pct(cell['rise'])}"
    return text


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cost_table(results: dict) -> list[list[str]]:
    """The cost table's rows (cells as COST_HEADER): the main chain's stages (a wsd stage as its trunk and
    its cooldown branch), the chain's total, then the baseline."""
    rows = _chain_cost_rows(results["stages"], results["parts"], "grow")
    if results.get("baseline"):
        base = results["baseline"]
        rows.append([f"{base.get('name') or 'jump'} (baseline)", *_cost_cells(base, results["parts"], "\u2013")])
    return rows


def _chain_cost_rows(stages: list[dict], parts: list[str], total_label: str) -> list[list[str]]:
    """One row per stage (a wsd stage: "NAME (wsd trunk)" and "NAME cooldown branch"), then the total with
    the branches counted in."""
    rows = []
    for k, stage in enumerate(stages):
        name = str(stage.get("name", f"stage {k + 1}"))
        branch = _branch(stage)
        rows.append([f"{name} (wsd trunk)" if branch is not None else name,
                     *_cost_cells(stage, parts, compact_parts(_new_parts(stages, k), parts))])
        if branch is not None:
            lr = f"{_f_lr(stage.get('learning_rate'))} {ARROW} {_f_lr(branch.get('min_lr'))}"
            if branch.get("cooldown_shape"):
                lr += f" ({branch['cooldown_shape']})"
            rows.append([f"{name} cooldown branch",
                         *_cost_cells({**branch, "parts": stage.get("parts", []), "learning_rate": None,
                                       "replay": stage.get("replay")}, parts, "\u2013")[:-2], lr,
                         str(stage.get("replay") or "\u2013")])
    if stages:
        tokens, seconds = _totals(stages, "tokens"), _totals(stages, "seconds")
        trunk_iters = [s.get("end_iter", 0) - s.get("start_iter", 0) for s in stages
                       if _is_number(s.get("end_iter")) and _is_number(s.get("start_iter"))]
        branch_iters = [b.get("iters") for b in map(_branch, stages) if b is not None]
        iters = f"{sum(trunk_iters)}" if len(trunk_iters) == len(stages) else "\u2013"
        if branch_iters and iters != "\u2013" and all(_is_number(i) for i in branch_iters):
            iters += f" + {sum(branch_iters)} (branches)"
        label = f"{total_label} total" + (" (branches included)" if branch_iters else "")
        trained = sorted({p for s in stages for p in _stage_parts(s)},
                         key=lambda p: parts.index(p) if p in parts else 0)
        rows.append([label, compact_parts(trained, parts), "\u2013", iters, _f_count(tokens), _f_time(seconds),
                     _f_count(tokens / seconds) if tokens is not None and seconds else "\u2013",
                     "\u2013", "\u2013", "\u2013"])
    return rows


def _cost_cells(row: dict, parts: list[str], new: str) -> list[str]:
    """Parts, new parts, iterations, tokens, time, tokens/s, MFU, LR, replay of one row."""
    return [compact_parts(_stage_parts(row), parts), new, _f_iters(row), _f_count(row.get("tokens")),
            _f_time(row.get("seconds")), _f_count(row.get("tokens_per_s")), _f_mfu(row.get("mfu")),
            _f_lr(row.get("learning_rate")), str(row.get("replay") or "\u2013")]


def _cost_note(results: dict) -> str:
    """COST_NOTE, and for wsd stages what their two rows are."""
    chains = _chains(results)
    if not any(_branch(s) is not None for stages in chains.values() for s in stages):
        return COST_NOTE
    return (COST_NOTE + " A wsd stage is a stretch of a constant-LR trunk (\u201c(wsd trunk)\u201d) and a cooldown "
            "branch off the trunk's end (its learning rate decays to min_lr); the stage's scores and samples are "
            "the branch's, and the next stage continues the trunk. Tokens and time of branches are counted "
            "separately and in the totals.")


def _variant_cost_blocks(results: dict) -> list[tuple]:
    """The cost of each variant chain (--compare-schedules), as the main chain's."""
    blocks = []
    main = _main_schedule(results)
    for schedule, stages in _chains(results).items():
        if schedule == main and results.get("stages"):
            continue
        label = _schedule_label(schedule)
        blocks.append(("p", f"The {label} chain (trained with `--compare-schedules`):"))
        blocks.append(("table", COST_HEADER, _chain_cost_rows(stages, results["parts"], label)))
    return blocks


COST_HEADER = ["Stage", "Parts", "New parts", "Iterations", "Tokens", "Train time", "Tokens/s", "MFU (training steps)",
               "LR", "Replay"]
# What the cost table's times and rates divide by (grow.run_stats computes them from metrics.jsonl).
COST_NOTE = ("Train time is the time spent in training steps; evaluations and checkpoints are not counted. "
             "Tokens/s and MFU (training steps) are the stage's tokens and training FLOPs divided by that time, "
             "the peak FLOP/s as well for MFU: the same figures the training console prints for each log "
             "interval, taken over the whole stage. A dash: no peak figure, or one a run showed to be too low.")
UNSEEN_MARK = "_Italic_ \u00b7unseen: the stage had not been trained on that part yet."
LOSS_CELLS = "Cells are val loss (perplexity) on each part's val set; \"union\" is the union of all parts' val sets."
NO_BPB = ("No bits per byte were recorded (a grow.json written before growgpt recorded them; running "
          "`growgpt grow` again on the workdir adds them): see the val loss below.")
MATRIX_HEADINGS = {"bpb": "Val bits per byte: stage \u00d7 part", "loss": "Val loss: stage \u00d7 part"}


def bpb_legend(results: dict) -> str:
    """The legend of the bits-per-byte matrix, with the union's bytes per token when known."""
    text = ("Cells are val bits per byte on each part's val set: the nats of the scored tokens \u00f7 "
            "(the UTF-8 bytes they decode to \u00d7 ln 2), which, unlike the loss per token, does not depend on "
            "the tokenizer; \"union\" is the union of all parts' val sets.")
    per_token = _bytes_per_token(results)
    if per_token:
        text += (f" The union's val text has {per_token:.2f} bytes per token: bpb \u2248 loss \u00f7 ln 2 "
                 f"\u00f7 {per_token:.2f}.")
    return f"{text} {marks_legend(results, 'bpb')}"


def loss_legend(results: dict) -> str:
    """The legend of the val-loss matrix."""
    return f"{LOSS_CELLS} {marks_legend(results, 'loss')}"


def marks_legend(results: dict, metric: str) -> str:
    """What the marks of a matrix of `metric` mean: ·unseen, ▲ and △, and the noise the intervals cover."""
    pairs = [c["pair"] for _, cells in _matrix(results, metric) for c in cells if c["pair"] is not None]
    text = UNSEEN_MARK
    if not any(p.has_interval for p in pairs):
        text += (f" {RISE} +x %: the {metric} rose since the previous stage (for a part already trained on: "
                 f"forgetting).")
        return text + (" No interval: re-run grow to rescore." if pairs else "")
    text += (f" {RISE} +x %: the {metric} rose since the previous stage beyond evaluation noise (0 lies "
             f"outside the change's {_method(pairs)}); for a part already trained on, that is forgetting. "
             f"{RISE_WITHIN_NOISE} +x %: it rose within noise (the interval includes 0): no difference detectable.")
    if not all(p.has_interval for p in pairs):
        text += (f" Where there is no interval (scores without per-batch sums, or made on different batches), "
                 f"{RISE} marks any rise.")
    return text + f" The intervals cover {stats.NOISE_COVERED}."


def _report_pairs(results: dict, metric: str) -> list[stats.PairedDifference]:
    """Every paired difference the verdicts judge: stage to stage (matrix cells) and grow − jump."""
    pairs = [c["pair"] for _, cells in _matrix(results, metric) for c in cells if c["pair"] is not None]
    if results.get("baseline") and results.get("stages"):
        pairs += [_grow_minus_jump(results, part, metric) for part in [*results["parts"], None]]
    return pairs


def interval_note(results: dict) -> str | None:
    """How the ± of the verdicts were made and what they cover; None when no difference has an interval."""
    metric = _compare_metric(results)
    pairs = _report_pairs(results, metric)
    if not any(p.has_interval for p in pairs):
        return None
    if metric == "bpb":
        per_batch, total, unit = "bits per byte", "bytes \u00d7 ln 2", "bytes"
    else:
        per_batch, total, unit = "loss", "tokens", "tokens"
    return (f"\u00b1 is the half-width of the {_method(pairs)}: both models were scored on the same val "
            f"batches, so each difference is paired batch by batch. The difference itself is that of the "
            f"figures in the matrix (total nats \u00f7 total {total} of all batches); its spread comes from "
            f"the per-batch differences in {per_batch} (the delta method for a ratio of sums, which is the "
            f"plain paired t when every batch holds as many {unit}). \"Better\", \"worse\" and "
            f"\"forgetting\" need the interval to exclude 0. It covers {stats.NOISE_COVERED}.")


def _has_bpb(results: dict) -> bool:
    return any(c["value"] is not None for _, cells in _matrix(results, "bpb") for c in cells)


GROW_VS_JUMP_HEADER = ["", "Union val bpb", "Union val loss", "Tokens", "Time"]


def _grow_vs_jump_part_header(results: dict) -> list[str]:
    noun = "bpb" if _compare_metric(results) == "bpb" else "loss"
    return ["Val set", f"Grow ({noun})", f"Jump ({noun})", f"Grow {MINUS} jump", "Verdict"]


def _grow_vs_jump_part_rows(results: dict) -> list[tuple[str, list[str]]]:
    """(label, cells) of the per-part grow-vs-jump table: each part, then the union, with grow − jump, its
    interval and the verdict words."""
    metric = _compare_metric(results)
    last, base = results["stages"][-1], results["baseline"]
    rows = []
    for part in [*results["parts"], None]:
        def value(row: dict) -> float | None:
            return _loss(_union_eval(row) if part is None else _part_eval(row, part), metric)

        grow_value, jump_value = value(last), value(base)
        label = "union" if part is None else f"part {part}"
        if grow_value is None or jump_value is None:
            rows.append((label, [_f_metric(grow_value, metric), _f_metric(jump_value, metric), "\u2013", "\u2013"]))
            continue
        pair = _grow_minus_jump(results, part, metric)
        if pair.has_interval:
            diff = _f_pm(pair)
        elif pair.status == stats.DIFFERENT_BATCHES:
            diff = "\u2013"
        else:
            digits = _diff_digits(metric, None)
            diff = f"{'+' if grow_value > jump_value else MINUS if grow_value < jump_value else ''}" \
                   f"{abs(grow_value - jump_value):.{digits}f}"
        rows.append((label, [_f_metric(grow_value, metric), _f_metric(jump_value, metric), diff,
                             _winner_words(pair)]))
    return rows


def _grow_vs_jump_rows(results: dict) -> list[tuple[str, list[str]]]:
    """(label, cells) of the grow-vs-jump table: the last stage with the stages' totals, then the baseline."""
    base, stages = results["baseline"], results["stages"]
    last = _union_eval(stages[-1])
    return [(f"grow (last stage {stages[-1].get('name', '?')})",
             [_f_bpb(_loss(last, "bpb")), _f_loss(_loss(last)), _f_count(_totals(stages, "tokens")),
              _f_time(_totals(stages, "seconds"))]),
            (f"{base.get('name') or 'jump'} {BASELINE_LABEL}",
             [_f_bpb(_loss(_union_eval(base), "bpb")), _f_loss(_loss(_union_eval(base))), _f_count(base.get("tokens")),
              _f_time(base.get("seconds"))])]


def render_markdown(results: dict, png_name: str = LOSS_PNG) -> str:
    parts = results["parts"]
    title = results.get("title") or "growgpt grow report"
    out = [f"# {_md(title)}", "", _md_prose(_summary(results)), ""]

    header = ["Stage"] + [f"part {_md(p)}" for p in parts] + ["union"]
    out += [f"## {MATRIX_HEADINGS['bpb']}", ""]
    if _has_bpb(results):
        out += [_md_table(header, [[_md(label)] + [_md_cell(c) for c in cells]
                                   for label, cells in _matrix(results, "bpb")]), ""]
        out += [bpb_legend(results), ""]
    else:
        out += [NO_BPB, ""]
    out += [f"## {MATRIX_HEADINGS['loss']}", ""]
    out += [_md_table(header, [[_md(label)] + [_md_cell(c) for c in cells] for label, cells in _matrix(results)]), ""]
    out += [loss_legend(results), ""]

    out += ["## Loss curves", "", f"![Train and val loss across stages]({png_name})", ""]

    out += ["## Stages", ""]
    rows = [[_md(v) for v in cells] for cells in _cost_table(results)]
    out += [_md_table(COST_HEADER, rows), ""]
    out += _md_blocks(_variant_cost_blocks(results))
    out += [_md(_cost_note(results)), ""]

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
        if results["stages"]:
            rows = [[_md(label)] + values for label, values in _grow_vs_jump_rows(results)]
            out += [_md_table(GROW_VS_JUMP_HEADER, rows), ""]
        out += [_md_prose(grow_vs_jump(results) or "No stage has finished yet."), ""]
        if results["stages"]:
            out += ["Part by part (the last stage against the baseline, on the same val batches):", ""]
            rows = [[_md(label)] + [_md(v) for v in values] for label, values in _grow_vs_jump_part_rows(results)]
            out += [_md_table(_grow_vs_jump_part_header(results), rows), ""]

    blocks = _schedule_blocks(results)
    if blocks:
        out += [f"## {SCHEDULES_HEADING}", "", *_md_blocks(blocks)]
    blocks = _seed_blocks(results)
    if blocks:
        out += [f"## {SEEDS_HEADING}", "", *_md_blocks(blocks)]

    out += ["## Verdict", ""]
    lines = verdicts(results)
    out += [f"- {_md_prose(v)}" for v in lines] if lines else ["No stage has finished yet."]
    note = interval_note(results)
    if note:
        out += ["", _md(note)]
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
.noise-mark { color: #999; white-space: nowrap; }
tr.baseline td { border-top: 2px solid #888; background: #fff8ec; }
.legend, .note { color: #555; font-size: .9em; }
table.samples td { text-align: left; min-width: 14em; max-width: 30em; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .88em; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_cell(cell: dict) -> str:
    mark = _rise_mark(cell)
    # A rise within noise stays quiet: a grey mark, no red cell.
    classes = [c for c, on in (("unseen", cell["unseen"]), ("rise", mark == RISE)) if on]
    body = _h(_cell_text(cell))
    if cell["unseen"]:
        body += " \u00b7unseen"
    if mark:
        span = "rise-mark" if mark == RISE else "noise-mark"
        body += f' <span class="{span}">{mark} {_h(_f_signed_pct(cell["rise"]))}</span>'
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
           f"<h1>{_h(title)}</h1>", f"<p>{_h_prose(_summary(results))}</p>"]

    n_stages = len(results["stages"])
    for metric in ("bpb", "loss"):
        out.append(f"<h2>{_h(MATRIX_HEADINGS[metric])}</h2>")
        if metric == "bpb" and not _has_bpb(results):
            out.append(f'<p class="note">{_h(NO_BPB)}</p>')
            continue
        rows = []
        for i, (label, cells) in enumerate(_matrix(results, metric)):
            tr = ' class="baseline"' if i >= n_stages else ""
            rows.append(f'<tr{tr}><td class="label">{_h(label)}</td>' + "".join(_html_cell(c) for c in cells)
                        + "</tr>")
        out.append(_html_table(["Stage"] + [f"part {p}" for p in parts] + ["union"], rows, "matrix"))
        legend = bpb_legend(results) if metric == "bpb" else loss_legend(results)
        out.append(f'<p class="legend">{_h(legend).replace("_Italic_", "<i>Italic</i>")}</p>')

    out.append("<h2>Loss curves</h2>")
    out.append(f'<img alt="Train and val loss across stages" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')

    out.append("<h2>Stages</h2>")
    rows = [f'<tr><td class="label">{_h(cells[0])}</td>' + "".join(f"<td>{_h(v)}</td>" for v in cells[1:]) + "</tr>"
            for cells in _cost_table(results)]
    out.append(_html_table(COST_HEADER, rows, "stages"))
    out += _html_blocks(_variant_cost_blocks(results), "stages")
    out.append(f'<p class="legend">{_h(_cost_note(results))}</p>')

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
        out.append("<h2>Grow vs jump</h2>")
        if results["stages"]:
            rows = [f'<tr><td class="label">{_h(label)}</td>' + "".join(f"<td>{_h(v)}</td>" for v in values) + "</tr>"
                    for label, values in _grow_vs_jump_rows(results)]
            out.append(_html_table(GROW_VS_JUMP_HEADER, rows))
        out.append(f"<p>{_h_prose(grow_vs_jump(results) or 'No stage has finished yet.')}</p>")
        if results["stages"]:
            out.append("<p>Part by part (the last stage against the baseline, on the same val batches):</p>")
            rows = [f'<tr><td class="label">{_h(label)}</td>' + "".join(f"<td>{_h(v)}</td>" for v in values) + "</tr>"
                    for label, values in _grow_vs_jump_part_rows(results)]
            out.append(_html_table(_grow_vs_jump_part_header(results), rows, "grow-vs-jump-parts"))

    blocks = _schedule_blocks(results)
    if blocks:
        out += [f"<h2>{_h(SCHEDULES_HEADING)}</h2>", *_html_blocks(blocks, "schedules")]
    blocks = _seed_blocks(results)
    if blocks:
        out += [f"<h2>{_h(SEEDS_HEADING)}</h2>", *_html_blocks(blocks, "seeds")]

    out.append("<h2>Verdict</h2>")
    lines = verdicts(results)
    out.append("<ul>" + "".join(f"<li>{_h_prose(v)}</li>" for v in lines) + "</ul>" if lines
               else '<p class="note">No stage has finished yet.</p>')
    note = interval_note(results)
    if note:
        out.append(f'<p class="note">{_h(note)}</p>')
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
