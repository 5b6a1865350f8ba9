"""The report's schedule comparison (grow-cosine vs grow-WSD vs jump), seed spread, wsd cost rows and curves.

Most results here are synthetic: scores built from known per-batch bits per byte, shaped like
growgpt.evaluate's output, so every figure the report prints can be computed by hand. One real grow run
(a wsd chain of two stages, module-scoped) checks that the report reads what grow writes.
"""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
import sys
from pathlib import Path

import pytest

from growgpt import stats
from growgpt.report import (
    console_summary,
    grow_vs_jump,
    load_results,
    loss_series,
    plot_loss_curves,
    render_html,
    render_markdown,
    schedule_comparison_lines,
    seed_spread,
    write_report,
)

LN2 = math.log(2)
N = 20
TOKENS = 512
META = {"count": N, "batch_size": 8, "block_size": 64, "seed": 1234}
BYTES = [random.Random(7).randint(1800, 2300) for _ in range(N)]
HARDNESS = [random.Random(8).gauss(0.0, 0.15) for _ in range(N)]
UNION_PARTS = ["p1", "p2"]
SEED_NOISE = ("95 % t over seeds: covers training noise: init and batch order, as well as evaluation "
              "sampling")
EVAL_NOISE = "evaluation-sampling noise only (which val windows were scored); not seed-to-seed training noise"
T_975_3 = 3.182446305284263  # Student's t, 0.975 quantile, 3 degrees of freedom (tables; scipy)
MINUS, PM = "\u2212", "\u00b1"


def score(per_batch_bpb: list[float]) -> dict:
    nats = [b * n * LN2 for b, n in zip(per_batch_bpb, BYTES)]
    tokens = [TOKENS] * len(nats)
    loss = sum(nats) / sum(tokens)
    return {"loss": loss, "ppl": math.exp(loss), "bpb": sum(nats) / (sum(BYTES) * LN2),
            "batch_nats": nats, "batch_bytes": list(BYTES), "batch_tokens": tokens, "batches": dict(META)}


def model(level: float, noise: float = 0.004, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [level + h + rng.gauss(0.0, noise) for h in HARDNESS]


def wobble(per_batch: list[float], shift: float, amplitude: float) -> list[float]:
    return [x + shift + (amplitude if i % 2 else -amplitude) for i, x in enumerate(per_batch)]


def evaluation(union: list[float], seed: int) -> dict:
    return {"batches": dict(META), "union_parts": UNION_PARTS,
            "parts": {"1": score(model(1.3, seed=seed + 1)), "2": score(model(1.6, seed=seed + 2))},
            "union": score(union)}


TRUNK_TOKENS, BRANCH_TOKENS = (3000, 2000), (500, 700)


def chain(schedule: str, unions: list[list[float]], folder: str = "stages", seed: int = 0,
          seed_offset: int = 0) -> list[dict]:
    """Two stages (s1: part 1, 12 iters; s2: parts 1-2, 11 iters); a wsd stage has a 2-iteration branch."""
    stages = []
    for k, (name, parts, start, end) in enumerate([("s1", ["1"], 0, 12), ("s2", ["1", "2"], 12, 23)]):
        entry = {"name": name, "signature": f"sig-{name}" + (f"-seed{seed_offset}" if seed_offset else ""),
                 "schedule": schedule, "parts": parts, "new_parts": parts[k:], "start_iter": start, "end_iter": end,
                 "learning_rate": 1e-3, "warmup_iters": 0, "replay": "proportional", "run_dir": f"{folder}/{name}",
                 "tokens": TRUNK_TOKENS[k], "seconds": 10.0 + k, "tokens_per_s": 300.0, "mfu": 0.2,
                 "eval": evaluation(unions[k], seed + 10 * k)}
        if seed_offset:
            entry["seed_offset"] = seed_offset
        if schedule == "wsd":
            entry["trunk_dir"], entry["run_dir"] = entry["run_dir"], entry["run_dir"] + "/cooldown"
            entry["branch"] = {"start_iter": end, "end_iter": end + 2, "iters": 2, "min_lr": 1e-4,
                               "cooldown_shape": "1-sqrt", "tokens": BRANCH_TOKENS[k], "seconds": 1.5,
                               "tokens_per_s": BRANCH_TOKENS[k] / 1.5, "mfu": 0.2}
        stages.append(entry)
    return stages


def jump_row(union: list[float], seed_offset: int = 0) -> dict:
    row = {"name": "jump", "signature": "sig-s2-jump" + (f"-seed{seed_offset}" if seed_offset else ""),
           "schedule": "cosine", "parts": ["1", "2"], "start_iter": 0, "end_iter": 23,
           "learning_rate": 1e-3, "replay": "proportional",
           "run_dir": "baseline/jump" + (f"-seed{seed_offset}" if seed_offset else ""),
           "tokens": sum(TRUNK_TOKENS), "seconds": 30.0, "tokens_per_s": 200.0, "mfu": 0.2,
           "eval": evaluation(union, 500 + seed_offset)}
    if seed_offset:
        row["seed_offset"] = seed_offset
    return row


def make(main: str = "cosine", cosine: list[float] | None = None, wsd: list[float] | None = None,
         jump: list[float] | None = None, baseline: bool = True) -> dict:
    """A main chain and the other schedule's chain as a variant (as grow --compare-schedules records them),
    and a jump baseline. cosine/wsd/jump: the per-batch union bpb of each final model."""
    cosine = cosine if cosine is not None else model(1.40, seed=1)
    wsd = wsd if wsd is not None else model(1.35, seed=2)
    jump = jump if jump is not None else model(1.45, seed=3)
    folder = {s: "stages" if s == main else f"variants/{s}" for s in ("cosine", "wsd")}
    chains = {"cosine": chain("cosine", [model(1.5, seed=11), cosine], folder["cosine"]),
              "wsd": chain("wsd", [model(1.48, seed=12), wsd], folder["wsd"])}
    other = "wsd" if main == "cosine" else "cosine"
    return {"title": "compare", "parts": ["1", "2"], "schedule": main, "stages": chains[main],
            "variants": {other: {"schedule": other, "stages": chains[other]}},
            "baseline": jump_row(jump) if baseline else None}


def section(md: str, heading: str) -> str:
    return md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell -> cells of every Markdown table row in text (header rows included)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("| ") or line.startswith("|  |"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            out[cells[0]] = cells
    return out


def pair_text(old: dict, new: dict) -> tuple[stats.PairedDifference, str]:
    """new − old on the union, as the report prints it (3 decimals for these intervals)."""
    pair = stats.paired_difference(old["eval"]["union"], new["eval"]["union"], "bpb", META, META)
    assert pair.has_interval and 0.001 <= pair.half_width < 0.01  # so that 3 decimals are what the report shows
    value = f"{abs(pair.diff):.3f}"
    sign = "" if float(value) == 0 else "+" if pair.diff > 0 else MINUS  # no sign on a rounded 0
    return pair, f"{sign}{value} {PM} {pair.half_width:.3f}"


SCHEDULES = "Schedules: grow-cosine vs grow-WSD vs jump"


# --------------------------------------------------------------------------------------------------
# The three-way comparison


@pytest.mark.parametrize("main", ["cosine", "wsd"])
def test_three_way_rows_and_clear_verdicts(main):
    res = make(main, jump=model(1.38, seed=3))  # WSD 1.35 < jump 1.38 < cosine 1.40, each well beyond noise
    md = render_markdown(res)
    rows = table_rows(section(md, SCHEDULES))
    labels = [k for k in rows if k.startswith(("grow-cosine (", "grow-WSD (", "jump ("))]
    assert [k.split(" (")[0] for k in labels] == ["grow-cosine", "grow-WSD", "jump"]
    assert rows[f"grow-{'cosine' if main == 'cosine' else 'WSD'} (main chain)"]
    chains = {"cosine": res["stages"] if main == "cosine" else res["variants"]["cosine"]["stages"],
              "wsd": res["stages"] if main == "wsd" else res["variants"]["wsd"]["stages"]}
    cos, wsd, jump = chains["cosine"][-1], chains["wsd"][-1], res["baseline"]
    assert rows[[k for k in labels if k.startswith("grow-WSD")][0]][1] == f"{wsd['eval']['union']['bpb']:.3f}"
    # Each pairwise difference: exactly the paired interval of the two final models, and its verdict.
    for label, old, new, words in [(f"grow-WSD {MINUS} grow-cosine", cos, wsd, "grow-WSD better"),
                                   (f"grow-WSD {MINUS} jump", jump, wsd, "grow-WSD better"),
                                   (f"grow-cosine {MINUS} jump", jump, cos, "grow-cosine worse")]:
        _, text = pair_text(old, new)
        assert rows[label][1:] == [text, words]
    assert EVAL_NOISE in section(md, SCHEDULES)
    html = render_html(res, png=b"")
    assert f"<h2>{SCHEDULES}</h2>" in html and "grow-WSD better" in html


def test_identical_and_noisy_equal_scores_give_no_difference_detectable():
    cos = model(1.40, seed=1)
    res = make(cosine=cos, wsd=list(cos), jump=wobble(cos, 0.0, 0.01))
    rows = table_rows(section(render_markdown(res), SCHEDULES))
    assert rows[f"grow-WSD {MINUS} grow-cosine"][1:] == [
        f"0.000 {PM} 0.000", "no difference detectable with 20 val batches (the same on every batch)"]
    pair, text = pair_text(res["baseline"], res["stages"][-1])
    assert not pair.excludes_zero
    assert rows[f"grow-cosine {MINUS} jump"][1:] == [
        text, f"no difference detectable with 20 val batches \u2014 raise `[eval] batches` to tighten it "
              f"({PM}{pair.half_width:.3f} now)"]
    assert "better" not in rows[f"grow-cosine {MINUS} jump"][2] and "worse" not in rows[f"grow-WSD {MINUS} jump"][2]
    assert "<code>[eval] batches</code>" in render_html(res, png=b"")


def test_two_of_three_and_no_variants():
    res = make(baseline=False)
    md = render_markdown(res)
    rows = table_rows(section(md, SCHEDULES))
    assert f"grow-WSD {MINUS} grow-cosine" in rows and not any("jump" in k for k in rows)
    lines = schedule_comparison_lines(res)
    assert any(f"grow-WSD {MINUS} grow-cosine" in line and "grow-WSD better" in line for line in lines)
    # An older grow.json: no variants, no repeats, no schedule: no new sections, no console lines.
    old = make()
    for key in ("variants", "schedule"):
        old.pop(key)
    for entry in old["stages"] + [old["baseline"]]:
        entry.pop("schedule")
    md = render_markdown(old)
    assert f"## {SCHEDULES}" not in md and "## Seed spread" not in md
    assert schedule_comparison_lines(old) == []
    assert "grow-WSD" not in console_summary(old)


def test_tokens_lineage_and_totals_include_branches():
    res = make("wsd")
    md = render_markdown(res)
    lineage = sum(TRUNK_TOKENS) + BRANCH_TOKENS[-1]
    total = sum(TRUNK_TOKENS) + sum(BRANCH_TOKENS)
    seconds = sum(s["seconds"] + s["branch"]["seconds"] for s in res["stages"])
    rows = table_rows(section(md, SCHEDULES))
    wsd = rows["grow-WSD (main chain)"]
    assert wsd[3:] == [f"{lineage / 1000:.2f} k", f"{total / 1000:.2f} k", f"{seconds:.1f} s"]
    cos = rows["grow-cosine (variant: --compare-schedules)"]
    assert cos[3:5] == [f"{sum(TRUNK_TOKENS) / 1000:.2f} k"] * 2
    text = section(md, SCHEDULES)
    assert "Jump and grow-cosine trained on equal tokens" in text
    assert f"+{BRANCH_TOKENS[-1] / sum(TRUNK_TOKENS) * 100:.1f} % of the trunk" in text
    # The cost table: trunk and branch rows, the total with the branches counted in.
    cost = table_rows(section(md, "Stages"))
    assert cost["s2 (wsd trunk)"][3:5] == ["12 \u2192 23", f"{TRUNK_TOKENS[1] / 1000:.2f} k"]
    assert cost["s2 cooldown branch"][3:5] == ["23 \u2192 25", f"{BRANCH_TOKENS[1]}"]
    assert cost["grow total (branches included)"][3:6] == ["23 + 4 (branches)", f"{total / 1000:.2f} k",
                                                          f"{seconds:.1f} s"]
    assert "Tokens and time of branches are counted separately and in the totals." in section(md, "Stages")
    assert "The grow-cosine chain" in section(md, "Stages")
    # grow vs jump counts what growing spent: branches included.
    assert table_rows(section(md, "Grow vs jump"))["grow (last stage s2)"][3] == f"{total / 1000:.2f} k"


def test_per_stage_rows_pair_each_stage():
    res = make()
    text = section(render_markdown(res), SCHEDULES).split("Stage by stage", 1)[1]
    rows = table_rows(text)
    for k, name in enumerate(["s1", "s2"]):
        _, pm = pair_text(res["stages"][k], res["variants"]["wsd"]["stages"][k])
        assert rows[name][3] == pm


# --------------------------------------------------------------------------------------------------
# Seeds


def with_jump_repeats(res: dict, shifts: list[float]) -> dict:
    res["baseline"]["repeats"] = [jump_row(model(1.45 + s, seed=30 + n), n) for n, s in enumerate(shifts, 1)]
    return res


def with_grow_repeats(res: dict, shifts: list[float]) -> dict:
    res["repeats"] = [{"seed_offset": n, "stages": chain(res["schedule"], [model(1.5, seed=40 + n),
                                                                          model(1.40 + s, seed=50 + n)],
                                                          f"repeats/seed{n}", seed_offset=n)}
                      for n, s in enumerate(shifts, 1)]
    return res


def test_jump_seed_spread_matches_a_hand_computation():
    res = with_jump_repeats(make(), [0.01, -0.02, 0.015])
    values = [r["eval"]["union"]["bpb"] for r in [res["baseline"], *res["baseline"]["repeats"]]]
    spread = seed_spread(res)
    assert spread.jump.k == 4 and spread.jump.sd == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert spread.jump.mean == pytest.approx(statistics.mean(values), rel=1e-12) and not spread.has_interval
    md = render_markdown(res)
    rows = table_rows(section(md, "Seed spread"))
    assert rows["jump"][1:] == ["4", f"{statistics.mean(values):.3f}", f"{statistics.stdev(values):.3f}",
                                f"{min(values):.3f} \u2013 {max(values):.3f}"]
    # Without repeated chains: the 2·√2·SD rule, in the section and in grow vs jump.
    threshold = f"2\u00b7\u221a2\u00b7SD = {2 * math.sqrt(2) * statistics.stdev(values):.3f}"
    assert threshold in section(md, "Seed spread") and threshold in grow_vs_jump(res)
    assert "within seed-to-seed noise" in grow_vs_jump(res)
    assert any("seed-to-seed noise" in line for line in schedule_comparison_lines(res))


def test_grow_repeats_give_a_t_interval_over_seeds():
    # Seed 0 alone says growing is clearly better (−0.05 beyond evaluation noise), but the other seeds
    # disagree: over 4 seeds no difference is detectable, and that is the verdict.
    res = with_grow_repeats(with_jump_repeats(make(), [0.0, 0.0, 0.0]), [0.11, 0.0, 0.12])
    single = stats.paired_difference(res["baseline"]["eval"]["union"], res["stages"][-1]["eval"]["union"],
                                     "bpb", META, META)
    assert single.fell
    jumps = [r["eval"]["union"]["bpb"] for r in [res["baseline"], *res["baseline"]["repeats"]]]
    grows = [res["stages"][-1]["eval"]["union"]["bpb"]] + [r["stages"][-1]["eval"]["union"]["bpb"]
                                                           for r in res["repeats"]]
    diffs = [g - j for g, j in zip(grows, jumps)]
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = T_975_3 * sd / math.sqrt(4)
    spread = seed_spread(res)
    assert [d for _, d in spread.diffs] == pytest.approx(diffs, rel=1e-12)
    assert spread.mean_diff == pytest.approx(mean, rel=1e-12) and spread.half_width == pytest.approx(half, rel=1e-9)
    assert abs(mean) < half  # the interval includes 0
    interval = (f"over 4 seeds: grow {MINUS} jump = {'+' if mean > 0 else MINUS}{abs(mean):.3f} {PM} {half:.3f} "
                f"({SEED_NOISE})")
    sentence = grow_vs_jump(res)
    assert interval in sentence and "no difference detectable over 4 seeds" in sentence
    assert "growing is better" not in sentence and "jumping is better" not in sentence
    assert "no difference detectable over 4 seeds" in console_summary(res)
    md = render_markdown(res)
    assert interval in section(md, "Seed spread")
    assert table_rows(section(md, "Seed spread"))["+2"][3] == f"{MINUS if diffs[2] < 0 else '+'}{abs(diffs[2]):.3f}"
    assert any(interval in line for line in schedule_comparison_lines(res))
    # Consistent seeds: growing is better over seeds too.
    res = with_grow_repeats(with_jump_repeats(make(), [0.0, 0.01, -0.01]), [-0.003, 0.008, -0.012])
    assert seed_spread(res).grow_better
    assert "over 4 seeds: grow \u2212 jump = \u2212" in grow_vs_jump(res)
    assert ": growing is better by " in grow_vs_jump(res)


def test_unfinished_or_stale_repeats_are_left_out():
    res = with_grow_repeats(with_jump_repeats(make(), [0.0, 0.0]), [0.01, 0.02])
    res["repeats"][0]["stages"] = res["repeats"][0]["stages"][:1]           # still under way
    res["repeats"][1]["stages"][-1]["signature"] = "another-plan-seed2"     # trained for another plan
    spread = seed_spread(res)
    assert [n for n, _ in spread.grow.values] == [0] and not spread.has_interval


# --------------------------------------------------------------------------------------------------
# Loss curves of wsd stages


def write_metrics(folder: Path, first: int, last: int, loss: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"kind": "train", "iter": it, "loss": loss - it / 100, "lr": 1e-3, "ms_per_iter": 10.0,
                "tokens_per_s": 100.0, "mfu": 0.1} for it in range(first, last)]
    records.append({"kind": "eval", "iter": last, "train_loss": loss, "val_loss": loss - last / 100, "lr": 1e-3})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_curves_draw_trunks_and_branches(tmp_path):
    res = make("wsd")
    for stage in res["stages"]:
        write_metrics(tmp_path / stage["trunk_dir"], stage["start_iter"], stage["end_iter"], 6.0)
        write_metrics(tmp_path / stage["run_dir"], stage["branch"]["start_iter"], stage["branch"]["end_iter"], 5.5)
    for stage in res["variants"]["cosine"]["stages"]:
        write_metrics(tmp_path / stage["run_dir"], stage["start_iter"], stage["end_iter"], 6.2)
    series = loss_series(res, tmp_path)
    labels = {s.label for s in series}
    assert {"grow-WSD trunk: train loss", "grow-WSD trunk: val loss", "grow-WSD cooldown branches: train loss",
            "grow-WSD cooldown branches: val loss", "grow-cosine: train loss"} <= labels
    branches = [s for s in series if s.label == "grow-WSD cooldown branches: train loss"]
    assert len(branches) == 2
    for stage, line in zip(res["stages"], branches):
        its = [i for i, _ in line.points]
        # The branch's own iterations, drawn from the trunk's last point it branches off.
        assert its == [stage["end_iter"] - 1, *range(stage["branch"]["start_iter"], stage["branch"]["end_iter"])]
        assert line.points[1][1] == pytest.approx(5.5 - stage["branch"]["start_iter"] / 100)
    branch_colors = {s.color for s in series if "cooldown" in s.label}
    assert branch_colors.isdisjoint({s.color for s in series if "trunk" in s.label})
    assert plot_loss_curves(res, tmp_path)[:8] == b"\x89PNG\r\n\x1a\n"
    # Missing or unreadable metrics draw nothing and break nothing.
    (tmp_path / res["stages"][0]["run_dir"] / "metrics.jsonl").unlink()
    (tmp_path / res["stages"][0]["run_dir"] / "metrics.jsonl").mkdir()
    broken = copy.deepcopy(res)
    broken["stages"][1]["trunk_dir"] = None
    series = loss_series(broken, tmp_path)
    assert len([s for s in series if s.label == "grow-WSD cooldown branches: train loss"]) == 1
    assert plot_loss_curves(broken, tmp_path)[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------------
# One real grow run: a wsd chain


@pytest.fixture(scope="module")
def wsd_run(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    from growgpt.grow import grow

    from conftest import PLAN, write_plan

    root = tmp_path_factory.mktemp("wsd")
    plan = write_plan(root, PLAN.replace("warmup_iters = 4\n", "").replace("[train]\n", '[train]\nschedule = "wsd"\n'))
    grow(plan, root / "work", progress=False, verbose=False)
    return root / "work" / "run"


def test_real_wsd_run_reports_branches(wsd_run):
    results = load_results(wsd_run)
    assert results["schedule"] == "wsd" and all(s.get("branch") for s in results["stages"])
    md = (wsd_run / "report.md").read_text(encoding="utf-8")
    cost = table_rows(section(md, "Stages"))
    for stage in results["stages"]:
        b = stage["branch"]
        assert cost[f"{stage['name']} cooldown branch"][3] == f"{b['start_iter']} \u2192 {b['end_iter']}"
    total = sum(s["tokens"] + s["branch"]["tokens"] for s in results["stages"])
    assert cost["grow total (branches included)"][4] == f"{total / 1000:.2f} k"
    series = loss_series(results, wsd_run)
    for stage in results["stages"]:
        b = stage["branch"]
        line = [s for s in series if s.label == "grow-WSD cooldown branches: val loss"
                and s.points[-1][0] == b["end_iter"]]
        assert line and all(i <= b["end_iter"] for i, _ in line[0].points)
    assert schedule_comparison_lines(results) == [] and f"## {SCHEDULES}" not in md
    paths = write_report(wsd_run)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
