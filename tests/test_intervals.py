"""Paired 95 % intervals (growgpt.stats) and the verdicts that follow them (report, console, demo).

Every score here is synthetic: per-batch nats and bytes built from a known per-batch bpb, shaped like
growgpt.evaluate's output ({loss, ppl, bpb, batch_nats, batch_bytes, batch_tokens, batches}). Nothing
trains, so the file runs in seconds.
"""

from __future__ import annotations

import bz2
import copy
import json
import math
import random
import statistics
from types import SimpleNamespace

import numpy as np
import pytest

from growgpt import stats
from growgpt.report import (
    console_matrix,
    console_summary,
    grow_vs_jump,
    render_html,
    render_markdown,
    verdicts,
    write_report,
)
from growgpt.stats import paired_difference, t_quantile

LN2 = math.log(2)
N = 20                 # val batches per score
TOKENS = 512           # targets per batch (batch_size 8 × block_size 64)
META = {"count": N, "batch_size": 8, "block_size": 64, "seed": 1234}
BYTES = [random.Random(7).randint(1800, 2300) for _ in range(N)]  # bytes per batch: they vary, as in real text
# How hard each val batch is: shared by every model, so it cancels in a paired difference (and only there).
HARDNESS = [random.Random(8).gauss(0.0, 0.15) for _ in range(N)]
NO_DIFFERENCE = "no difference detectable with 20 val batches \u2014 raise `[eval] batches` to tighten it (\u00b1"
NOISE = "evaluation-sampling noise only (which val windows were scored); not seed-to-seed training noise"


def score(per_batch_bpb: list[float], batch_bytes: list[int] | None = None, meta: dict | None = META) -> dict:
    """A score as growgpt.evaluate records it, for the given per-batch bits per byte."""
    batch_bytes = list(batch_bytes or BYTES[:len(per_batch_bpb)])
    nats = [b * n * LN2 for b, n in zip(per_batch_bpb, batch_bytes)]
    tokens = [TOKENS] * len(nats)
    loss = sum(nats) / sum(tokens)
    out = {"loss": loss, "ppl": math.exp(loss), "bpb": sum(nats) / (sum(batch_bytes) * LN2),
           "bytes_per_token": sum(batch_bytes) / sum(tokens), "batch_nats": nats, "batch_bytes": batch_bytes,
           "batch_tokens": tokens}
    if meta is not None:
        out["batches"] = dict(meta)
    return out


def model(level: float, noise: float = 0.0, seed: int = 0) -> list[float]:
    """Per-batch bpb of a model whose level is `level`, plus its own per-batch noise of sd `noise`."""
    rng = random.Random(seed)
    return [level + h + rng.gauss(0.0, noise) for h in HARDNESS]


def per_batch_bpb(score_: dict) -> list[float]:
    return [n / (b * LN2) for n, b in zip(score_["batch_nats"], score_["batch_bytes"])]


def wobble(per_batch: list[float], shift: float, amplitude: float) -> list[float]:
    """per_batch + shift ± amplitude, alternating: a known shift under a known, deterministic noise."""
    return [x + shift + (amplitude if i % 2 else -amplitude) for i, x in enumerate(per_batch)]


def row(name: str, parts: list[str], levels: dict[str, float], union: float, seed: int,
        noise: float = 0.004) -> dict:
    return {"name": name, "parts": parts, "run_dir": f"stages/{name}", "tokens": 1000, "seconds": 10.0,
            "eval": {"batches": dict(META), "union_parts": ["p1", "p2", "p3"],
                     "parts": {p: score(model(v, noise, seed + k)) for k, (p, v) in enumerate(levels.items())},
                     "union": score(model(union, noise, seed + 99))}}


def results() -> dict:
    """Three stages and a jump baseline, with differences chosen far from the edge of their intervals:

    s2: part 1 rises by ~0.05 bpb (noise 0.004): forgetting beyond noise; the union falls by ~0.1: better.
    s3: part 1 rises by 0.001 under noise ±0.01: within noise; part 2 falls.
    jump vs s3: the union the same under noise ±0.003 (no difference detectable); part 1 lower for
    jump, part 3 lower for grow.
    """
    s2 = row("s2", ["1", "2"], {"1": 1.25, "2": 1.30, "3": 1.69}, 1.40, 20)
    jump = row("jump", ["1", "2", "3"], {"1": 1.20, "2": 1.29, "3": 1.35}, 1.30, 40)
    s3 = row("s3", ["1", "2", "3"], {"1": 1.251, "2": 1.28, "3": 1.30}, 1.30, 30)
    s3["eval"]["parts"]["1"] = score(wobble(per_batch_bpb(s2["eval"]["parts"]["1"]), 0.001, 0.01))
    s3["eval"]["union"] = score(wobble(per_batch_bpb(jump["eval"]["union"]), 0.0, 0.003))
    return {"title": "intervals", "parts": ["1", "2", "3"],
            "stages": [row("s1", ["1"], {"1": 1.20, "2": 1.60, "3": 1.70}, 1.50, 10), s2, s3],
            "baseline": jump}


def _pair(old: dict, new: dict, metric: str = "bpb") -> stats.PairedDifference:
    return paired_difference(old, new, metric, old.get("batches"), new.get("batches"))


# --------------------------------------------------------------------------------------------------
# The t quantile


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (19, 2.093),
                                          (30, 2.042), (120, 1.980), (1000, 1.962), (math.inf, 1.960)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_is_exact_in_closed_form_cases_and_matches_scipy():
    # df 1 is the Cauchy distribution, df 2 has t = (2p − 1) √(2 / (1 − (2p − 1)²)): both exact.
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-12)
    q = 2 * 0.975 - 1
    assert t_quantile(0.975, 2) == pytest.approx(q * math.sqrt(2 / (1 - q * q)), rel=1e-12)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959963984540054, rel=1e-14)
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 40), 99, 299, 300, 301, 500, 2000, 9999]:
        for p in (0.6, 0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-9), (df, p)


def test_t_quantile_refuses_nonsense():
    for p, df in ((0.975, 0), (0.975, 2.5), (0.4, 10), (1.0, 10)):
        with pytest.raises(ValueError):
            t_quantile(p, df)


# --------------------------------------------------------------------------------------------------
# The paired difference


@pytest.mark.parametrize("metric", ["bpb", "loss"])
def test_identical_models_give_exactly_zero_plus_minus_zero(metric):
    a = score(model(1.3, 0.02, 1))
    pair = _pair(a, copy.deepcopy(a), metric)
    assert pair.status == stats.PAIRED and pair.batches == N
    assert pair.diff == 0.0 and pair.half_width == 0.0 and not pair.excludes_zero


def test_a_constant_shift_is_exactly_the_shift_with_zero_width():
    # Dyadic nats: every per-batch loss difference is exactly 0.25, with no rounding anywhere.
    old = {"batch_nats": [1024.0 + 8.125 * i for i in range(N)], "batch_tokens": [TOKENS] * N, "batches": META}
    new = {**old, "batch_nats": [n + 0.25 * TOKENS for n in old["batch_nats"]]}
    pair = _pair(old, new, "loss")
    assert (pair.diff, pair.half_width) == (0.25, 0.0) and pair.rose
    assert _pair(new, old, "loss").diff == -0.25 and _pair(new, old, "loss").fell
    # The same in bits per byte: a shift of 0.04 bpb on every batch, whatever its bytes.
    a = score(model(1.3, 0.02, 1))
    b = score([x + 0.04 for x in model(1.3, 0.02, 1)])
    pair = _pair(a, b)
    assert pair.diff == pytest.approx(0.04, abs=1e-12) and pair.half_width < 1e-12 and pair.rose


def test_noisy_shift_interval_contains_the_truth_and_matches_a_hand_computation():
    # Every batch the same bytes: the interval is the textbook paired t of the per-batch differences.
    shift, n = 0.03, N
    same_bytes = [2048] * n
    old_bpb = model(1.3, 0.02, 1)
    noise = random.Random(5)
    new_bpb = [x + shift + noise.gauss(0.0, 0.01) for x in old_bpb]
    pair = _pair(score(old_bpb, same_bytes), score(new_bpb, same_bytes))
    d = [b - a for a, b in zip(old_bpb, new_bpb)]
    standard_error = statistics.stdev(d) / math.sqrt(n)
    assert pair.diff == pytest.approx(statistics.fmean(d), rel=1e-9)
    assert pair.half_width == pytest.approx(2.093024 * standard_error, rel=1e-6)  # t(0.975, 19) = 2.093
    assert pair.low < shift < pair.high and pair.rose
    # Five batches: t(0.975, 4) = 2.776.
    pair5 = _pair(score(old_bpb[:5], same_bytes[:5], {**META, "count": 5}),
                  score(new_bpb[:5], same_bytes[:5], {**META, "count": 5}))
    assert pair5.half_width == pytest.approx(2.776445 * statistics.stdev(d[:5]) / math.sqrt(5), rel=1e-6)


def test_with_varying_bytes_the_estimate_is_the_matrix_difference_and_the_width_the_delta_method():
    old, new = score(model(1.3, 0.02, 1)), score(model(1.33, 0.02, 2))
    pair = _pair(old, new)
    # The point estimate is the difference of the two bpb figures (ratios of sums) the matrix shows.
    assert pair.diff == pytest.approx(new["bpb"] - old["bpb"], abs=1e-13)
    # The width by hand: residuals of the ratio estimator, their standard error, t(0.975, N − 1).
    deltas = np.array(new["batch_nats"]) - np.array(old["batch_nats"])
    weights = np.array(BYTES, dtype=float) * LN2
    estimate = deltas.sum() / weights.sum()
    residuals = deltas - estimate * weights
    standard_error = residuals.std(ddof=1) / math.sqrt(N) / weights.mean()
    assert pair.half_width == pytest.approx(2.093024 * standard_error, rel=1e-6)
    # The loss of the same scores: every batch has TOKENS targets, so it is the plain paired t.
    loss_pair = _pair(old, new, "loss")
    d = [(b - a) / TOKENS for a, b in zip(old["batch_nats"], new["batch_nats"])]
    assert loss_pair.diff == pytest.approx(new["loss"] - old["loss"], abs=1e-12)
    assert loss_pair.half_width == pytest.approx(2.093024 * statistics.stdev(d) / math.sqrt(N), rel=1e-6)


def test_the_interval_covers_the_true_shift_about_95_percent_of_the_time():
    rng = random.Random(11)
    covered, trials, n, shift = 0, 2000, 10, 0.01
    for _ in range(trials):
        batch_bytes = [rng.randint(500, 4000) for _ in range(n)]
        old_bpb = [1.3 + rng.gauss(0, 0.2) for _ in range(n)]
        new_bpb = [x + shift + rng.gauss(0, 0.02) for x in old_bpb]
        meta = {**META, "count": n}
        pair = _pair(score(old_bpb, batch_bytes, meta), score(new_bpb, batch_bytes, meta))
        covered += pair.low <= shift <= pair.high
    assert 0.93 <= covered / trials <= 0.97


def test_scores_on_different_batches_are_not_paired():
    a, b = score(model(1.3, 0.02, 1)), score(model(1.31, 0.02, 2))
    assert _pair(a, b).status == stats.PAIRED
    for key, value in (("seed", 99), ("count", 21), ("batch_size", 4), ("block_size", 128)):
        other = {**b, "batches": {**META, key: value}}
        assert _pair(a, other).status == stats.DIFFERENT_BATCHES, key
    # No metadata, but the lists give it away: another length, other bytes or tokens per batch.
    bare_a, bare_b = {**a, "batches": None}, {**b, "batches": None}
    assert _pair(bare_a, bare_b).status == stats.PAIRED
    shorter = score(model(1.31, 0.02, 2)[:19], meta=None)
    assert _pair(bare_a, shorter).status == stats.DIFFERENT_BATCHES
    other_bytes = score(model(1.31, 0.02, 2), [x + 1 for x in BYTES], meta=None)
    assert _pair(bare_a, other_bytes).status == stats.DIFFERENT_BATCHES
    assert _pair(bare_a, {**bare_b, "batch_tokens": [TOKENS * 2] * N}, "loss").status == stats.DIFFERENT_BATCHES


def test_scores_without_batch_lists_or_with_one_batch_have_no_interval():
    old = {"loss": 4.0, "ppl": 54.6, "bpb": 1.4}  # a grow.json written before evaluation kept the lists
    assert _pair(old, score(model(1.3))).status == stats.NO_BATCH_SUMS
    no_bytes = {**score(model(1.3)), "batch_bytes": None}  # a tokenizer without a byte table
    assert _pair(no_bytes, score(model(1.31))).status == stats.NO_BATCH_SUMS
    assert _pair(no_bytes, score(model(1.31)), "loss").status == stats.PAIRED  # the loss needs no bytes
    one = _pair(score(model(1.3)[:1], meta={**META, "count": 1}), score(model(1.4)[:1], meta={**META, "count": 1}))
    assert one.status == stats.ONE_BATCH and one.diff == pytest.approx(0.1) and one.half_width is None
    assert not one.excludes_zero


# --------------------------------------------------------------------------------------------------
# The report's words and marks


def _f(x: float) -> str:
    return f"{x:.3f}"


def test_verdicts_follow_the_intervals():
    res = results()
    s1, s2, s3 = res["stages"]
    v = verdicts(res)
    union = _pair(s1["eval"]["union"], s2["eval"]["union"])
    part1 = _pair(s1["eval"]["parts"]["1"], s2["eval"]["parts"]["1"])
    assert union.fell and part1.rose
    # The numbers are those of the matrix: old → new as the bpb figures, the difference theirs.
    assert (f"union val bpb {_f(s1['eval']['union']['bpb'])} \u2192 {_f(s2['eval']['union']['bpb'])} "
            f"(\u2212{abs(union.diff) / s1['eval']['union']['bpb'] * 100:.1f} %; "
            f"\u2212{abs(union.diff):.3f} \u00b1 {union.half_width:.3f}): better;") in v[1]
    assert (f"part 1 rose by {part1.diff / s1['eval']['parts']['1']['bpb'] * 100:.1f} % "
            f"({_f(s1['eval']['parts']['1']['bpb'])} \u2192 {_f(s2['eval']['parts']['1']['bpb'])}; "
            f"+{part1.diff:.3f} \u00b1 {part1.half_width:.3f}): mild forgetting.") in v[1]
    # s3: part 1 rose a little, within noise; part 2 fell: no forgetting, and the way to tighten it.
    noisy = _pair(s2["eval"]["parts"]["1"], s3["eval"]["parts"]["1"])
    assert noisy.diff > 0 and not noisy.excludes_zero
    assert "forgetting" not in v[2] and "within noise: " + NO_DIFFERENCE in v[2]
    assert v[2].endswith(f"(\u00b1{noisy.half_width:.3f} now).")
    # A union that rises beyond noise is "worse".
    res["stages"][2]["eval"]["union"] = score(model(1.45, 0.002, 5))
    assert "): worse;" in verdicts(res)[2]


def test_identical_stages_give_no_difference_detectable():
    res = results()
    res["stages"][2] = copy.deepcopy(res["stages"][1]) | {"name": "s3"}
    v = verdicts(res)[2]
    assert "(+0.0 %; 0.000 \u00b1 0.000): no difference detectable with 20 val batches (the same on every batch)" in v
    assert "earlier parts 1\u20132 did not change: no forgetting." in v


def test_matrix_marks_forgetting_only_beyond_noise():
    res = results()
    md, html = render_markdown(res), render_html(res, png=b"")
    bpb = md.split("## Val bits per byte", 1)[1].split("## Val loss", 1)[0]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in bpb.splitlines() if line.startswith("| s")}
    assert "\u25b2 +" in rows["s2"][1]                                 # part 1 in s2: beyond noise
    assert "\u25b3 +" in rows["s3"][1] and "\u25b2" not in rows["s3"][1]  # part 1 in s3: within noise
    assert "\u25b2" not in rows["s3"][2] and "\u25b3" not in rows["s3"][2]  # part 2 fell: no mark
    assert "\u25b3 +x %: it rose within noise" in bpb and NOISE in bpb
    assert "95 % paired t-interval over 20 val batches" in bpb
    assert '<span class="noise-mark">\u25b3' in html and '<span class="rise-mark">\u25b2' in html
    assert html.count('<td class="rise">') == 2  # part 1 in s2, in the bpb and the loss matrix


def test_grow_vs_jump_words_follow_the_interval():
    res = results()
    sentence = grow_vs_jump(res)
    assert sentence.startswith("Growing ended at a union val bpb of ") and NO_DIFFERENCE in sentence
    md = render_markdown(res)
    table = md.split("Part by part", 1)[1].split("## Verdict", 1)[0]
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert lines["part 1"].endswith("| jumping better |") and lines["part 3"].endswith("| growing better |")
    assert lines["union"].endswith("| no difference detectable |")
    grow_minus_jump = _pair(res["baseline"]["eval"]["parts"]["1"], res["stages"][-1]["eval"]["parts"]["1"])
    assert f"| +{grow_minus_jump.diff:.3f} \u00b1 {grow_minus_jump.half_width:.3f} |" in lines["part 1"]
    # A jump clearly worse on the union: growing is better, by the difference ± its half-width.
    res["baseline"]["eval"]["union"] = score(model(1.34, 0.002, 3))
    pair = _pair(res["baseline"]["eval"]["union"], res["stages"][-1]["eval"]["union"])
    lower = abs(pair.diff) / res["baseline"]["eval"]["union"]["bpb"] * 100
    assert (f"growing is better by {abs(pair.diff):.3f} \u00b1 {pair.half_width:.3f} ({lower:.1f} % lower bpb), "
            "with growing using") in grow_vs_jump(res)
    res["baseline"]["eval"]["union"] = score(model(1.26, 0.002, 3))
    assert ": jumping is better by " in grow_vs_jump(res)
    # The same model as jump: 0 ± 0, no difference.
    res["baseline"]["eval"] = copy.deepcopy(res["stages"][-1]["eval"])
    assert "no difference detectable with 20 val batches (the same on every batch)" in grow_vs_jump(res)


def test_scores_on_different_batches_are_called_not_comparable():
    res = results()
    res["stages"][2]["eval"]["parts"]["1"]["batches"]["seed"] = 99        # rescored with another seed
    res["stages"][2]["eval"]["union_parts"] = ["p1", "p2"]                 # another union
    res["baseline"]["eval"]["union"]["batches"]["count"] = 40             # jump scored on 40 batches
    v = verdicts(res)[2]
    assert "part 1: not comparable (scored on different batches)" in v
    assert "): not comparable (scored on different batches);" in v        # the union
    assert ": not comparable (scored on different batches), with growing using" in grow_vs_jump(res)
    md = render_markdown(res)
    assert "| union | " in md and "| not comparable (scored on different batches) |" in md


def test_old_results_without_batch_lists_render_with_todays_words(tmp_path):
    res = results()
    for entry in res["stages"] + [res["baseline"]]:
        entry["eval"].pop("batches")
        for ev in [*entry["eval"]["parts"].values(), entry["eval"]["union"]]:
            for key in ("batch_nats", "batch_bytes", "batch_tokens", "batches"):
                ev.pop(key)
    run = tmp_path / "run"
    run.mkdir()
    (run / "grow.json").write_text(json.dumps(res), encoding="utf-8")
    paths = write_report(run)
    md, html = paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    v = verdicts(res)
    assert v[1].endswith(": mild forgetting (no interval: re-run grow to rescore).") and "\u00b1" not in v[1]
    assert "(no interval: re-run grow to rescore), with growing using" in grow_vs_jump(res)
    assert "\u25b3" not in md and "\u25b2 +" in md and "No interval: re-run grow to rescore." in md
    assert "paired t-interval" not in md.split("## Verdict", 1)[1]
    assert "(no interval: re-run grow to rescore)" in html
    s1, s2 = res["stages"][0]["eval"]["parts"]["1"]["bpb"], res["stages"][1]["eval"]["parts"]["1"]["bpb"]
    line = console_summary(res)
    assert "; grow \u2212 jump " in line and " bpb (no interval: re-run grow to rescore); " in line
    assert line.endswith(f"forgetting: part 1 in 's2' +{(s2 - s1) / s1 * 100:.1f} %")
    # One old score among new ones: that comparison alone falls back.
    mixed = results()
    for key in ("batch_nats", "batch_bytes", "batch_tokens"):
        mixed["stages"][2]["eval"]["parts"]["1"].pop(key)
    v = verdicts(mixed)
    assert "\u00b1" in v[1] and v[2].endswith("(no interval: re-run grow to rescore).")


def test_one_val_batch_says_so():
    res = results()
    for entry in res["stages"] + [res["baseline"]]:
        for ev in [*entry["eval"]["parts"].values(), entry["eval"]["union"]]:
            for key in ("batch_nats", "batch_bytes", "batch_tokens"):
                ev[key] = ev[key][:1]
            ev["batches"]["count"] = 1
    assert verdicts(res)[1].endswith("(no interval from 1 val batch: raise `[eval] batches`).")


def test_report_says_how_the_interval_was_made_and_what_noise_it_covers():
    md = render_markdown(results())
    note = md.split("## Verdict", 1)[1]
    assert "95 % paired t-interval over 20 val batches" in note and NOISE in note
    assert "the difference itself is that of the figures in the matrix" in note.lower()
    assert "raise `[eval] batches` to tighten it" in note  # the plan key stays code in Markdown
    assert "<code>[eval] batches</code>" in render_html(results(), png=b"")


# --------------------------------------------------------------------------------------------------
# The console: `growgpt grow`'s last line and the demo's summary


def test_console_summary_and_matrix():
    res = results()
    line = console_summary(res)
    union = res["stages"][-1]["eval"]["union"]
    assert line.startswith(f"after 's3' union val bpb {union['bpb']:.4f} (loss {union['loss']:.4f}); grow \u2212 jump ")
    assert "bpb: no difference detectable with 20 val batches" in line
    part1 = _pair(res["stages"][0]["eval"]["parts"]["1"], res["stages"][1]["eval"]["parts"]["1"])
    assert line.endswith(f"forgetting: part 1 in 's2' +{part1.diff:.3f} \u00b1 {part1.half_width:.3f}")
    lines = console_matrix(res)
    assert lines[0].split() == ["val", "bpb", "part", "1", "part", "2", "part", "3", "union"]
    assert [ln.split()[0] for ln in lines[1:5]] == ["s1", "s2", "s3", "jump"]
    assert "\u25b2" in lines[2] and "\u25b3" in lines[3] and "not seed-to-seed" in lines[-1]


def test_grow_command_prints_bpb_and_verdicts_with_plus_minus(monkeypatch, capsys, tmp_path):
    import growgpt.grow
    from growgpt.cli import main

    monkeypatch.setattr(growgpt.grow, "grow", lambda *args, **kwargs: results())
    main(["grow", str(tmp_path / "plan.toml"), "--workdir", str(tmp_path / "w"), "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("done: 3 stage(s); after 's3' union val bpb ") and "\u00b1" in out
    assert out.endswith(f"; report in {tmp_path / 'w'}/run/report.md")


def test_demo_prints_the_bpb_matrix_and_verdicts(monkeypatch, capsys, tmp_path):
    import growgpt.grow
    from growgpt.demo import run_demo

    pages = "".join(f"<page><title>P{i}</title><ns>0</ns><id>{i}</id><revision><text>text {i}</text>"
                    f"</revision></page>\n" for i in range(10, 16))
    dump = tmp_path / "dump.xml.bz2"
    dump.write_bytes(bz2.compress(f"<mediawiki>\n{pages}</mediawiki>\n".encode()))
    res = results()
    res["stages"][-1]["samples"] = [{"prompt": "The", "text": "The sample text"}]
    monkeypatch.setattr(growgpt.grow, "grow", lambda *args, **kwargs: res)
    run_demo(tmp_path / "demo", dump=dump, progress=False, verbose=True)
    out = capsys.readouterr().out
    assert "val bpb" in out and "\u25b2" in out and "\u25b3" in out
    assert "Stage s2 (added part 2): union val bpb" in out and "\u00b1" in out
    assert "Growing ended at a union val bpb of" in out and "The sample text" in out


# --------------------------------------------------------------------------------------------------
# grow rescoring what cannot be paired


def test_fill_matrix_rescores_scores_without_batch_sums_or_drawn_otherwise(monkeypatch, tmp_path):
    import growgpt.evaluate
    import growgpt.grow as grow_module
    from growgpt.plan import EvalSpec

    plan = SimpleNamespace(eval=EvalSpec(batches=N, batch_size=8, seed=1234), train={"batch_size": 8},
                           all_parts=[1, 2, 3])
    ws = grow_module.Workspace(tmp_path)
    monkeypatch.setattr(grow_module, "prepared_parts", lambda plan, ws, sources: {1: ["p1"], 2: ["p2"], 3: ["p3"]})
    calls = []

    def fake_evaluate(checkpoint, corpus, parts, unions, batches, batch_size, seed, device):
        calls.append((str(checkpoint), sorted(parts), sorted(unions)))
        meta = {"count": batches, "batch_size": batch_size, "block_size": 64, "seed": seed}
        out = {"parts": {p: score(model(1.3), meta=None) for p in parts}, "batches": meta}
        out.update({u: score(model(1.3), meta=None) for u in unions})
        return out

    monkeypatch.setattr(growgpt.evaluate, "evaluate_parts", fake_evaluate)
    res = results()
    s1, s2, s3 = res["stages"]
    del s1["eval"]["parts"]["2"]["batch_nats"]          # an older score: no per-batch sums
    s2["eval"]["parts"]["3"]["batches"]["count"] = 10    # drawn before [eval] batches was raised to 20
    s3["eval"]["union"]["batches"]["seed"] = 1           # drawn with another seed
    grow_module.fill_matrix(plan, ws, None, res, "cpu")
    assert calls == [(str(ws.run / "stages/s1/ckpt.pt"), ["2"], []),
                     (str(ws.run / "stages/s2/ckpt.pt"), ["3"], []),
                     (str(ws.run / "stages/s3/ckpt.pt"), [], ["union"])]
    # Each rescored score says how it was drawn; the pairs are whole again.
    assert s1["eval"]["parts"]["2"]["batches"] == META
    assert all(_pair(a["eval"]["parts"][p], b["eval"]["parts"][p]).has_interval
               for a, b in ((s1, s2), (s2, s3)) for p in ("1", "2", "3"))
    calls.clear()
    grow_module.fill_matrix(plan, ws, None, res, "cpu")
    assert calls == []  # everything is current: nothing is scored twice
