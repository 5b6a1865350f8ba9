"""The grow report: the stage × part matrix, forgetting markers, verdicts, the plot and the HTML page."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from growgpt.errors import UserError
from growgpt.report import compact_parts, load_results, verdicts, write_report

PARTS = ["1", "2", "3", "4"]


def _ev(losses: dict[str, float], union: float, stage_union: float) -> dict:
    return {"parts": {p: {"loss": v, "ppl": math.exp(v)} for p, v in losses.items()},
            "union": {"loss": union, "ppl": math.exp(union)},
            "stage_union": {"loss": stage_union, "ppl": math.exp(stage_union)}}


def _stage(name, parts, new, start, end, losses, union, samples=None, mfu=0.31):
    return {"name": name, "parts": parts, "new_parts": new, "start_iter": start, "end_iter": end,
            "learning_rate": 6e-4, "warmup_iters": 20, "replay": "proportional",
            "tokens": 1_638_400, "seconds": 61.2, "tokens_per_s": 26771.0, "mfu": mfu,
            "run_dir": f"stages/{name}", "eval": _ev(losses, union, union),
            "samples": samples or [{"prompt": "The history of", "text": f"{name} says hello"}]}


# Part 1 rises in stage a1-3 (3.95 -> 4.04, +2.28 %): mild forgetting; parts 1-3 all fall in a1-4.
# Unseen part 4 rises in a1-3 as well (6.00 -> 6.10): marked ▲, but it is no forgetting.
STAGES = [
    _stage("a1", ["1"], ["1"], 0, 200, {"1": 3.95, "2": 5.50, "3": 5.60, "4": 6.00}, 4.91,
           samples=[{"prompt": "The history of", "text": "a1 <script>alert(1)</script> text"},
                    {"prompt": "In 1990", "text": "x" * 1000}]),
    _stage("a1-3", ["1", "2", "3"], ["2", "3"], 200, 400, {"1": 4.04, "2": 4.20, "3": 4.30, "4": 6.10}, 4.40,
           mfu=None),
    _stage("a1-4", PARTS, ["4"], 400, 600, {"1": 3.90, "2": 4.10, "3": 4.25, "4": 4.50}, 4.20),
]
BASELINE = {"name": "jump", "parts": PARTS, "start_iter": 0, "end_iter": 600, "tokens": 4_915_200,
            "seconds": 150.0, "tokens_per_s": 32768.0, "mfu": 0.35, "run_dir": "baseline/jump",
            "eval": _ev({"1": 4.00, "2": 4.15, "3": 4.30, "4": 4.40}, 4.30, 4.30),
            "samples": [{"prompt": "The history of", "text": "jump text"}]}


def make_run(root: Path, baseline: bool = True, metrics: bool = True) -> Path:
    run = root / "grow"
    results = {"title": "enwiki grow plan", "parts": PARTS, "stages": copy.deepcopy(STAGES),
               "baseline": copy.deepcopy(BASELINE) if baseline else None}
    run.mkdir(parents=True)
    (run / "grow.json").write_text(json.dumps(results), encoding="utf-8")
    if metrics:
        rows = results["stages"] + ([results["baseline"]] if baseline else [])
        for row in rows:
            d = run / row["run_dir"]
            d.mkdir(parents=True)
            lines = []
            for it in range(row["start_iter"], row["end_iter"], 10):
                lines.append({"kind": "train", "iter": it, "loss": 6.0 - it / 200, "lr": 6e-4,
                              "ms_per_iter": 20.0, "tokens_per_s": 1e4, "mfu": 0.3})
                if it % 50 == 0:
                    lines.append({"kind": "eval", "iter": it, "train_loss": 5.9 - it / 200,
                                  "val_loss": 6.1 - it / 200, "train_ppl": 1.0, "val_ppl": 1.0, "lr": 6e-4})
            (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return run


def matrix_rows(md: str) -> tuple[list[str], list[list[str]]]:
    """The header and body rows of the first Markdown table after the matrix heading."""
    section = md.split("## Val loss: stage \u00d7 part", 1)[1].lstrip("\n").splitlines()
    block = []
    for line in section:  # the table: the contiguous lines that start with "|"
        if not line.startswith("|"):
            break
        block.append(line)
    assert set(block[1]) <= set("|-")
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in block]
    return rows[0], rows[2:]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("report"))
    paths = write_report(run)
    return run, paths, paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")


def test_write_report_returns_the_three_files(report):
    run, paths, _, _ = report
    assert set(paths) == {"markdown", "html", "png"}
    assert paths["markdown"] == run / "report.md" and paths["html"] == run / "report.html"
    assert paths["png"] == run / "loss_curves.png"
    assert not list(run.glob("*.tmp-*"))


def test_matrix_has_one_row_per_stage_and_one_column_per_part(report):
    _, _, md, _ = report
    header, rows = matrix_rows(md)
    assert header == ["Stage", "part 1", "part 2", "part 3", "part 4", "union"]
    assert [r[0] for r in rows] == ["a1", "a1-3", "a1-4", "jump (from scratch on the union)"]
    assert all(len(r) == len(header) for r in rows)
    assert rows[0][1].startswith("3.95 (51.9)") and rows[2][5].startswith("4.20 (66.7)")


def test_rise_markers_sit_exactly_where_a_loss_rose(report):
    _, _, md, _ = report
    header, rows = matrix_rows(md)
    marked = {(r[0], header[j]) for r in rows for j, c in enumerate(r) if "\u25b2" in c}
    # part 1 rose 3.95 -> 4.04 and unseen part 4 rose 6.00 -> 6.10 in a1-3; nothing else rose
    assert marked == {("a1-3", "part 1"), ("a1-3", "part 4")}
    assert "\u25b2 +2.3 %" in rows[1][1] and "\u25b2 +1.7 %" in rows[1][4]


def test_unseen_parts_are_marked(report):
    _, _, md, html = report
    header, rows = matrix_rows(md)
    unseen = {(r[0], header[j]) for r in rows for j, c in enumerate(r) if "unseen" in c}
    assert unseen == {("a1", "part 2"), ("a1", "part 3"), ("a1", "part 4"), ("a1-3", "part 4")}
    assert rows[0][2].startswith("_5.50 (")  # italic
    assert html.count('class="unseen"') == 3 and html.count('class="unseen rise"') == 1


NO_INTERVAL = " (no interval: re-run grow to rescore)"  # these scores have no per-batch sums (an older grow.json)


def test_verdicts_give_the_right_numbers():
    results = {"parts": PARTS, "stages": copy.deepcopy(STAGES), "baseline": None}
    v = verdicts(results)
    assert v[0] == "Stage a1 trained part 1 from scratch: union val loss 4.91 (ppl 135.6)."
    assert v[1] == ("Stage a1-3 (added parts 2\u20133): union val loss 4.91 \u2192 4.40 (\u221210.4 %); "
                    f"part 1 rose by 2.3 % (3.95 \u2192 4.04): mild forgetting{NO_INTERVAL}.")
    assert v[2] == ("Stage a1-4 (added part 4): union val loss 4.40 \u2192 4.20 (\u22124.5 %); "
                    f"earlier parts 1\u20133 all fell: no forgetting{NO_INTERVAL}.")
    # a small rise (<= 1 %) is no forgetting; a large one (> 5 %) is plain forgetting
    results["stages"][2]["eval"]["parts"]["2"]["loss"] = 4.22  # 4.20 -> 4.22: +0.5 %
    assert verdicts(results)[2].endswith(f"earlier parts 1\u20133 rose by at most 0.5 %: no forgetting{NO_INTERVAL}.")
    results["stages"][2]["eval"]["parts"]["2"]["loss"] = 4.62  # +10 %
    assert verdicts(results)[2].endswith(f"part 2 rose by 10.0 % (4.20 \u2192 4.62): forgetting{NO_INTERVAL}.")


def test_report_shows_verdicts_and_summary(report):
    _, _, md, html = report
    assert "# enwiki grow plan" in md
    assert "mild forgetting" in md and "Stage a1-3 (added parts 2\u20133)" in md
    assert "Stage a1-3 (added parts 2\u20133)" in html
    # the cost table: MFU missing for a1-3 shows as a dash, iterations as start -> end
    assert "| a1-3 | 1\u20133 | 2\u20133 | 200 \u2192 400 | 1.64 M | 1 min 01 s | 26.77 k | \u2013 |" in md
    assert "31.0 %" in md


def test_png_is_valid(report):
    _, paths, md, _ = report
    data = paths["png"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "](loss_curves.png)" in md


def test_html_is_self_contained_and_escaped(report):
    _, paths, _, html = report
    assert '<img alt="Train and val loss across stages" src="data:image/png;base64,' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "x" * 401 not in html and "x" * 400 in html  # samples are truncated
    assert "<style>" in html and "http" not in html.split("<body>")[1].replace("data:image", "")


def test_markdown_samples_section(report):
    _, _, md, _ = report
    samples = md.split("## Samples", 1)[1].split("## Grow vs jump", 1)[0]
    assert samples.count("### Prompt ") == 2
    assert "```text\na1 <script>alert(1)</script> text\n```" in samples  # literal inside a code block
    assert "**jump**" in samples and "x" * 401 not in samples


def test_baseline_row_and_comparison_only_with_a_baseline(report, tmp_path):
    _, _, md, html = report
    assert "## Grow vs jump" in md and "jump (from scratch on the union)" in md
    sentence = ("Growing ended at a union val loss of 4.20, jumping at 4.30: growing is better by 0.10 "
                f"(2.3 % lower loss){NO_INTERVAL}, with growing using 1.00\u00d7 the tokens (4.92 M vs 4.92 M) and "
                "1.22\u00d7 the time (3 min 04 s vs 2 min 30 s).")
    assert sentence in md and sentence in html

    run = make_run(tmp_path, baseline=False)
    paths = write_report(run)
    md2, html2 = paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    header, rows = matrix_rows(md2)
    assert [r[0] for r in rows] == ["a1", "a1-3", "a1-4"]
    for text in (md2, html2):
        assert "Grow vs jump</h2>" not in text and "## Grow vs jump" not in text
        assert "jump (from scratch on the union)" not in text and "Growing ended at" not in text
    assert "No jump baseline (training from scratch on the union) was run." in md2


def test_missing_metrics_do_not_crash(tmp_path):
    run = make_run(tmp_path, metrics=False)
    paths = write_report(run)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_partial_run_and_no_stages(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "grow.json").write_text(json.dumps({"parts": PARTS, "stages": STAGES[:1], "baseline": None}))
    md = write_report(run)["markdown"].read_text(encoding="utf-8")
    assert "Parts 2\u20134 have not been trained on yet." in md
    (run / "grow.json").write_text(json.dumps({"parts": PARTS, "stages": []}))
    md = write_report(run)["markdown"].read_text(encoding="utf-8")
    assert "No stage has finished yet" in md


def test_missing_grow_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no grow.json .* run `growgpt grow PLAN.toml --workdir ...` first"):
        load_results(tmp_path)
    with pytest.raises(UserError):
        write_report(tmp_path)
    (tmp_path / "grow.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot be read as JSON"):
        load_results(tmp_path)


def test_compact_parts():
    assert compact_parts(["1", "4", "5", "6"]) == "1, 4\u20136"
    assert compact_parts(["2", "3"]) == "2\u20133"
    assert compact_parts(["b", "c", "a"], order=["a", "b", "c", "d"]) == "a\u2013c"
    assert compact_parts(["x", "z"], order=["x", "y", "z"]) == "x, z"
    assert compact_parts([]) == "none"
