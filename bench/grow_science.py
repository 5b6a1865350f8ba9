#!/usr/bin/env python
"""Grow vs jump on a real dump: does growing a GPT in stages reach the model trained from scratch on
the union, and does it keep what it learned first? (issue 12 §5)

    python bench/grow_science.py                     # CPU scale, ~10-20 min on 2 cores
    python bench/grow_science.py --workdir DIR       # default /tmp/growgpt-grow-science-cpu; a re-run
                                                     # reuses every finished stage (and the corpus)
    python bench/grow_science.py --quick             # a tiny scale for tests and smoke runs (< 1 min)
    python bench/grow_science.py --gpu               # GPT-2-small shape, gpt2 tokenizer, cuda, bf16, compile

The corpus: the six page-range parts of Greek Wikivoyage in ../shared/data/wikidumps/mwbzutils-
elwikivoyage/split-parts/ (read in place, never copied; `--parts DIR` reads six files of those names
from elsewhere), in page order: part 1 = p1p358, 2 = p359p1020, 3 = p1021p1365, 4 = p1366p1589,
5 = p1590p2034, 6 = p2035p2689. Stage 1 trains on part 1, stage 2 on
parts 1-3, stage 3 on parts 1-6; each stage's iterations are proportional to the tokens it adds
(25 / 30 / 45 % of the union's train tokens at the bytes tokenizer).

Variants (one grow plan each, [model], [train] and [eval] identical):
  replay 0 %           cosine re-warm + re-decay per stage, a stage lists only its NEW parts
                       (stage 2: [2, 3], stage 3: [4, 5, 6]); nothing old is replayed.
  replay 5 %           stages list every part so far with new_fraction = 0.95: 95 % of the rows from
                       the parts the stage adds, 5 % replay of the old ones.
  replay proportional  stages list every part so far, rows by size (grow's default).
  WSD                  the proportional plan's stages as one constant-LR trunk (warmup in stage 1
                       only), each stage scored as a 1-sqrt cooldown branch (20 % of its iterations)
                       off the trunk: grow's compare_schedules chain of the proportional plan.
  jump                 from scratch on parts 1-6 for the sum of the stages' iterations (equal
                       trained tokens to a cosine chain), one cosine: grow's baseline="jump" of the
                       proportional plan. Trained once; every variant is compared with it.

Design: the corpus is extracted and tokenized once, by grow's own ensure_parts, into WORKDIR/corpus;
every variant's grow workdir (WORKDIR/<variant>) links its text/ and tokens/ to it (extract and prepare
then skip every part). So every stage is scored on all six parts from the start, on the same val
batches ([eval] seed, batches, batch_size), and all models pair up batch by batch: each difference
is printed as "new - old ± h", h the half-width of the 95 % paired t-interval over the val batches
(growgpt.report.pair / growgpt.stats), which covers evaluation-sampling noise only, not
seed-to-seed training noise. Before a variant is compared with the jump, the pairing is checked: the
same eval batch settings (count, batch_size, block_size, seed), the same union parts, and the per-batch
byte counts equal (stats refuses other windows).

CPU scale, and why: the bytes tokenizer (257 ids: a step costs a fraction of one with GPT-2's
50k-entry softmax, and bpb needs no BPE that splits Greek into many pieces); 4 layers x 4 heads x 128,
block 256, batch 8 (0.86 M parameters, 2,048 tokens a step); lr 2e-3 -> 2e-4 (the best of three over
200 jump steps); stages of 100 / 120 / 180 iterations (jump 400: 0.82 M tokens, a third of the union's
2.67 M train bytes); eval 32 batches x 4 windows. One torch thread by default: a second thread loses
badly to another job on a 2-core machine; --threads 0 restores torch's choice. The candidates and
timings behind these choices, and the figures of a full run, are in NOTES.md (bench/grow_science.py).
The scale is far from converged, so the bench measures the schedules' cost at equal tokens more than
forgetting.

Printed: per variant the stage x part val bits-per-byte matrix (rows stage 1..3 and jump; columns
parts 1..6 and the union; * marks a part the row has not been trained on yet), a table of the final
union bpb of each variant against the jump (difference ± 95 % interval, relative difference), tokens
(in the final model's lineage, and trained in all: a WSD chain also trains its cooldown branches)
and training-step time, then two checks:
  Check 1: the best grow variant's final union bpb within 1 % of jump's: PASS when
           (grow - jump) / jump <= +1 % (point estimate; the interval is printed beside it).
  Check 2: per variant, part 1's bpb rises by at most 1 % when parts arrive: stage 2 vs stage 1 and
           stage 3 vs stage 1, both (grow_k - stage1) / stage1 <= +1 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

SPLIT_PARTS = ROOT.parent / "shared" / "data" / "wikidumps" / "mwbzutils-elwikivoyage" / "split-parts"
# Part n = entry n: the page ranges in page order.
PART_FILES = ["pages-articles.xml-p1p358.bz2", "pages-articles.xml-p359p1020.bz2",
              "pages-articles.xml-p1021p1365.bz2", "pages-articles.xml-p1366p1589.bz2",
              "pages-articles.xml-p1590p2034.bz2", "pages-articles.xml-p2035p2689.bz2"]
STAGE_PARTS = [[1], [1, 2, 3], [1, 2, 3, 4, 5, 6]]  # the parts each stage has seen, all variants
PARTS = [str(p) for p in STAGE_PARTS[-1]]
TOLERANCE_PCT = 1.0  # both checks: a rise (or a gap to jump) of at most 1 %


# ------------------------------------------------------------------------------------------------
# Scales


@dataclass(frozen=True)
class Scale:
    name: str
    model: dict
    tokenizer: str
    train: dict               # [train]: every stage and the jump alike
    iters: tuple[int, int, int]  # per stage; the jump trains their sum
    learning_rate: float
    warmup: tuple[int, int, int]  # stage 1's warmup; stages 2-3 re-warm (cosine plans only)
    eval: dict = field(default_factory=dict)


SCALES = {
    # ~0.86 M parameters, 2,048 tokens a step (~0.3-0.4 s on one core): 5.2 chains' worth of steps
    # (3 cosine chains, the WSD trunk + its cooldown branches, the jump): 15.6-16.5 minutes measured.
    "cpu": Scale("cpu", dict(n_layer=4, n_head=4, n_embd=128, block_size=256, dropout=0.0, bias=True), "bytes",
                 dict(batch_size=8, gradient_accumulation_steps=1, device="cpu", compile=False, dtype="float32",
                      min_lr=2e-4, weight_decay=0.1, beta2=0.99, eval_interval=1000, eval_iters=4,
                      log_interval=10),
                 (100, 120, 180), 2e-3, (20, 10, 10),
                 dict(batches=32, batch_size=4, prompts=["Η πόλη"], max_new_tokens=80, seed=1234)),
    "quick": Scale("quick", dict(n_layer=1, n_head=2, n_embd=32, block_size=64, dropout=0.0, bias=True), "bytes",
                   dict(batch_size=4, gradient_accumulation_steps=1, device="cpu", compile=False, dtype="float32",
                        min_lr=3e-4, beta2=0.99, eval_interval=1000, eval_iters=2, log_interval=5),
                   (4, 4, 6), 3e-3, (2, 1, 1),
                   dict(batches=4, batch_size=4, prompts=["Η πόλη"], max_new_tokens=8, seed=1234)),
    # GPT-2 small (124 M) for a lent GPU: bf16 autocast and torch.compile are growgpt's defaults on cuda.
    # ~2.5 epochs of the union (16 k tokens a step). Not yet run on a GPU: the plans load, that is all.
    "gpu": Scale("gpu", dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0, bias=True), "gpt2",
                 dict(batch_size=8, gradient_accumulation_steps=2, device="cuda", min_lr=6e-5,
                      eval_interval=1000, eval_iters=8, log_interval=10),
                 (150, 180, 270), 6e-4, (40, 20, 20),
                 dict(batches=32, batch_size=8, prompts=["Η πόλη"], max_new_tokens=100, seed=1234)),
}


# ------------------------------------------------------------------------------------------------
# Variants and their plans


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    stage_parts: list[list[int]]
    new_fraction: float = 0.0
    runs_in: str = ""  # a chain trained inside another variant's grow run (WSD: the proportional one)


VARIANTS = [
    Variant("replay0", "replay 0 %", [[1], [2, 3], [4, 5, 6]]),
    Variant("replay5", "replay 5 %", STAGE_PARTS, new_fraction=0.95),
    Variant("proportional", "replay proportional", STAGE_PARTS),
    Variant("wsd", "WSD (proportional)", STAGE_PARTS, runs_in="proportional"),
]
MAIN = "proportional"  # its grow run also trains the jump and the WSD chain


def _toml(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string, number, bool or list is a TOML value


def plan_text(scale: Scale, variant: Variant, files: list[Path]) -> str:
    """The grow plan (TOML) of a cosine variant: [data] files = the six parts, three stages."""
    lines = [f"title = {_toml('elwikivoyage, ' + variant.label + ' (' + scale.name + ')')}", "[model]"]
    lines += [f"{k} = {_toml(v)}" for k, v in scale.model.items()]
    lines += ["[data]", f"files = {_toml([str(f) for f in files])}", f"tokenizer = {_toml(scale.tokenizer)}"]
    lines += ["[train]"] + [f"{k} = {_toml(v)}" for k, v in scale.train.items()]
    lines += ["[eval]"] + [f"{k} = {_toml(v)}" for k, v in scale.eval.items()]
    for k, (parts, iters, warmup) in enumerate(zip(variant.stage_parts, scale.iters, scale.warmup), 1):
        lines += ["", "[[stage]]", f'name = "s{k}"', f"parts = {_toml(parts)}", f"iters = {iters}",
                  f"learning_rate = {scale.learning_rate!r}", f"warmup_iters = {warmup}"]
        if variant.new_fraction and k > 1:
            lines.append(f"new_fraction = {variant.new_fraction!r}")
    return "\n".join(lines) + "\n"


def write_plan(path: Path, scale: Scale, variant: Variant, files: list[Path]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = plan_text(scale, variant, files)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # leave it alone when unchanged
        path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------
# Running: the shared corpus, then one grow run per cosine variant


def prepare_corpus(plan_path: Path, corpus: Path) -> None:
    """Extract and tokenize all six parts once, with grow's own settings (ensure_parts)."""
    from growgpt.grow import ensure_parts
    from growgpt.plan import load_plan
    from growgpt.workspace import Sources, Workspace

    plan = load_plan(plan_path)
    ws = Workspace(corpus)
    ensure_parts(plan, ws, Sources(plan, ws), plan.all_parts, progress=False, verbose=False)


def link_corpus(workdir: Path, corpus: Path) -> None:
    """workdir/text and workdir/tokens -> the shared corpus (extract and prepare then skip every part)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("text", "tokens"):
        link = workdir / name
        if link.is_symlink() and link.resolve() == (corpus / name).resolve():
            continue
        if link.exists() or link.is_symlink():
            raise SystemExit(f"{link} exists and is not a link to {corpus / name}: use another --workdir")
        link.symlink_to(os.path.relpath(corpus / name, workdir))


def run_variant(plan_path: Path, workdir: Path, main: bool, verbose: bool) -> tuple[dict, float]:
    """grow the plan (for the main variant also the WSD chain and the jump); the results and wall seconds."""
    from growgpt.grow import grow

    t0 = time.perf_counter()
    results = grow(plan_path, workdir, baseline="jump" if main else None, progress=False, verbose=verbose,
                   compare_schedules=main)
    return results, time.perf_counter() - t0


def chains_of(results_by_run: dict[str, dict]) -> dict[str, list[dict]]:
    """variant key -> its stage entries (the WSD chain from the proportional run's variants)."""
    out = {}
    for v in VARIANTS:
        results = results_by_run[v.runs_in or v.key]
        out[v.key] = results["variants"]["wsd"]["stages"] if v.key == "wsd" else results["stages"]
    return out


# ------------------------------------------------------------------------------------------------
# Matrices, pairs and checks


def bpb(entry: dict, part: str | None) -> float | None:
    ev = entry.get("eval") or {}
    score = ev.get("union") if part is None else (ev.get("parts") or {}).get(part)
    return (score or {}).get("bpb")


def bpb_matrix(stages: list[dict], jump: dict | None) -> list[tuple[str, list[tuple[float | None, bool]]]]:
    """Rows (label, [(bpb, trained on it yet) per part ..., (union bpb, True)])."""
    rows = []
    for k, stage in enumerate(stages, 1):
        trained = set(stage.get("parts_trained") or stage["parts"])
        rows.append((f"stage {k}", [(bpb(stage, p), p in trained) for p in PARTS] + [(bpb(stage, None), True)]))
    if jump is not None:
        rows.append(("jump", [(bpb(jump, p), True) for p in PARTS] + [(bpb(jump, None), True)]))
    return rows


def format_matrix(rows) -> str:
    head = f"{'':<9}" + "".join(f"{'part ' + p:>9}" for p in PARTS) + f"{'union':>9}"
    lines = [head]
    for label, cells in rows:
        text = "".join(f"{'-' if v is None else f'{v:.4f}' + ('' if seen else '*'):>9}" for v, seen in cells)
        lines.append(f"{label:<9}{text}")
    return "\n".join(lines)


def pair(old: dict, new: dict, part: str | None):
    """new - old in bpb on one part (the union for None), paired over the val batches."""
    from growgpt.report import pair as report_pair

    return report_pair(old, new, part, "bpb")


def pairing_problem(jump: dict, entry: dict) -> str | None:
    """Why `entry` cannot be paired with the jump on the union (None: it can)."""
    from growgpt import stats

    a, b = jump["eval"], entry["eval"]
    if a.get("batches") != b.get("batches"):
        return f"other val batches: jump {a.get('batches')} vs {b.get('batches')}"
    if sorted(a.get("union_parts") or []) != sorted(b.get("union_parts") or []):
        return f"other union parts: jump {a.get('union_parts')} vs {b.get('union_parts')}"
    status = pair(jump, entry, None).status
    return None if status == stats.PAIRED else f"no paired interval: {status}"


def relative_pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0


def f_pm(p, digits: int = 4) -> str:
    if p is None or p.diff is None:
        return "n/a"
    if p.half_width is None:
        return f"{p.diff:+.{digits}f}"
    return f"{p.diff:+.{digits}f} ± {p.half_width:.{digits}f}"


def f_rel_interval(p, base: float) -> str:
    if p is None or p.half_width is None:
        return ""
    return f"[{(p.diff - p.half_width) / base * 100:+.2f} %, {(p.diff + p.half_width) / base * 100:+.2f} %]"


def check_close_to_jump(finals: dict[str, float], jump: float, tolerance_pct: float = TOLERANCE_PCT) -> dict:
    """Check 1: the best (lowest) final union bpb within tolerance_pct of jump's (above it; below passes)."""
    best = min(finals, key=finals.get)
    rel = relative_pct(finals[best], jump)
    return {"best": best, "rel_pct": rel, "passed": rel <= tolerance_pct,
            "within": [k for k, v in finals.items() if relative_pct(v, jump) <= tolerance_pct]}


def check_part1_rise(part1: list[float], tolerance_pct: float = TOLERANCE_PCT) -> dict:
    """Check 2: part 1's bpb at stages 2.. against stage 1: every rise at most tolerance_pct."""
    rises = [relative_pct(v, part1[0]) for v in part1[1:]]
    return {"rises_pct": rises, "passed": all(r <= tolerance_pct for r in rises)}


def pass_word(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# ------------------------------------------------------------------------------------------------
# Costs


def costs(stages: list[dict]) -> dict:
    from growgpt.report import lineage_tokens, totals

    return {"lineage_tokens": lineage_tokens(stages), "tokens": totals(stages, "tokens"),
            "seconds": totals(stages, "seconds")}


def f_tokens(n) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n:,.0f}"


def f_seconds(s) -> str:
    return "n/a" if s is None else f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


# ------------------------------------------------------------------------------------------------
# The report


def report(results_by_run: dict[str, dict], walls: dict[str, float]) -> dict:
    """Print matrices, the comparison with jump and the two checks; returns the checks."""
    chains = chains_of(results_by_run)
    jump = results_by_run[MAIN]["baseline"]
    labels = {v.key: v.label for v in VARIANTS}

    for v in VARIANTS:
        print(f"\n{v.label}: val bits per byte, stage x part (* = not trained on yet)")
        print(format_matrix(bpb_matrix(chains[v.key], jump)))

    print("\nPairing with jump (same val batches: eval batch settings, union parts, per-batch bytes):")
    problems = {}
    for v in VARIANTS:
        problem = pairing_problem(jump, chains[v.key][-1])
        problems[v.key] = problem
        drawn = chains[v.key][-1]["eval"]["batches"]
        print(f"  {v.label:<22} {'valid' if problem is None else 'NOT VALID: ' + problem}"
              + (f" ({drawn['count']} batches x {drawn['batch_size']} x {drawn['block_size']} tokens, seed "
                 f"{drawn['seed']}, union of {len(chains[v.key][-1]['eval']['union_parts'])} parts)"
                 if problem is None else ""))

    jump_bpb = bpb(jump, None)
    jump_cost = {"lineage_tokens": jump.get("tokens"), "tokens": jump.get("tokens"), "seconds": jump.get("seconds")}
    print("\nFinal union bpb vs jump (grow - jump ± 95 % paired interval over the val batches; "
          "evaluation noise only)")
    print(f"  {'variant':<22}{'union bpb':>10}  {'grow - jump':<20}{'relative':>9}  {'rel. interval':<20}"
          f"{'tokens (final model)':>21}{'tokens (all)':>13}{'train time':>11}")
    finals = {}
    for v in VARIANTS:
        final = chains[v.key][-1]
        value = bpb(final, None)
        finals[v.key] = value
        p = pair(jump, final, None)
        c = costs(chains[v.key])
        print(f"  {v.label:<22}{value:>10.4f}  {f_pm(p):<20}{relative_pct(value, jump_bpb):>+8.2f}%  "
              f"{f_rel_interval(p, jump_bpb):<20}{f_tokens(c['lineage_tokens']):>21}{f_tokens(c['tokens']):>13}"
              f"{f_seconds(c['seconds']):>11}")
    print(f"  {'jump':<22}{jump_bpb:>10.4f}  {'':<20}{'':>9}  {'':<20}{f_tokens(jump_cost['lineage_tokens']):>21}"
          f"{f_tokens(jump_cost['tokens']):>13}{f_seconds(jump_cost['seconds']):>11}")
    print("  (train time: training steps only; WSD's 'all' tokens include the cooldown branches of stages 1-2, "
          "its final model also saw stage 3's branch)")
    print("  wall time of each grow call this run (training, evaluation, checkpoints, samples, report; a re-run "
          "reuses finished stages): "
          + ", ".join(f"{k} {w:.0f} s" for k, w in walls.items()))

    c1 = check_close_to_jump(finals, jump_bpb)
    best = c1["best"]
    p = pair(jump, chains[best][-1], None)
    print(f"\nCheck 1: best grow variant's final union bpb within {TOLERANCE_PCT:g} % of jump's: "
          f"{pass_word(c1['passed'])}")
    print(f"  best: {labels[best]}, {finals[best]:.4f} vs jump {jump_bpb:.4f}: {c1['rel_pct']:+.2f} % "
          f"(grow - jump {f_pm(p)}, 95 % interval {f_rel_interval(p, jump_bpb)} of jump)")
    print("  within 1 % of jump: " + (", ".join(labels[k] for k in c1["within"]) or "none")
          + "; not: " + (", ".join(labels[v.key] for v in VARIANTS if v.key not in c1["within"]) or "none"))

    print(f"\nCheck 2: part 1 bpb rises at most {TOLERANCE_PCT:g} % when parts arrive (stage 2 and stage 3 vs stage 1)")
    c2 = {}
    for v in VARIANTS:
        stages = chains[v.key]
        part1 = [bpb(s, "1") for s in stages]
        c2[v.key] = check_part1_rise(part1)
        moves = "; ".join(f"stage {k}: {part1[k - 1]:.4f} ({c2[v.key]['rises_pct'][k - 2]:+.2f} %, "
                          f"{f_pm(pair(stages[0], stages[k - 1], '1'))})" for k in range(2, len(stages) + 1))
        print(f"  {v.label:<22} {pass_word(c2[v.key]['passed'])}  stage 1: {part1[0]:.4f}; {moves}")

    passing = [labels[v.key] for v in VARIANTS if v.key in c1["within"] and c2[v.key]["passed"]]
    print(f"\nVariants within 1 % of jump AND keeping part 1 within 1 %: {', '.join(passing) or 'none'}")
    if any(problems.values()):
        print("WARNING: some pairings with jump are not valid (see above): their intervals are missing")
    return {"check1": c1, "check2": c2, "pairing": problems}


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    scale_group = ap.add_mutually_exclusive_group()
    scale_group.add_argument("--quick", action="store_true", help="a tiny scale for tests and smoke runs (< 1 minute)")
    scale_group.add_argument("--gpu", action="store_true",
                             help="GPT-2 small (12x12x768, block 1024, gpt2 tokenizer, bf16, compile) on cuda")
    ap.add_argument("--workdir", type=Path, help="where plans, corpus and runs go (default /tmp/growgpt-grow-science-"
                    "SCALE); a re-run reuses finished stages")
    ap.add_argument("--threads", type=int, help="torch threads (default: 1 at the CPU scales, see the module "
                    "docstring; torch's choice with --gpu; 0: torch's choice)")
    ap.add_argument("--verbose", action="store_true", help="grow's and the trainer's own progress lines")
    ap.add_argument("--json", type=Path, help="also write the checks and figures to this JSON file")
    ap.add_argument("--parts", type=Path, default=SPLIT_PARTS, help="the folder that holds the six parts, named as "
                    "in PART_FILES (default: the Greek Wikivoyage parts in ../shared; the tests pass small "
                    "generated ones)")
    args = ap.parse_args(argv)

    parts_dir = args.parts
    missing = [f for f in PART_FILES if not (parts_dir / f).is_file()]
    if missing:
        print(f"grow_science: the six parts are not in {parts_dir} (missing {', '.join(missing)}); the Greek "
              "Wikivoyage ones live in ../shared next to the repository", file=sys.stderr)
        return 2
    scale = SCALES["quick" if args.quick else "gpu" if args.gpu else "cpu"]
    workdir = (args.workdir or Path(f"/tmp/growgpt-grow-science-{scale.name}")).resolve()
    import torch

    threads = args.threads if args.threads is not None else (0 if args.gpu else 1)
    if threads:
        torch.set_num_threads(threads)

    files = [parts_dir / f for f in PART_FILES]
    started = time.perf_counter()
    corpus = "Greek Wikivoyage, 6 parts" if parts_dir == SPLIT_PARTS else "6 parts"
    print(f"grow_science ({scale.name}): {corpus} from {parts_dir}")
    print(f"  model {scale.model['n_layer']} layers x {scale.model['n_head']} heads x {scale.model['n_embd']}, "
          f"block {scale.model['block_size']}, tokenizer {scale.tokenizer}; batch "
          f"{scale.train['batch_size']} x {scale.train['gradient_accumulation_steps']} x block; stages "
          f"{'/'.join(map(str, scale.iters))} iters (jump {sum(scale.iters)}), lr {scale.learning_rate:g} -> "
          f"{scale.train['min_lr']:g}, warmup {'/'.join(map(str, scale.warmup))}; eval {scale.eval['batches']} "
          f"batches x {scale.eval['batch_size']}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"  workdir {workdir}")

    plans = {v.key: write_plan(workdir / "plans" / f"{v.key}.toml", scale, v, files)
             for v in VARIANTS if not v.runs_in}
    t0 = time.perf_counter()
    prepare_corpus(plans[MAIN], workdir / "corpus")
    print(f"  corpus extracted and tokenized once in {time.perf_counter() - t0:.1f} s: {workdir / 'corpus'}")

    results_by_run, walls = {}, {}
    for key in [MAIN] + [k for k in plans if k != MAIN]:  # the main run first: it trains the jump
        link_corpus(workdir / key, workdir / "corpus")
        what = " (and the WSD chain and the jump)" if key == MAIN else ""
        print(f"  growing {key}{what} ...", flush=True)
        results_by_run[key], walls[key] = run_variant(plans[key], workdir / key, key == MAIN, args.verbose)
        print(f"  {key} done in {walls[key]:.0f} s", flush=True)

    checks = report(results_by_run, walls)
    total = time.perf_counter() - started
    print(f"\ntotal wall time {total:.0f} s ({total / 60:.1f} min); grow reports: "
          f"{workdir}/<variant>/run/report.md")
    if args.json:
        chains = chains_of(results_by_run)
        jump = results_by_run[MAIN]["baseline"]
        out = {"scale": dataclasses.asdict(scale), "checks": checks, "wall_seconds": total,
               "matrices": {k: [(label, [v for v, _ in cells]) for label, cells in bpb_matrix(chains[k], jump)]
                            for k in chains}}
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"rerun: {shlex.join(['python', 'bench/grow_science.py', *(argv if argv is not None else sys.argv[1:])])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
