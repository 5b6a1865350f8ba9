"""bench/grow_science.py: its --quick run prints every matrix, every variant and both checks, on six small
generated parts (everywhere, CI included) and on the real Greek Wikivoyage parts when ../shared has them;
and the check logic on synthetic numbers."""

from __future__ import annotations

import bz2
import importlib.util
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wikidump import wiki_dump

BENCH = Path(__file__).resolve().parents[1] / "bench" / "grow_science.py"


def _bench():
    spec = importlib.util.spec_from_file_location("grow_science", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gs = _bench()
SHARED_PARTS = all((gs.SPLIT_PARTS / f).is_file() for f in gs.PART_FILES)
GREEK_WORDS = ("πόλη ταξίδι θάλασσα βουνό νησί χωριό μουσείο παραλία λιμάνι αγορά ναός κάστρο δρόμος ποταμός "
               "ελιά κρασί ψάρι ήλιος και στο με από για της του").split()


def write_parts(folder: Path, pages: int = 30, words: int = 150) -> Path:
    """Six small Greek Wikivoyage-like dump parts named as the bench's PART_FILES (~4 KB each)."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    for n, name in enumerate(gs.PART_FILES):
        docs = []
        for i in range(pages):
            pid = 1000 * n + i + 1
            text = "\n\n".join(" ".join(rng.choice(GREEK_WORDS) for _ in range(words // 3)).capitalize() + "."
                               for _ in range(3))
            docs.append((pid, f"Τόπος {pid}", text))
        (folder / name).write_bytes(bz2.compress(wiki_dump(docs, dbname="elwikivoyage", lang="el").encode()))
    return folder


# The generated parts run everywhere; the real ones only where ../shared is (a case, not a skip, so that
# CI, which lacks them, skips nothing).
@pytest.mark.parametrize("corpus", ["generated"] + (["shared"] if SHARED_PARTS else []))
def test_quick_run_prints_matrices_variants_and_checks(tmp_path, corpus):
    env = {**os.environ, "GROWGPT_CACHE_DIR": str(tmp_path / "cache")}
    parts = write_parts(tmp_path / "parts") if corpus == "generated" else gs.SPLIT_PARTS
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--workdir", str(tmp_path / "work"),
                           "--parts", str(parts)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=BENCH.parents[1])
    out = done.stdout
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for v in gs.VARIANTS:
        assert f"{v.label}: val bits per byte, stage x part" in out
        assert out.count(v.label) >= 5  # matrix, pairing, final table, check 1 list, check 2
    header = "".join(f"{'part ' + p:>9}" for p in gs.PARTS) + f"{'union':>9}"
    assert out.count(header) == len(gs.VARIANTS)
    for row in ("stage 1", "stage 2", "stage 3", "jump"):
        assert out.count(f"\n{row:<9}") == len(gs.VARIANTS)
    assert out.count(" valid (") == len(gs.VARIANTS)  # every variant pairs with the one jump
    assert re.search(r"Check 1: best grow variant's final union bpb within 1 % of jump's: (PASS|FAIL)\n", out)
    assert "Check 2: part 1 bpb rises at most 1 % when parts arrive" in out
    check2 = out.split("Check 2:")[1]
    assert sum(check2.count(f"{v.label:<22} {w}") for v in gs.VARIANTS for w in ("PASS", "FAIL")) == len(gs.VARIANTS)
    assert "rerun: python bench/grow_science.py --quick --workdir" in out
    # the corpus was extracted and tokenized once, and shared
    work = tmp_path / "work"
    for key in ("proportional", "replay0", "replay5"):
        assert (work / key / "tokens").is_symlink() and (work / key / "run" / "grow.json").is_file()
    assert not (work / "replay0" / "run" / "baseline").exists()  # the jump is trained once

    # A second run reuses every finished stage: nothing is trained again.
    again = subprocess.run([sys.executable, str(BENCH), "--quick", "--workdir", str(work), "--parts", str(parts),
                            "--verbose"],
                           capture_output=True, text=True, timeout=120, env=env, cwd=BENCH.parents[1])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already done: skipped" in again.stdout and "iter 0:" not in again.stdout

    def figures(text: str) -> str:  # matrices, pairing, the table against jump (recorded times included)
        return text.split("\nreplay 0 %: val bits per byte")[1].split("  (train time:")[0]

    assert figures(again.stdout) == figures(out)


def test_check_close_to_jump():
    jump = 2.0
    c = gs.check_close_to_jump({"a": jump * 1.005, "b": jump * 1.03}, jump)
    assert c["passed"] and c["best"] == "a" and c["within"] == ["a"] and c["rel_pct"] == pytest.approx(0.5)
    c = gs.check_close_to_jump({"a": jump * 1.02, "b": jump * 1.05}, jump)
    assert not c["passed"] and c["best"] == "a" and c["within"] == [] and c["rel_pct"] == pytest.approx(2.0)
    c = gs.check_close_to_jump({"a": jump * 0.97}, jump)  # better than jump passes
    assert c["passed"] and c["rel_pct"] == pytest.approx(-3.0)


def test_check_part1_rise():
    c = gs.check_part1_rise([3.0, 3.0 * 1.005, 3.0 * 0.99])
    assert c["passed"] and c["rises_pct"] == pytest.approx([0.5, -1.0])
    c = gs.check_part1_rise([3.0, 3.0 * 0.99, 3.0 * 1.02])  # a 2 % rise by stage 3 fails
    assert not c["passed"] and c["rises_pct"] == pytest.approx([-1.0, 2.0])
    assert not gs.check_part1_rise([3.0, 3.0 * 1.02, 3.0])["passed"]  # even if it recovers later


def test_plans_list_the_parts_each_variant_trains(tmp_path):
    from growgpt.plan import load_plan

    files = [tmp_path / f for f in gs.PART_FILES]
    for f in files:
        f.write_bytes(b"")  # load_plan only checks that the files exist
    by_key = {v.key: v for v in gs.VARIANTS}
    scale = gs.SCALES["cpu"]
    plans = {k: load_plan(gs.write_plan(tmp_path / f"{k}.toml", scale, by_key[k], files))
             for k in ("replay0", "replay5", "proportional")}
    assert [s.parts for s in plans["replay0"].stages] == [[1], [2, 3], [4, 5, 6]]
    assert [s.parts for s in plans["replay5"].stages] == [[1], [1, 2, 3], [1, 2, 3, 4, 5, 6]]
    assert [s.new_fraction for s in plans["replay5"].stages] == [0.0, 0.95, 0.95]
    assert [(s.replay, s.new_fraction) for s in plans["proportional"].stages] == [("proportional", 0.0)] * 3
    for plan in plans.values():  # the same model, training and evaluation for every variant
        assert plan.all_parts == [1, 2, 3, 4, 5, 6] and [s.iters for s in plan.stages] == list(scale.iters)
        assert (plan.model, plan.train, plan.eval) == (plans["proportional"].model, plans["proportional"].train,
                                                       plans["proportional"].eval)
        assert plan.data.tokenizer == "bytes" and [f[0].name for f in plan.data.files] == gs.PART_FILES
