"""The built-in demo end to end (shortened), and `estimate`'s disk figure against what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from growgpt.errors import UserError

SHARED_COPY = (Path(__file__).resolve().parents[2] / "shared" / "data" / "wikidumps" / "gensim"
               / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")


def _dump() -> Path:
    from growgpt.demo import gensim_dump

    try:
        return gensim_dump()
    except UserError:
        if SHARED_COPY.is_file():
            return SHARED_COPY
        pytest.skip("the demo corpus needs gensim (pip install -e '.[demo]') or ../shared/data/wikidumps")


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_demo_end_to_end_and_disk_estimate(tmp_path):
    from growgpt.demo import run_demo, split_dump, summary_lines
    from growgpt.plan_estimate import estimate_plan

    dump = _dump()
    results = run_demo(tmp_path / "demo", dump=dump, iters=21, baseline=False, progress=False, verbose=False)
    assert [s["name"] for s in results["stages"]] == ["part1", "parts1-3"]
    assert results["parts"] == ["1", "2", "3"]
    for stage in results["stages"]:
        assert sorted(stage["eval"]["parts"]) == ["1", "2", "3"]
    first, second = results["stages"]
    # The tiny model learns: the second stage beats the first on the union of the three parts.
    assert second["eval"]["union"]["loss"] < first["eval"]["union"]["loss"] < 10.9
    run = tmp_path / "demo" / "run"
    assert (run / "report.md").is_file() and (run / "report.html").is_file()
    # Three page-id-range parts that together hold every page of the dump.
    parts = sorted((tmp_path / "demo" / "raw").glob("demo-pages-articles*.bz2"))
    assert len(parts) == 3 and split_dump(dump, tmp_path / "demo" / "raw") == sorted(
        parts, key=lambda p: int(p.name.split("articles")[1].split(".")[0]))

    # the demo's WSD chain too (run/variants/wsd: a trunk and a branch checkpoint per stage)
    assert [s["name"] for s in results["variants"]["wsd"]["stages"]] == ["part1", "parts1-3"]
    assert any(line.startswith("grow-WSD") or "grow-WSD" in line for line in summary_lines(results))
    estimate = estimate_plan(tmp_path / "demo" / "demo-plan.toml", tmp_path / "demo", probe=False,
                             compare_schedules=True)
    written = sum(_bytes(tmp_path / "demo" / d) for d in ("text", "tokens", "run"))
    assert abs(estimate["disk_total"] - written) / written < 0.25, (estimate["disk_total"], written)
    stage_text = sum(s["disk"]["extracted"] for s in estimate["stages"])
    assert abs(stage_text - _bytes(tmp_path / "demo" / "text")) / _bytes(tmp_path / "demo" / "text") < 0.25


def test_demo_without_a_corpus_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    from growgpt.demo import run_demo

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install 'growgpt\[demo\]'.*--dump"):
        run_demo(tmp_path, progress=False, verbose=False)
    with pytest.raises(UserError, match="dump file not found"):
        run_demo(tmp_path, dump=tmp_path / "nope.bz2", progress=False, verbose=False)
