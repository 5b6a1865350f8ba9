"""grow: stage plans over a corpus that grows in parts, exact continuation, per-part evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from growgpt import checkpoint as ckpt_io
from growgpt.errors import UserError
from growgpt.grow import grow
from growgpt.metrics import read_metrics
from growgpt.plan import load_plan
from growgpt.workspace import Sources, Workspace

# test_cli, test_fuzz and test_report_compare import these from here: the helpers live in conftest.
from conftest import PLAN, write_dump_parts, write_mirror, write_plan


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    root = tmp_path_factory.mktemp("grow")
    plan = write_plan(root)
    results = grow(plan, root / "work", baseline="jump", progress=False, verbose=False)
    return root, plan, results


def _train_records(run_dir: Path) -> list[tuple[int, float, float]]:
    return [(r["iter"], r["loss"], r["lr"]) for r in read_metrics(run_dir) if r["kind"] == "train"]


def test_stage_two_continues_with_its_own_schedule(grown):
    root, plan, results = grown
    s1, s2 = results["stages"]
    assert (s1["start_iter"], s1["end_iter"], s2["start_iter"], s2["end_iter"]) == (0, 12, 12, 23)
    records = _train_records(root / "work" / "run" / "stages" / "s2")
    assert [r[0] for r in records] == list(range(12, 23))
    # Warmup from ~0 to the stage's own learning rate, counted from the stage's first iteration.
    lrs = [r[2] for r in records]
    assert lrs[:4] == pytest.approx([2e-3 * k / 5 for k in (1, 2, 3, 4)])
    assert max(lrs) <= 2e-3 + 1e-12 and lrs[-1] < lrs[4]
    # Stage 1 ended decayed to its min_lr; stage 2 did not inherit that.
    s1_lrs = [r[2] for r in _train_records(root / "work" / "run" / "stages" / "s1")]
    assert s1_lrs[-1] < 4e-4 < lrs[3]


def test_optimizer_state_and_iterations_carry_over(grown):
    root, _, _ = grown
    s2 = ckpt_io.load(root / "work" / "run" / "stages" / "s2" / "ckpt.pt")
    jump = ckpt_io.load(root / "work" / "run" / "baseline" / "jump" / "ckpt.pt")
    steps = {float(v["step"]) for v in s2["optimizer"]["state"].values()}
    assert steps == {23.0}  # AdamW's step count went on from stage 1's 12: its moments were kept
    assert s2["iter_num"] == 23 and jump["iter_num"] == 23
    assert {float(v["step"]) for v in jump["optimizer"]["state"].values()} == {23.0}


def test_every_stage_is_scored_on_every_part(grown):
    root, _, results = grown
    assert results["parts"] == ["1", "2", "3"]
    for entry in results["stages"] + [results["baseline"]]:
        assert sorted(entry["eval"]["parts"]) == ["1", "2", "3"]  # stage 1 too, filled in at the end
        assert len(entry["eval"]["union_parts"]) == 3
        assert all(v["loss"] > 0 and v["ppl"] > 1 for v in entry["eval"]["parts"].values())
        assert entry["samples"][0]["prompt"] == "The"
    assert results["stages"][1]["tokens"] == 11 * 4 * 32 * 2


def test_report_has_the_stage_by_part_matrix(grown):
    root, _, _ = grown
    md = (root / "work" / "run" / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| s1") or line.startswith("| s2")]
    header = next(line for line in md.splitlines() if line.startswith("|") and "union" in line)
    assert len(rows) >= 2 and header.count("part") + header.count("Part") >= 3
    assert (root / "work" / "run" / "report.html").stat().st_size > 1000
    assert (root / "work" / "run" / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_of_a_finished_plan_does_nothing(grown):
    root, plan, results = grown
    work = root / "work"
    watched = [work / "run" / "stages" / "s1" / "ckpt.pt", work / "run" / "stages" / "s2" / "metrics.jsonl",
               *sorted((work / "tokens").rglob("*.bin"))]
    before = {p: p.stat().st_mtime_ns for p in watched}
    again = grow(plan, work, baseline="jump", progress=False, verbose=False)
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert again["stages"] == results["stages"]


def test_crash_mid_stage_two_then_rerun_reaches_the_same_losses(grown, tmp_path, monkeypatch):
    root, _, results = grown
    plan = write_plan(tmp_path)
    import growgpt.train as train_module

    real = train_module.Trainer.train_step

    def crash(self, lr):
        if self.iter_num == 19:  # in stage 2, after its checkpoint at iteration 15 (evaluations every 5)
            raise KeyboardInterrupt
        return real(self, lr)

    monkeypatch.setattr(train_module.Trainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        grow(plan, tmp_path / "work", progress=False, verbose=False)
    assert ckpt_io.load(tmp_path / "work" / "run" / "stages" / "s2" / "ckpt.pt")["iter_num"] == 15
    monkeypatch.setattr(train_module.Trainer, "train_step", real)
    again = grow(plan, tmp_path / "work", progress=False, verbose=False)
    ours = _train_records(tmp_path / "work" / "run" / "stages" / "s2")
    uninterrupted = _train_records(root / "work" / "run" / "stages" / "s2")
    assert [r[:2] for r in ours] == [r[:2] for r in uninterrupted]  # bitwise, step by step
    assert again["stages"][1]["eval"]["parts"] == results["stages"][1]["eval"]["parts"]


def test_adding_parts_leaves_old_token_shards_untouched(tmp_path):
    from growgpt.prepare import prepare_parts
    from growgpt.shards import load_manifest
    from growgpt.wiki.extract import extract

    raw = write_dump_parts(tmp_path / "dumps")
    extract([str(raw[0])], str(tmp_path / "text"), processes=1, progress=False)
    first = prepare_parts(tmp_path / "text", tmp_path / "tokens", progress=False)
    assert [m["skipped"] for m in first] == [False]
    part1 = tmp_path / "tokens" / first[0]["part"]
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in part1.iterdir()}
    val_docs = load_manifest(part1)["splits"]["val"]["documents"]

    extract([str(p) for p in raw], str(tmp_path / "text"), processes=1, progress=False)
    second = prepare_parts(tmp_path / "text", tmp_path / "tokens", progress=False)
    assert [m["skipped"] for m in second] == [True, False, False]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in part1.iterdir()} == snapshot
    assert load_manifest(part1)["splits"]["val"]["documents"] == val_docs

    # A part whose Parquet changed (re-extracted with other options) is redone; the others are not.
    parquet = tmp_path / "text" / (second[1]["part"] + ".parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    pq.write_table(table.slice(0, table.num_rows - 1), parquet)
    third = prepare_parts(tmp_path / "text", tmp_path / "tokens", progress=False)
    assert [m["skipped"] for m in third] == [True, False, True]


@pytest.mark.parametrize("edit, message", [
    (("parts = [1, 2, 3]", "parts = [1, 2, 7]"),
     r"stage 's2' .* names part 7, which the dump does not have \(parts: 1-3\)"),
    (("parts = [1]\n", "parts = []\n"), r"stage 's1' .* has no parts"),
    (('name = "s2"', 'name = "s1"'), r"two stages named 's1'"),
    (("iters = 11\n", "iters = 11\nn_layer = 2\n"), r"sets 'n_layer': the model shape cannot change between stages"),
    (("iters = 11\n", 'iters = 11\ntokenizer = "char"\n'), r"sets 'tokenizer': the tokenizer cannot change"),
    (("batch_size = 4", "batch_sise = 4"), r"unknown key 'batch_sise' in \[train\] .*did you mean 'batch_size'"),
    (("batch_size = 4", "n_layer = 4"), r"unknown key 'n_layer' in \[train\] .*model shape goes in \[model\]"),
    (("iters = 12", "iters = 0"), r"stage 's1' .* has iters = 0"),
])
def test_bad_plans_fail_before_any_work(tmp_path, edit, message):
    plan = write_plan(tmp_path, PLAN.replace(*edit))
    with pytest.raises(UserError, match=message):
        grow(plan, tmp_path / "work", progress=False, verbose=False)
    assert not (tmp_path / "work" / "text").exists()


def test_too_little_disk_is_refused_with_numbers(tmp_path, monkeypatch):
    import growgpt.wiki.dumps as dumps

    plan = write_plan(tmp_path)
    monkeypatch.setattr(dumps, "free_bytes", lambda path: 1000)
    disk = r"not enough disk for stage 's1' on .*: need .* GB .*checkpoints\), free 0.00 GB"
    with pytest.raises(UserError, match=disk):
        grow(plan, tmp_path / "work", progress=False, verbose=False)
    assert not (tmp_path / "work" / "text").exists()


def test_plan_loads_typed_stages(tmp_path):
    plan = load_plan(write_plan(tmp_path, PLAN.replace('warmup_iters = 4', 'warmup_iters = 4\nnew_fraction = 0.5')))
    assert [s.name for s in plan.stages] == ["s1", "s2"] and plan.stages[1].new_fraction == 0.5
    assert plan.all_parts == [1, 2, 3] and plan.stage_signature(0) != plan.stage_signature(1)


def test_grow_fetches_parts_from_a_dump_mirror(tmp_path):
    """wiki/date plans: list the dump on a (local) mirror, fetch only the stage's parts, verify, train."""
    mirror = tmp_path / "mirror"
    raw = write_mirror(mirror)
    one_stage = PLAN.split("[[stage]]")[0] + "[[stage]]" + PLAN.split("[[stage]]")[1]
    body = one_stage.replace("files = {files}", f'wiki = "testwiki"\ndate = "20250101"\nmirror = "{mirror}"')
    plan = tmp_path / "plan.toml"
    plan.write_text(body)
    results = grow(plan, tmp_path / "work", progress=False, verbose=False)
    assert sorted(p.name for p in (tmp_path / "work" / "raw").glob("*.bz2")) == [raw[0].name]  # part 1 only
    assert results["parts"] == ["1"] and results["stages"][0]["eval"]["parts"]["1"]["loss"] > 0


def test_grow_refuses_unverifiable_parts_unless_the_plan_opts_out(tmp_path):
    """require_checksum (default true): a listing with no sha1/md5 for a plan's part stops grow before any
    download or training; require_checksum = false downloads it, unverified."""
    mirror = tmp_path / "mirror"
    raw = write_mirror(mirror, checksums=False)  # sizes, no checksums
    body = PLAN.replace("files = {files}", f'wiki = "testwiki"\ndate = "20250101"\nmirror = "{mirror}"')
    plan = tmp_path / "plan.toml"
    plan.write_text(body)
    with pytest.raises(UserError, match=r"no sha1 or md5 for testwiki-20250101-pages-articles1\.xml.*\(and 2 more\)"
                                         r".*require_checksum = false"):
        grow(plan, tmp_path / "work", progress=False, verbose=False)
    assert not (tmp_path / "work" / "raw").exists() or not any((tmp_path / "work" / "raw").iterdir())

    plan.write_text(body.replace("[data]", "[data]\nrequire_checksum = false"))
    sources = Sources(load_plan(plan), Workspace(tmp_path / "work"))
    (path,) = sources.files(1, progress=False)
    assert path.read_bytes() == raw[0].read_bytes()
