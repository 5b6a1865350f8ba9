"""The grow report's judgement of one run: the stage × part matrices, the verdicts and grow vs jump.

Every model is scored on the same val batches, so two scores pair up batch by batch (growgpt.stats).
Each difference is "new − old ± h", h the half-width of its 95 % paired t-interval over the N val
batches; the difference is exactly that of the two figures in the matrix. "better", "worse" and
"forgetting" need the interval to exclude 0 ("mild forgetting" up to a 5 % rise, "forgetting" above);
otherwise the words are "no difference detectable with N val batches — raise `[eval] batches` to
tighten it (±h now)". Two scores drawn on different batches (other [eval] settings, another union) are
"not comparable (scored on different batches)". These intervals cover evaluation-sampling noise only;
with seed repeats, grow vs jump follows the interval over seeds instead (report_compare).
A grow.json written before evaluation kept per-batch sums has no intervals: the old rule applies (a
rise of more than 1 % is forgetting) and the sentences say "(no interval: re-run grow to rescore)".
The verdicts, the summary and grow vs jump compare bits per byte when every score has them, else the
loss (a grow.json written before bpb was recorded), never a mix.
"""

from __future__ import annotations

from typing import NamedTuple

from growgpt import stats
from growgpt.report_compare import (
    EVAL_NOISE_SHORT,
    seed_interval_text,
    seed_spread,
    seed_threshold,
    seed_words,
    versus_pairs,
)
from growgpt.report_data import (
    baseline_name,
    compare_metric,
    extended_metric,
    loss_of,
    new_parts_of,
    pair,
    part_eval,
    percent_change,
    score_of,
    seen_before,
    stage_name,
    stage_parts,
    totals,
    union_eval,
    untrained_parts,
)
from growgpt.report_format import (
    ARROW,
    METRIC_NAMES,
    MINUS,
    NO_INTERVAL_NOTE,
    NOT_COMPARABLE,
    RISE,
    RISE_WITHIN_NOISE,
    diff_digits,
    f_bpb,
    f_count,
    f_diff,
    f_loss,
    f_metric,
    f_pm,
    f_pm_values,
    f_ppl,
    f_signed,
    f_signed_pct,
    f_time,
    interval_notes,
    method_text,
    no_difference,
    parts_phrase,
    versus_words,
)

FORGETTING_PCT = 1.0         # without an interval (old grow.json): a rise above this (in %) is forgetting
STRONG_FORGETTING_PCT = 5.0  # above this it is plain "forgetting", up to it "mild forgetting"
BASELINE_LABEL = "(from scratch on the union)"


def _cell(row: dict, prev: dict | None, part: str | None, trained: set[str] | None, metric: str = "loss") -> dict:
    """One matrix cell: the metric's value ("loss" or "bpb"), ppl, unseen?, the % change since the
    previous stage when it rose, and the paired difference from the previous stage (None for the first)."""
    ev = score_of(row, part)
    value = loss_of(ev, metric)
    rise = since = None
    if prev is not None and value is not None:
        old = loss_of(score_of(prev, part), metric)
        if old is not None:
            since = pair(prev, row, part, metric)
            if value > old:
                rise = percent_change(old, value)
    return {"metric": metric, "value": value, "ppl": (ev or {}).get("ppl"), "rise": rise, "pair": since,
            "unseen": part is not None and trained is not None and part not in trained}


def rise_mark(cell: dict) -> str | None:
    """▲ for a rise beyond evaluation noise, or any rise that has no interval; △ for a rise within noise."""
    if cell["rise"] is None:
        return None
    pair = cell["pair"]
    return RISE_WITHIN_NOISE if pair is not None and pair.has_interval and not pair.rose else RISE


def score_matrix(results: dict, metric: str = "loss") -> list[tuple[str, list[dict]]]:
    """Rows of (label, cells) of one metric ("loss" or "bpb"); cells follow results["parts"] then the union."""
    parts = results["parts"]
    stages = results["stages"]
    rows = []
    for k, stage in enumerate(stages):
        trained = seen_before(stages, k) | set(stage_parts(stage))
        prev = stages[k - 1] if k else None
        rows.append((stage_name(stage, k),
                     [_cell(stage, prev, p, trained, metric) for p in parts]
                     + [_cell(stage, prev, None, None, metric)]))
    base = results.get("baseline")
    if base:
        trained = set(stage_parts(base)) if base.get("parts") else set(parts)
        rows.append((f"{baseline_name(base)} {BASELINE_LABEL}",
                     [_cell(base, None, p, trained, metric) for p in parts]
                     + [_cell(base, None, None, None, metric)]))
    return rows


def matrix_pairs(results: dict, metric: str) -> list[stats.PairedDifference]:
    """The paired differences of every matrix cell from the previous stage's."""
    return [c["pair"] for _, cells in score_matrix(results, metric) for c in cells if c["pair"] is not None]


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
    seen = seen_before(stages, k)
    changes = []
    for part in [p for p in order if p in seen] + sorted(seen - set(order)):
        old, new = loss_of(part_eval(stages[k - 1], part), metric), loss_of(part_eval(stages[k], part), metric)
        if old is not None and new is not None:
            changes.append(Change(part, old, new, percent_change(old, new),
                                  pair(stages[k - 1], stages[k], part, metric)))
    return changes


def _all_changes(results: dict, metric: str) -> list[tuple[str, Change]]:
    """(stage name, change) of every part trained before each stage after the first, over all stages."""
    stages = results["stages"]
    return [(stage_name(stages[k], k), c) for k in range(1, len(stages))
            for c in _old_part_changes(stages, k, results["parts"], metric)]


def _rise_text(change: Change, metric: str) -> str:
    """"part 1 rose by 2.3 % (0.955 → 0.977; +0.022 ± 0.008)"; without an interval "(0.955 → 0.977)"."""
    interval = f"; {f_pm(change.pair)}" if change.pair.has_interval else ""
    return (f"part {change.part} rose by {f_signed_pct(change.pct).lstrip('+')} "
            f"({f_metric(change.old, metric)} {ARROW} {f_metric(change.new, metric)}{interval})")


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
        clauses.append(f"{'; '.join(_rise_text(c, metric) for c in noisy)}, within noise: {no_difference(widest)}")
    if judged and not forgot and not noisy:
        # No rise, or (without intervals) none above FORGETTING_PCT.
        earlier = parts_phrase([c.part for c in judged], order)
        worst = max(c.pct for c in judged)
        if all(c.new == c.old for c in judged):
            moved = "did not change"
        elif worst <= 0:
            moved = "all fell" if len(judged) > 1 else "fell"
        else:
            moved = f"rose by at most {f_signed_pct(worst).lstrip('+')}"
        clauses.append(f"earlier {earlier} {moved}: {_forgetting_label(worst)}")
    if apart:
        clauses.append(f"{parts_phrase([c.part for c in apart], order)}: {NOT_COMPARABLE}")
    return "; ".join(clauses)


def _union_move(old_row: dict, new_row: dict, metric: str) -> tuple[str, stats.PairedDifference | None]:
    """"union val bpb 1.187 → 1.064 (−10.4 %; −0.123 ± 0.004): better", and the pair behind it."""
    what = f"union {METRIC_NAMES[metric]}"
    old, new = loss_of(union_eval(old_row), metric), loss_of(union_eval(new_row), metric)
    if old is None or new is None:
        return f"{what} {f_metric(new, metric)}", None
    move = pair(old_row, new_row, None, metric)
    text = f"{what} {f_metric(old, metric)} {ARROW} {f_metric(new, metric)} ({f_signed_pct(percent_change(old, new))}"
    if move.has_interval:
        words = "better" if move.fell else "worse" if move.rose else no_difference(move)
        return f"{text}; {f_pm(move)}): {words}", move
    if move.status == stats.DIFFERENT_BATCHES:
        return f"{text}): {NOT_COMPARABLE}", move
    return f"{text})", move


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
    rescore)". Without bits per byte in every score (see compare_metric) the same sentences use the
    val loss: "union val loss 5.10 (ppl 164.0)", "part 1 rose by 2.3 % (3.95 → 4.04)".
    """
    stages = results.get("stages") or []
    order = [str(p) for p in results.get("parts") or []]
    metric = compare_metric(results)
    what = f"union {METRIC_NAMES[metric]}"
    out = []
    for k, stage in enumerate(stages):
        name = stage_name(stage, k)
        if k == 0:
            ev = union_eval(stage) or {}
            details = [f"loss {f_loss(loss_of(ev))}"] if metric == "bpb" else []
            if isinstance(ev.get("ppl"), (int, float)):
                details.append(f"ppl {f_ppl(ev['ppl'])}")
            details_text = f" ({', '.join(details)})" if details else ""
            out.append(f"Stage {name} trained {parts_phrase(stage_parts(stage), order)} from scratch: "
                       f"{what} {f_metric(loss_of(ev, metric), metric)}{details_text}.")
            continue
        new = new_parts_of(stages, k)
        added = f"added {parts_phrase(new, order)}" if new else "no new parts"
        union_text, union_pair = _union_move(stages[k - 1], stage, metric)
        changes = _old_part_changes(stages, k, order, metric)
        notes = interval_notes([union_pair] + [c.pair for c in changes])
        out.append(f"Stage {name} ({added}): {union_text}; {_forgetting_tail(changes, order, metric)}{notes}.")
    return out




def grow_minus_jump(results: dict, part: str | None, metric: str) -> stats.PairedDifference:
    """grow − jump (the last stage minus the baseline) on one part, or the union for part None."""
    return pair(results["baseline"], results["stages"][-1], part, metric)



def grow_vs_jump(results: dict) -> str | None:
    """The plain sentence comparing the last stage with the jump baseline; None without a baseline.

    "Growing ended at a union val bpb of 1.064, jumping at 1.080: growing is better by 0.016 ± 0.004
    (1.5 % lower bpb), with growing using …" — "better" only when the paired interval of grow − jump
    excludes 0, else "no difference detectable with N val batches — raise …"."""
    base, stages = results.get("baseline"), results.get("stages") or []
    if not base or not stages:
        return None
    metric = compare_metric(results)
    digits = diff_digits(metric, None)  # as the report prints them
    grow_loss, jump_loss = loss_of(union_eval(stages[-1]), metric), loss_of(union_eval(base), metric)
    if grow_loss is None or jump_loss is None:
        return f"Grow vs jump: no union {METRIC_NAMES[metric]} to compare."
    g_tok, j_tok = totals(stages, "tokens"), base.get("tokens")
    g_sec, j_sec = totals(stages, "seconds"), base.get("seconds")
    pair = grow_minus_jump(results, None, metric)
    lower = f"{abs(percent_change(max(grow_loss, jump_loss), min(grow_loss, jump_loss))):.1f} % lower {metric}"
    if pair.has_interval:
        winner = "growing" if pair.fell else "jumping" if pair.rose else None
        verdict = f"{winner} is better by {f_pm(pair, signed=False)} ({lower})" if winner else no_difference(pair)
    elif pair.status == stats.DIFFERENT_BATCHES:
        verdict = NOT_COMPARABLE
    else:  # no interval: the difference as it stands, flagged
        diff = jump_loss - grow_loss
        if round(grow_loss, digits) == round(jump_loss, digits):
            verdict = "growing and jumping end up level"
        else:
            verdict = f"{'growing' if diff > 0 else 'jumping'} is better by {abs(diff):.{digits}f} ({lower})"
        verdict += interval_notes([pair])
    cost = []
    if isinstance(g_tok, (int, float)) and isinstance(j_tok, (int, float)) and j_tok:
        cost.append(f"{g_tok / j_tok:.2f}\u00d7 the tokens ({f_count(g_tok)} vs {f_count(j_tok)})")
    if isinstance(g_sec, (int, float)) and isinstance(j_sec, (int, float)) and j_sec:
        cost.append(f"{g_sec / j_sec:.2f}\u00d7 the time ({f_time(g_sec)} vs {f_time(j_sec)})")
    cost_text = f", with growing using {' and '.join(cost)}" if cost else ""
    spread = seed_spread(results)
    if spread is not None and spread.metric != metric:
        spread = None  # never mix the metrics of two intervals in one sentence
    if spread is not None and spread.has_interval:
        # Repeated seeds: the verdict follows the interval over seeds; this seed's paired one stays as a detail.
        this_seed = f"{f_pm(pair)} ({EVAL_NOISE_SHORT})" if pair.has_interval else verdict
        verdict = (f"{seed_interval_text(spread)}: {seed_words(spread)}; this seed alone: grow {MINUS} jump "
                   f"{this_seed}")
    text = (f"Growing ended at a union {METRIC_NAMES[metric]} of {f_metric(grow_loss, metric)}, jumping at "
            f"{f_metric(jump_loss, metric)}: {verdict}{cost_text}.")
    if spread is not None and not spread.has_interval and seed_threshold(spread) is not None:
        threshold = seed_threshold(spread)
        digits = diff_digits(metric, threshold or None)
        text += (f" Jump's union {METRIC_NAMES[metric]} has a sample SD of {spread.jump.sd:.{digits}f} over "
                 f"{spread.jump.k} seeds: a grow {MINUS} jump difference smaller than about 2\u00b7\u221a2\u00b7SD = "
                 f"{threshold:.{digits}f} is within seed-to-seed noise (training noise: init and batch order), "
                 f"which the \u00b1 above does not cover; this one ({abs(grow_loss - jump_loss):.{digits}f}) is "
                 f"{'within' if abs(grow_loss - jump_loss) < threshold else 'beyond'} it.")
    missing = untrained_parts(results)
    if missing:
        text += f" The grow run has not trained on {parts_phrase(missing, results['parts'])} yet."
    return text



def stage_summary(results: dict) -> str:
    stages, parts = results["stages"], results["parts"]
    if not stages:
        return (f"No stage has finished yet, so there is nothing to report beyond the plan's "
                f"{len(parts)} part(s).")
    last = stages[-1]
    union = union_eval(last) or {}
    metric = compare_metric(results)
    reached = f"a union val loss of {f_loss(loss_of(union))} (ppl {f_ppl(union.get('ppl'))})"
    if metric == "bpb":
        reached = (f"a union val bpb of {f_bpb(loss_of(union, 'bpb'))} (loss {f_loss(loss_of(union))}, "
                   f"ppl {f_ppl(union.get('ppl'))})")
    text = (f"{len(stages)} stage{'s' if len(stages) != 1 else ''} grew the model over "
            f"{parts_phrase(parts, parts)}. The last stage, {last.get('name', '?')}, trained on "
            f"{parts_phrase(stage_parts(last), parts)} and reached {reached} over the val sets of all parts.")
    missing = untrained_parts(results)
    if missing:
        text += (f" {parts_phrase(missing, parts).capitalize()} {'has' if len(missing) == 1 else 'have'} not been "
                 f"trained on yet.")
    text += _forgetting_summary(results, metric)
    comparison = grow_vs_jump(results)
    text += f" {comparison}" if comparison else " No jump baseline (training from scratch on the union) was run."
    return text


def _forgetting_summary(results: dict, metric: str) -> str:
    """" The largest rise … : mild forgetting." over all stages: the largest rise that is forgetting
    (beyond noise, or above FORGETTING_PCT without an interval); "" when no part was scored twice."""
    judged = [(name, c) for name, c in _all_changes(results, metric) if c.pair.status != stats.DIFFERENT_BATCHES]
    if not judged:
        return ""
    notes = interval_notes([c.pair for _, c in judged])
    forgot = [(name, c) for name, c in judged if c.is_forgetting]
    if forgot:
        name, worst = max(forgot, key=lambda nc: nc[1].pct)
        beyond = " beyond evaluation noise" if worst.pair.has_interval else ""
        interval = f"; {f_pm(worst.pair)}" if worst.pair.has_interval else ""
        return (f" The largest rise{beyond} of a part already trained on was {f_signed_pct(worst.pct)} "
                f"(part {worst.part} in stage {name}, {f_metric(worst.old, metric)} {ARROW} "
                f"{f_metric(worst.new, metric)}{interval}): {_forgetting_strength(worst.pct)}{notes}.")
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
    metric = compare_metric(results)
    union = union_eval(stages[-1]) or {}
    def four(x: float | None) -> str:  # the console's 4 decimals, a dash for a missing score
        return "\u2013" if x is None else f"{x:.4f}"

    if metric == "bpb":
        reached = f"union val bpb {four(loss_of(union, 'bpb'))} (loss {four(loss_of(union))})"
    else:
        reached = f"union val loss {four(loss_of(union))}"
    pieces = [f"after '{stages[-1].get('name', '?')}' {reached}"]
    spread = seed_spread(results) if results.get("baseline") else None
    if spread is not None and spread.has_interval and spread.metric == metric:
        pieces.append(f"grow {MINUS} jump {f_pm_values(metric, spread.mean_diff, spread.half_width)} {metric} over "
                      f"{len(spread.diffs)} seeds (training and evaluation noise): {seed_words(spread)}")
    elif results.get("baseline") and loss_of(union_eval(results["baseline"]), metric) is not None:
        pair = grow_minus_jump(results, None, metric)
        if pair.has_interval:
            words = ("growing is better" if pair.fell else "jumping is better" if pair.rose
                     else f"no difference detectable with {pair.batches} val batches")
            pieces.append(f"grow {MINUS} jump {f_pm(pair)} {metric}: {words}")
        elif pair.status == stats.DIFFERENT_BATCHES:
            pieces.append(f"grow vs jump: {NOT_COMPARABLE}")
        else:  # the difference as it stands, flagged
            diff = loss_of(union, metric) - loss_of(union_eval(results["baseline"]), metric)
            pieces.append(f"grow {MINUS} jump {f_signed(diff, diff_digits(metric, None))} {metric} "
                          f"{interval_notes([pair]).strip()}")
    wsd_vs_cosine = next((v for v in versus_pairs(results, extended_metric(results))
                          if (v.a.key, v.b.key) == ("wsd", "cosine")), None)
    if wsd_vs_cosine is not None:
        words = versus_words(wsd_vs_cosine.pair, "grow-WSD").split(" \u2014 ")[0]  # without the advice
        pieces.append(f"grow-WSD {MINUS} grow-cosine {f_diff(wsd_vs_cosine.pair)} {wsd_vs_cosine.pair.metric}: "
                      f"{words}")
    changes = _all_changes(results, metric)
    forgot = [f"part {c.part} in '{name}' " + (f_pm(c.pair) if c.pair.has_interval else f_signed_pct(c.pct))
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
    metric = compare_metric(results)
    rows = [(label.removesuffix(f" {BASELINE_LABEL}"), cells) for label, cells in score_matrix(results, metric)]
    label_width = max([14] + [len(label) + 2 for label, _ in rows])
    lines = [f"{METRIC_NAMES[metric]:<{label_width}s}"
             + "".join(f"{'part ' + p:>12s}" for p in results["parts"]) + f"{'union':>12s}"]
    for label, cells in rows:
        text = "".join(f"{f_metric(c['value'], metric) + ' ' + (rise_mark(c) or ' '):>12s}" for c in cells)
        lines.append(f"{label:<{label_width}s}{text}")
    pairs = [c["pair"] for _, cells in rows for c in cells]
    if any(p is not None and p.has_interval for p in pairs):
        lines.append(f"{RISE} rose beyond evaluation noise, {RISE_WITHIN_NOISE} rose within noise "
                     f"({method_text(pairs)}; evaluation-sampling noise only, not seed-to-seed noise)")
    elif any(c["rise"] is not None for _, cells in rows for c in cells):
        lines.append(f"{RISE} rose since the previous stage {NO_INTERVAL_NOTE}")
    return lines


def _report_pairs(results: dict, metric: str) -> list[stats.PairedDifference]:
    """Every paired difference the verdicts judge: stage to stage (matrix cells) and grow − jump."""
    pairs = matrix_pairs(results, metric)
    if results.get("baseline") and results.get("stages"):
        pairs += [grow_minus_jump(results, part, metric) for part in [*results["parts"], None]]
    return pairs


def interval_note(results: dict) -> str | None:
    """How the ± of the verdicts were made and what they cover; None when no difference has an interval."""
    metric = compare_metric(results)
    pairs = _report_pairs(results, metric)
    if not any(p.has_interval for p in pairs):
        return None
    if metric == "bpb":
        per_batch, total, unit = "bits per byte", "bytes \u00d7 ln 2", "bytes"
    else:
        per_batch, total, unit = "loss", "tokens", "tokens"
    return (f"\u00b1 is the half-width of the {method_text(pairs)}: both models were scored on the same val "
            f"batches, so each difference is paired batch by batch. The difference itself is that of the "
            f"figures in the matrix (total nats \u00f7 total {total} of all batches); its spread comes from "
            f"the per-batch differences in {per_batch} (the delta method for a ratio of sums, which is the "
            f"plain paired t when every batch holds as many {unit}). \"Better\", \"worse\" and "
            f"\"forgetting\" need the interval to exclude 0. It covers {stats.NOISE_COVERED}.")
