"""The grow report as plain data: `sections(results)` returns its sections, which report_render writes
as Markdown and as HTML. One model for both, so that the two files cannot drift apart; the price is
that a block says how its text is to be escaped (`Paragraph.style`, `Table.prose`), since a few texts
are already Markdown.

What a reader finds, top to bottom:

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
3. The loss curves (report_plot).
4. The cost of each stage: parts, new parts, iterations, tokens, training-step time (evaluations
   and checkpoints excluded), tokens/s and MFU over that time, as the training console prints them;
   a wsd stage as two rows (its trunk, its cooldown branch), then the chain's total (branches
   counted in), the baseline, and the same table for the other schedule's chain if compared.
5. Samples: for each prompt, what every stage's model wrote (truncated to 400 characters).
6. Grow vs jump: final union bpb and loss, tokens and time of each, which one is better by how much
   (± the 95 % interval), and the same part by part.
7. Schedules: grow-cosine vs grow-WSD vs jump (only with `grow --compare-schedules`). One row per
   model – each chain's last stage and the baseline – with its final union bpb and loss, the tokens in
   the final model's lineage, the tokens trained in all and the training-step time (cooldown branches
   included), then each pairwise difference (grow-WSD − grow-cosine, grow-WSD − jump, grow-cosine −
   jump) with its ± and verdict, and the same stage by stage for the two chains. It says that jump and
   grow-cosine trained on equal tokens, and how much grow-WSD's final model saw on top (its last
   branch, as a % of the trunk).
8. Seed spread (only with `--repeat K` and/or `--repeat-grow`): mean, sample SD and range of the final
   union bpb over the K seeds of each; with repeated chains, grow − jump seed by seed and a 95 %
   t-interval over those K differences (report_compare).
9. A plain verdict per stage (report_verdicts): how the union val bpb moved and whether parts trained
   on in earlier stages got worse, then a note on what the ± mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growgpt import stats
from growgpt.report_compare import (
    SCHEDULES_HEADING,
    SEED_NOISE_PLAIN,
    SEEDS_HEADING,
    contestants_of,
    per_stage_versus,
    schedule_notes,
    seed_sentences,
    seed_spread,
    seed_words,
    versus_pairs,
)
from growgpt.report_data import (
    baseline_name,
    compare_metric,
    cooldown_branch_of,
    extended_metric,
    is_number,
    loss_of,
    main_schedule,
    new_parts_of,
    schedule_chains,
    schedule_label,
    score_of,
    stage_bytes_per_token,
    stage_name,
    stage_parts,
    totals,
    union_eval,
)
from growgpt.report_format import (
    ARROW,
    EN_DASH,
    METRIC_NAMES,
    MINUS,
    RISE,
    RISE_WITHIN_NOISE,
    compact_parts,
    diff_digits,
    f_bpb,
    f_count,
    f_diff,
    f_iters,
    f_loss,
    f_lr,
    f_metric,
    f_mfu,
    f_pm,
    f_pm_values,
    f_signed,
    f_time,
    method_text,
    versus_words,
    winner_words,
)
from growgpt.report_verdicts import (
    BASELINE_LABEL,
    grow_minus_jump,
    grow_vs_jump,
    interval_note,
    score_matrix,
    stage_summary,
    verdicts,
)

# How a text is written out (Paragraph.style): a sentence of the report (its plan keys and options become
# inline code), plain text (escaped), or a fragment that is already Markdown (shown escaped in HTML, its
# "_Italic_" in italics).
PROSE, PLAIN, MARKDOWN = "prose", "plain", "markdown"


@dataclass
class Paragraph:
    text: str
    style: str = PROSE
    css: str = ""      # the HTML class: "", "note" or "legend"


@dataclass
class Table:
    header: list[str]
    rows: list[list]   # the first cell of each row is its label; a matrix cell is report_verdicts' cell dict
    css: str = ""
    prose: bool = False  # cells are report sentences (PROSE), else PLAIN
    baseline_from: int | None = None  # rows from this index on are the jump baseline (HTML sets them apart)


@dataclass
class Figure:
    alt: str           # the loss-curves PNG: linked in Markdown, embedded in HTML


@dataclass
class Samples:
    columns: list[str]                    # stage names, then the baseline's
    prompts: list[str]                    # in first-seen order
    texts: dict[str, dict[str, list[str]]]  # prompt -> column -> texts


@dataclass
class BulletList:
    items: list[str]   # report sentences
    empty: str         # what stands there without items


Block = Paragraph | Table | Figure | Samples | BulletList


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2     # 1: the report's title (with the summary)


SAMPLE_CHARS = 400  # samples are cut to this many characters in the report
LOSS_FIGURE_ALT = "Train and val loss across stages"
NO_STAGE = "No stage has finished yet."


def sections(results: dict) -> list[Section]:
    """The report of `results` (load_results' dict) as sections: the title and summary first."""
    parts, stages = results["parts"], results["stages"]
    out = [Section(results.get("title") or "growgpt grow report", [Paragraph(stage_summary(results))], level=1)]
    header = ["Stage"] + [f"part {p}" for p in parts] + ["union"]
    for metric, legend in (("bpb", bpb_legend), ("loss", loss_legend)):
        matrix = score_matrix(results, metric)
        if metric == "bpb" and all(c["value"] is None for _, cells in matrix for c in cells):
            out.append(Section(MATRIX_HEADINGS[metric], [Paragraph(NO_BPB, MARKDOWN, "note")]))
            continue
        rows = [[label, *cells] for label, cells in matrix]
        pairs = [c["pair"] for _, cells in matrix for c in cells if c["pair"] is not None]
        out.append(Section(MATRIX_HEADINGS[metric], [Table(header, rows, "matrix", baseline_from=len(stages)),
                                                     Paragraph(legend(results, pairs), MARKDOWN, "legend")]))
    out.append(Section("Loss curves", [Figure(LOSS_FIGURE_ALT)]))
    out.append(Section("Stages", [Table(COST_HEADER, _cost_table(results), "stages"), *_variant_cost_blocks(results),
                                  Paragraph(_cost_note(results), PLAIN, "legend")]))
    columns, prompts, texts = _samples(results)
    out.append(Section("Samples", [Samples(columns, prompts, texts) if prompts
                                   else Paragraph("No samples were recorded.", PLAIN, "note")]))
    if results.get("baseline"):
        blocks: list[Block] = []
        if stages:
            blocks.append(Table(GROW_VS_JUMP_HEADER, _grow_vs_jump_rows(results)))
        blocks.append(Paragraph(grow_vs_jump(results) or NO_STAGE))
        if stages:
            blocks.append(Paragraph("Part by part (the last stage against the baseline, on the same val batches):",
                                    PLAIN))
            blocks.append(Table(_grow_vs_jump_part_header(results), _grow_vs_jump_part_rows(results),
                                "grow-vs-jump-parts"))
        out.append(Section("Grow vs jump", blocks))
    for title, blocks in ((SCHEDULES_HEADING, _schedule_blocks(results)), (SEEDS_HEADING, _seed_blocks(results))):
        if blocks:
            out.append(Section(title, blocks))
    note = interval_note(results)
    out.append(Section("Verdict", [BulletList(verdicts(results), NO_STAGE)]
                       + ([Paragraph(note, PLAIN, "note")] if note else [])))
    return out


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


def bpb_legend(results: dict, pairs: list[stats.PairedDifference]) -> str:
    """The legend of the bits-per-byte matrix (pairs: its cells' differences from the previous stage), with
    the union's bytes per token when known."""
    text = ("Cells are val bits per byte on each part's val set: the nats of the scored tokens \u00f7 "
            "(the UTF-8 bytes they decode to \u00d7 ln 2), which, unlike the loss per token, does not depend on "
            "the tokenizer; \"union\" is the union of all parts' val sets.")
    per_token = stage_bytes_per_token(results)
    if per_token:
        text += (f" The union's val text has {per_token:.2f} bytes per token: bpb \u2248 loss \u00f7 ln 2 "
                 f"\u00f7 {per_token:.2f}.")
    return f"{text} {marks_legend(pairs, 'bpb')}"


def loss_legend(results: dict, pairs: list[stats.PairedDifference]) -> str:
    """The legend of the val-loss matrix (pairs: its cells' differences from the previous stage)."""
    return f"{LOSS_CELLS} {marks_legend(pairs, 'loss')}"


def marks_legend(pairs: list[stats.PairedDifference], metric: str) -> str:
    """What the marks of a matrix of `metric` mean: ·unseen, ▲ and △, and the noise the intervals cover.
    pairs: the matrix's differences from the previous stage (report_verdicts.matrix_pairs)."""
    text = UNSEEN_MARK
    if not any(p.has_interval for p in pairs):
        text += (f" {RISE} +x %: the {metric} rose since the previous stage (for a part already trained on: "
                 f"forgetting).")
        return text + (" No interval: re-run grow to rescore." if pairs else "")
    text += (f" {RISE} +x %: the {metric} rose since the previous stage beyond evaluation noise (0 lies "
             f"outside the change's {method_text(pairs)}); for a part already trained on, that is forgetting. "
             f"{RISE_WITHIN_NOISE} +x %: it rose within noise (the interval includes 0): no difference detectable.")
    if not all(p.has_interval for p in pairs):
        text += (f" Where there is no interval (scores without per-batch sums, or made on different batches), "
                 f"{RISE} marks any rise.")
    return text + f" The intervals cover {stats.NOISE_COVERED}."


GROW_VS_JUMP_HEADER = ["", "Union val bpb", "Union val loss", "Tokens", "Time"]


def _grow_vs_jump_part_header(results: dict) -> list[str]:
    metric = compare_metric(results)
    return ["Val set", f"Grow ({metric})", f"Jump ({metric})", f"Grow {MINUS} jump", "Verdict"]


def _grow_vs_jump_part_rows(results: dict) -> list[list[str]]:
    """The rows of the per-part grow-vs-jump table: each part, then the union, with grow − jump, its
    interval and the verdict words."""
    metric = compare_metric(results)
    last, base = results["stages"][-1], results["baseline"]
    rows = []
    for part in [*results["parts"], None]:
        grow_value, jump_value = loss_of(score_of(last, part), metric), loss_of(score_of(base, part), metric)
        label = "union" if part is None else f"part {part}"
        if grow_value is None or jump_value is None:
            rows.append([label, f_metric(grow_value, metric), f_metric(jump_value, metric), "\u2013", "\u2013"])
            continue
        pair = grow_minus_jump(results, part, metric)
        if pair.has_interval:
            diff = f_pm(pair)
        elif pair.status == stats.DIFFERENT_BATCHES:
            diff = "\u2013"
        else:
            diff = f_signed(grow_value - jump_value, diff_digits(metric, None))
        rows.append([label, f_metric(grow_value, metric), f_metric(jump_value, metric), diff, winner_words(pair)])
    return rows


def _grow_vs_jump_rows(results: dict) -> list[list[str]]:
    """The rows of the grow-vs-jump table: the last stage with the stages' totals, then the baseline."""
    base, stages = results["baseline"], results["stages"]
    last = union_eval(stages[-1])
    return [[f"grow (last stage {stages[-1].get('name', '?')})", f_bpb(loss_of(last, "bpb")), f_loss(loss_of(last)),
             f_count(totals(stages, "tokens")), f_time(totals(stages, "seconds"))],
            [f"{baseline_name(base)} {BASELINE_LABEL}", f_bpb(loss_of(union_eval(base), "bpb")),
             f_loss(loss_of(union_eval(base))), f_count(base.get("tokens")), f_time(base.get("seconds"))]]


def _cost_table(results: dict) -> list[list[str]]:
    """The cost table's rows (cells as COST_HEADER): the main chain's stages (a wsd stage as its trunk and
    its cooldown branch), the chain's total, then the baseline."""
    rows = _chain_cost_rows(results["stages"], results["parts"], "grow")
    if results.get("baseline"):
        base = results["baseline"]
        rows.append([f"{baseline_name(base)} (baseline)", *_cost_cells(base, results["parts"], "\u2013")])
    return rows


def _chain_cost_rows(stages: list[dict], parts: list[str], total_label: str) -> list[list[str]]:
    """One row per stage (a wsd stage: "NAME (wsd trunk)" and "NAME cooldown branch"), then the total with
    the branches counted in."""
    rows = []
    for k, stage in enumerate(stages):
        name = stage_name(stage, k)
        branch = cooldown_branch_of(stage)
        rows.append([f"{name} (wsd trunk)" if branch is not None else name,
                     *_cost_cells(stage, parts, compact_parts(new_parts_of(stages, k), parts))])
        if branch is not None:
            lr = f"{f_lr(stage.get('learning_rate'))} {ARROW} {f_lr(branch.get('min_lr'))}"
            if branch.get("cooldown_shape"):
                lr += f" ({branch['cooldown_shape']})"
            rows.append([f"{name} cooldown branch",
                         *_cost_cells({**branch, "parts": stage.get("parts", []), "learning_rate": None,
                                       "replay": stage.get("replay")}, parts, "\u2013")[:-2], lr,
                         str(stage.get("replay") or "\u2013")])
    if stages:
        tokens, seconds = totals(stages, "tokens"), totals(stages, "seconds")
        trunk_iters = [s.get("end_iter", 0) - s.get("start_iter", 0) for s in stages
                       if is_number(s.get("end_iter")) and is_number(s.get("start_iter"))]
        branch_iters = [b.get("iters") for b in map(cooldown_branch_of, stages) if b is not None]
        iters = f"{sum(trunk_iters)}" if len(trunk_iters) == len(stages) else "\u2013"
        if branch_iters and iters != "\u2013" and all(is_number(i) for i in branch_iters):
            iters += f" + {sum(branch_iters)} (branches)"
        label = f"{total_label} total" + (" (branches included)" if branch_iters else "")
        trained = sorted({p for s in stages for p in stage_parts(s)},
                         key=lambda p: parts.index(p) if p in parts else 0)
        rows.append([label, compact_parts(trained, parts), "\u2013", iters, f_count(tokens), f_time(seconds),
                     f_count(tokens / seconds) if tokens is not None and seconds else "\u2013",
                     "\u2013", "\u2013", "\u2013"])
    return rows


def _cost_cells(row: dict, parts: list[str], new: str) -> list[str]:
    """Parts, new parts, iterations, tokens, time, tokens/s, MFU, LR, replay of one row."""
    return [compact_parts(stage_parts(row), parts), new, f_iters(row), f_count(row.get("tokens")),
            f_time(row.get("seconds")), f_count(row.get("tokens_per_s")), f_mfu(row.get("mfu")),
            f_lr(row.get("learning_rate")), str(row.get("replay") or "\u2013")]


def _cost_note(results: dict) -> str:
    """COST_NOTE, and for wsd stages what their two rows are."""
    chains = schedule_chains(results)
    if not any(cooldown_branch_of(s) is not None for stages in chains.values() for s in stages):
        return COST_NOTE
    return (COST_NOTE + " A wsd stage is a stretch of a constant-LR trunk (\u201c(wsd trunk)\u201d) and a cooldown "
            "branch off the trunk's end (its learning rate decays to min_lr); the stage's scores and samples are "
            "the branch's, and the next stage continues the trunk. Tokens and time of branches are counted "
            "separately and in the totals.")


def _variant_cost_blocks(results: dict) -> list[Block]:
    """The cost of each variant chain (--compare-schedules), as the main chain's."""
    blocks = []
    main = main_schedule(results)
    for schedule, stages in schedule_chains(results).items():
        if schedule == main and results.get("stages"):
            continue
        label = schedule_label(schedule)
        blocks.append(Paragraph(f"The {label} chain (trained with `--compare-schedules`):"))
        blocks.append(Table(COST_HEADER, _chain_cost_rows(stages, results["parts"], label), "stages", prose=True))
    return blocks


def _samples(results: dict) -> tuple[list[str], list[str], dict[str, dict[str, list[str]]]]:
    """(column labels, prompts in first-seen order, prompt -> column -> texts)."""
    columns: list[tuple[str, dict]] = [(stage_name(s, k), s) for k, s in enumerate(results["stages"])]
    if results.get("baseline"):
        columns.append((baseline_name(results["baseline"]), results["baseline"]))
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


def _schedule_blocks(results: dict) -> list[Block]:
    """The schedule comparison section's blocks; [] without variants."""
    metric = extended_metric(results)
    contestants = contestants_of(results)
    if not contestants:
        return []
    blocks: list[Block] = []
    main = main_schedule(results)
    rows = []
    for c in contestants:
        union = union_eval(c.row)
        role = ("baseline, cosine" if c.key == "jump" else "main chain" if c.main else "variant: --compare-schedules")
        rows.append([f"{c.label} ({role})", f_bpb(loss_of(union, "bpb")), f_loss(loss_of(union)),
                     f_count(c.lineage_tokens), f_count(c.tokens), f_time(c.seconds)])
    blocks.append(Table(["", "Union val bpb", "Union val loss", "Tokens in the final model's lineage",
                         "Tokens trained in all (branches included)", "Train time (trunk + branches)"], rows,
                        "schedules", prose=True))
    versus = versus_pairs(results, metric)
    spread = seed_spread(results)
    if versus:
        rows = [[v.label, f_diff(v.pair), versus_words(v.pair, v.a.label)] for v in versus]
        if spread and spread.has_interval:
            grow_label = schedule_label(main)
            rows.append([f"{grow_label} {MINUS} jump over {len(spread.diffs)} seeds",
                         f_pm_values(metric, spread.mean_diff, spread.half_width),
                         seed_words(spread).replace("growing", grow_label)])
        blocks.append(Table(["Union", f"Difference ({metric})", "Verdict"], rows, "schedules", prose=True))
    blocks += [Paragraph(text) for text in schedule_notes(results, metric)]
    if spread and spread.has_interval:
        blocks.append(Paragraph(f"The row over seeds is a 95 % t-interval over the per-seed differences (see "
                                f"{SEEDS_HEADING}): it covers {SEED_NOISE_PLAIN}."))
    per_stage = per_stage_versus(results, metric)
    if per_stage:
        rows = [[name, f_metric(c, metric), f_metric(w, metric), f_diff(p) if p else "\u2013",
                 versus_words(p, "grow-WSD") if p else "\u2013"] for name, c, w, p in per_stage]
        blocks.append(Paragraph(f"Stage by stage (each stage's model: the cosine stage, and the wsd stage's "
                                f"cooldown branch), union {METRIC_NAMES[metric]}:"))
        blocks.append(Table(["Stage", f"grow-cosine ({metric})", f"grow-WSD ({metric})",
                             f"grow-WSD {MINUS} grow-cosine", "Verdict"], rows, "schedules", prose=True))
    return blocks


def _seed_blocks(results: dict) -> list[Block]:
    """The seed spread section's blocks; [] without repeats."""
    spread = seed_spread(results)
    if spread is None:
        return []
    metric = spread.metric
    blocks: list[Block] = []
    rows = []
    for s in (spread.jump, spread.grow):
        if s is not None:
            rows.append([s.label, str(s.k), f_metric(s.mean, metric),
                         "\u2013" if s.sd is None else f"{s.sd:.{diff_digits(metric, s.sd or None)}f}",
                         f"{f_metric(s.low, metric)} {EN_DASH} {f_metric(s.high, metric)}"])
    if rows:
        blocks.append(Table(["Runs", "Seeds", f"Mean union {metric}", "Sample SD", "Range"], rows, "seeds", prose=True))
    if spread.diffs:
        jump_by, grow_by = dict(spread.jump.values), dict(spread.grow.values)
        digits = diff_digits(metric, spread.half_width or None)
        rows = [[f"+{n}" if n else "0 (main)", f_metric(grow_by[n], metric), f_metric(jump_by[n], metric),
                 f_signed(d, digits)]
                for n, d in spread.diffs]
        blocks.append(Table(["Seed offset", f"{spread.grow.label} ({metric})", f"jump ({metric})",
                             f"grow {MINUS} jump"], rows, "seeds", prose=True))
    blocks += [Paragraph(text) for text in seed_sentences(results, spread)]
    blocks.append(Paragraph(f"Which noise each interval covers: a \u00b1 over seeds spans models trained with other "
                            f"seeds and covers {SEED_NOISE_PLAIN}; a paired \u00b1 between two models (the matrices, "
                            f"grow vs jump, the schedules) covers {stats.NOISE_COVERED}."))
    return blocks
