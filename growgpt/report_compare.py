"""The grow report's comparisons across runs: schedules (grow-cosine vs grow-WSD vs jump) and seeds.

Schedules (only when grow.json has "variants", `grow --compare-schedules`): each chain's last stage and
the jump baseline are "contestants"; every pairwise difference is paired over the val batches, so its ±
covers evaluation-sampling noise only. Seeds (`--repeat K`, `--repeat-grow`): the spread of the final
union score over K seeds, and with repeated chains grow − jump seed by seed with a t-interval over those
K differences (df K − 1), which covers training noise (init, batch order) as well; it then decides the
grow-vs-jump verdict everywhere. Without repeated chains, a grow − jump difference below about
2·√2·SD of jump's seeds is said to be within seed-to-seed noise. Every sentence names the noise its
interval covers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from growgpt import stats
from growgpt.report_data import (
    SCHEDULE_LABELS,
    cooldown_branch_of,
    extended_metric,
    is_number,
    lineage_tokens,
    loss_of,
    main_schedule,
    pair,
    schedule_chains,
    schedule_label,
    totals,
    union_eval,
)
from growgpt.report_format import (
    EN_DASH,
    METRIC_NAMES,
    MINUS,
    diff_digits,
    f_count,
    f_diff,
    f_metric,
    f_pm_values,
    f_signed,
    f_time,
    method_text,
    versus_words,
)

SCHEDULES_HEADING = "Schedules: grow-cosine vs grow-WSD vs jump"
SEEDS_HEADING = "Seed spread"
# What an interval over seeds covers (each seed trains its own model), as the report words it.
SEED_NOISE = ("95 % t over seeds: covers training noise: init and batch order, as well as evaluation "
              "sampling")
SEED_NOISE_PLAIN = "training noise (init and batch order) as well as evaluation sampling"
EVAL_NOISE_SHORT = "evaluation-sampling noise only"


class Contestant(NamedTuple):
    """One model of the schedule comparison: a chain's last stage, or the jump baseline."""

    key: str                     # the schedule ("cosine", "wsd"), or "jump"
    label: str                   # "grow-cosine", "grow-WSD", "jump"
    row: dict                    # the scored entry
    main: bool                   # the main chain (results["stages"]) or the baseline
    lineage_tokens: float | None  # tokens in the final model's lineage
    tokens: float | None         # tokens trained in all, branches included
    seconds: float | None        # training-step time in all, branches included


def contestants_of(results: dict) -> list[Contestant]:
    """grow-cosine, grow-WSD (whichever is main or variant) and jump, those that exist; [] without variants."""
    if not results.get("variants"):
        return []
    chains, main = schedule_chains(results), main_schedule(results)
    order = sorted(chains, key=lambda s: (s not in SCHEDULE_LABELS, list(SCHEDULE_LABELS).index(s)
                                          if s in SCHEDULE_LABELS else 0, s))
    out = [Contestant(s, schedule_label(s), chains[s][-1], s == main and bool(results.get("stages")),
                      lineage_tokens(chains[s]), totals(chains[s], "tokens"), totals(chains[s], "seconds"))
           for s in order]
    base = results.get("baseline")
    if base:
        out.append(Contestant("jump", "jump", base, True, base.get("tokens"), base.get("tokens"),
                              base.get("seconds")))
    return out


class Versus(NamedTuple):
    """a − b between two contestants on the union, paired over the val batches."""

    a: Contestant
    b: Contestant
    pair: stats.PairedDifference

    @property
    def label(self) -> str:
        return f"{self.a.label} {MINUS} {self.b.label}"


def versus_pairs(results: dict, metric: str) -> list[Versus]:
    """WSD − cosine, WSD − jump, cosine − jump (those whose both sides exist, both scored)."""
    contestants = contestants_of(results)
    grows = [c for c in contestants if c.key != "jump"]
    order = [c for c in grows if c.key == "wsd"] + [c for c in grows if c.key != "wsd"] + \
            [c for c in contestants if c.key == "jump"]
    out = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if loss_of(union_eval(a.row), metric) is not None and loss_of(union_eval(b.row), metric) is not None:
                out.append(Versus(a, b, pair(b.row, a.row, None, metric)))
    return out


StageVersus = tuple[str, "float | None", "float | None", "stats.PairedDifference | None"]


def per_stage_versus(results: dict, metric: str) -> list[StageVersus]:
    """(stage, cosine value, wsd value, wsd − cosine) for each stage both chains have, in the plan's order."""
    chains = schedule_chains(results)
    if not results.get("variants") or "cosine" not in chains or "wsd" not in chains:
        return []
    wsd = {str(s.get("name")): s for s in chains["wsd"]}
    out = []
    for stage in chains["cosine"]:
        other = wsd.get(str(stage.get("name")))
        if other is None:
            continue
        c, w = loss_of(union_eval(stage), metric), loss_of(union_eval(other), metric)
        out.append((str(stage.get("name")), c, w, pair(stage, other, None, metric) if None not in (c, w) else None))
    return out


def _pct_more(extra: float, base: float) -> str:
    return f"+{extra / base * 100:.1f} %" if base else "\u2013"


def schedule_notes(results: dict, metric: str) -> list[str]:
    """What the schedule comparison's rows hold: equal tokens for jump and grow-cosine, the branch grow-WSD's
    final model saw on top, and the noise the ± cover."""
    by_key = {c.key: c for c in contestants_of(results)}
    notes = []
    cos, wsd, jump = by_key.get("cosine"), by_key.get("wsd"), by_key.get("jump")
    if cos and jump and is_number(cos.tokens) and is_number(jump.tokens):
        if cos.tokens == jump.tokens:
            notes.append(f"Jump and grow-cosine trained on equal tokens ({f_count(jump.tokens)} each): their "
                         f"difference is at equal training tokens.")
        else:
            notes.append(f"Jump trained on {f_count(jump.tokens)} tokens, grow-cosine on {f_count(cos.tokens)}: "
                         f"not equal training tokens.")
    if wsd:
        stages = schedule_chains(results)["wsd"]
        trunk = [s.get("tokens") for s in stages]
        last = cooldown_branch_of(stages[-1])
        if all(is_number(v) for v in trunk) and last is not None and is_number(last.get("tokens")):
            trunk_sum = sum(trunk)
            equal = ", as many as grow-cosine's stages" if cos and cos.tokens == trunk_sum else ""
            text = (f"grow-WSD's final model saw its constant-LR trunk ({f_count(trunk_sum)} tokens{equal}) plus "
                    f"its last cooldown branch on top ({f_count(last['tokens'])} tokens, "
                    f"{_pct_more(last['tokens'], trunk_sum)} of the trunk)")
            if is_number(wsd.tokens) and len(stages) > 1:
                text += (f"; counting every stage's branch, grow-WSD trained on {f_count(wsd.tokens)} tokens "
                         f"({_pct_more(wsd.tokens - trunk_sum, trunk_sum)} of the trunk)")
            notes.append(text + ". The next stage of a wsd chain continues the trunk, never a branch.")
    pairs = [v.pair for v in versus_pairs(results, metric)]
    if any(p.has_interval for p in pairs):
        notes.append(f"Each \u00b1 is the half-width of the {method_text(pairs)} (every model was scored on the same "
                     f"val batches): every interval here covers {stats.NOISE_COVERED}.")
    return notes


# Seeds -------------------------------------------------------------------------------------------

def _sample_sd(values: list[float]) -> float | None:
    """The sample standard deviation (n − 1) of values; None for fewer than 2."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


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
        return _sample_sd([v for _, v in self.values])

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
    metric = extended_metric(results)
    jump = grow = None
    if base:
        values = {}
        for row in [base, *(r for r in jump_repeats if _same_plan(r, base))]:
            value = loss_of(union_eval(row), metric)
            if value is not None:
                values.setdefault(_offset(row), value)
        jump = Spread("jump", sorted(values.items())) if values else None
    if stages:
        values = {}
        last_name = stages[-1].get("name")
        main = loss_of(union_eval(stages[-1]), metric)
        if main is not None:
            values[0] = main
        for run in grow_repeats:
            chain = run.get("stages") or []
            if (len(chain) != len(stages) or chain[-1].get("name") != last_name
                    or not _same_plan(chain[-1], stages[-1])):
                continue  # under way (its last stage is not the chain's final model), or another plan's
            value = loss_of(union_eval(chain[-1]), metric)
            if value is not None:
                values.setdefault(_offset(run, _offset(chain[-1])), value)
        grow = Spread(schedule_label(main_schedule(results)), sorted(values.items())) if values else None
    diffs: list[tuple[int, float]] = []
    if jump and grow and grow_repeats:
        jump_by = dict(jump.values)
        diffs = [(n, g - jump_by[n]) for n, g in grow.values if n in jump_by]
    mean_diff = half_width = None
    if diffs:
        k = len(diffs)
        mean_diff = sum(d for _, d in diffs) / k
        if k >= 2:
            sd = _sample_sd([d for _, d in diffs])
            half_width = stats.t_quantile(0.5 + stats.CONFIDENCE / 2, k - 1) * sd / math.sqrt(k)
    return SeedSpread(metric, jump, grow, diffs, mean_diff, half_width)


def seed_words(spread: SeedSpread) -> str:
    """The verdict of grow − jump over seeds."""
    k = len(spread.diffs)
    if spread.grow_better:
        return f"growing is better by {f_pm_values(spread.metric, spread.mean_diff, spread.half_width, False)}"
    if spread.jump_better:
        return f"jumping is better by {f_pm_values(spread.metric, spread.mean_diff, spread.half_width, False)}"
    if spread.half_width == 0:
        return f"no difference detectable over {k} seeds (the same on every seed)"
    digits = diff_digits(spread.metric, spread.half_width)
    return (f"no difference detectable over {k} seeds \u2014 raise `--repeat` to tighten it "
            f"(\u00b1{spread.half_width:.{digits}f} now)")


def seed_interval_text(spread: SeedSpread) -> str:
    """"over K seeds: grow − jump = d ± h (95 % t over seeds: covers …)"."""
    return (f"over {len(spread.diffs)} seeds: grow {MINUS} jump = "
            f"{f_pm_values(spread.metric, spread.mean_diff, spread.half_width)} ({SEED_NOISE})")


def seed_threshold(spread: SeedSpread) -> float | None:
    """2·√2·SD of jump over seeds: the size a grow − jump difference of single runs must exceed to stand out
    of seed-to-seed noise (the SD of a difference of two runs is √2·SD; ±2 of those)."""
    return 2 * math.sqrt(2) * spread.jump.sd if spread.jump and spread.jump.sd is not None else None


def seed_sentences(results: dict, spread: SeedSpread) -> list[str]:
    """The seed spread in words, each saying which noise it covers."""
    metric, out = spread.metric, []
    name = METRIC_NAMES[metric]
    for s in (spread.jump, spread.grow):
        if s is None or s.k < 2:
            continue
        out.append(f"{s.label} over {s.k} seeds: final union {name} mean {f_metric(s.mean, metric)}, "
                   f"sample SD {s.sd:.{diff_digits(metric, s.sd or None)}f}, range {f_metric(s.low, metric)}"
                   f"{EN_DASH}{f_metric(s.high, metric)}: training noise (init and batch order) on one set of "
                   f"val batches.")
    if spread.has_interval:
        out.append(f"Seed by seed (seed offset n of the chain against seed offset n of the jump), "
                   f"{seed_interval_text(spread)}: {seed_words(spread)}.")
    elif spread.jump and spread.jump.sd is not None:
        threshold = seed_threshold(spread)
        digits = diff_digits(metric, threshold or None)
        text = (f"The grow chain was not repeated with other seeds (`--repeat-grow`): a grow {MINUS} jump "
                f"difference smaller than about 2\u00b7\u221a2\u00b7SD = {threshold:.{digits}f} is within "
                f"seed-to-seed noise")
        grow_value = loss_of(union_eval((results.get("stages") or [{}])[-1]), metric) if results.get("stages") else None
        jump_value = dict(spread.jump.values).get(0)
        if grow_value is not None and jump_value is not None:
            d = grow_value - jump_value
            inside = abs(d) < threshold
            text += f"; this run's is {f_signed(d, digits)}: {'within' if inside else 'beyond'} seed-to-seed noise"
        out.append(text + ".")
    return out


def schedule_comparison_lines(results: dict) -> list[str]:
    """Console lines for the schedule comparison and the seed spread (`growgpt demo` prints them); [] when
    the run has no variants and no repeats. Each ± says which noise it covers."""
    metric = extended_metric(results)
    lines = []
    contestants = [c for c in contestants_of(results) if loss_of(union_eval(c.row), metric) is not None]
    if contestants:
        versus = versus_pairs(results, metric)
        pairs = [v.pair for v in versus]
        how = (f"{method_text(pairs)}: {stats.NOISE_COVERED}" if any(p.has_interval for p in pairs)
               else "no intervals")
        lines.append(f"schedules, union {METRIC_NAMES[metric]} (\u00b1 {how}):")
        width = max(len(c.label) for c in contestants) + 2
        for c in contestants:
            lines.append(f"  {c.label:<{width}s}{loss_of(union_eval(c.row), metric):.4f}  "
                         f"(tokens in its lineage {f_count(c.lineage_tokens)}, trained in all {f_count(c.tokens)}, "
                         f"{f_time(c.seconds)})")
        width = max([len(v.label) for v in versus] + [0]) + 2
        for v in versus:
            lines.append(f"  {v.label:<{width}s}{f_diff(v.pair)}: {versus_words(v.pair, v.a.label)}")
    spread = seed_spread(results)
    if spread:
        pieces = []
        for s in (spread.jump, spread.grow):
            if s is not None and s.k >= 2:
                pieces.append(f"{s.label} {s.mean:.4f} mean, SD {s.sd:.4f} over {s.k} seeds "
                              f"(range {s.low:.4f}{EN_DASH}{s.high:.4f})")
        if spread.has_interval:
            pieces.append(f"{seed_interval_text(spread)}: {seed_words(spread)}")
        elif spread.jump and spread.jump.sd is not None:
            pieces.append(f"grow {MINUS} jump within about \u00b1{seed_threshold(spread):.4f} "
                          f"(2\u00b7\u221a2\u00b7SD) is seed-to-seed noise")
        if pieces:
            lines.append(f"seeds, union {METRIC_NAMES[metric]}: " + "; ".join(pieces))
    return lines
