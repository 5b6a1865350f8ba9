"""grow with schedule = "wsd": a constant-LR trunk through the stages, a cooldown branch per stage that
the stage is evaluated and sampled as, the next stage continuing the trunk; exact resume in both; the
other schedule as a second chain (--compare-schedules) and seed repeats (--repeat)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from growgpt import checkpoint as ckpt_io
from growgpt.errors import UserError
from growgpt.grow import grow
from growgpt.metrics import read_metrics

from conftest import PLAN, write_plan

# Stage 2 may not re-warm a wsd trunk; a cooldown of half a stage makes branches long enough to crash in.
WSD_PLAN = PLAN.replace("[train]\n", '[train]\nschedule = "wsd"\ncooldown_fraction = 0.5\ncooldown_shape = "1-sqrt"\n'
                        ).replace("warmup_iters = 4\n", "")


def _records(run_dir: Path) -> list[tuple[int, float, float]]:
    return [(r["iter"], r["loss"], r["lr"]) for r in read_metrics(run_dir) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def wsd_grown(tmp_path_factory):
    root = tmp_path_factory.mktemp("wsd")
    plan = write_plan(root, WSD_PLAN)
    results = grow(plan, root / "work", progress=False, verbose=False, compare_schedules=True)
    return root, plan, results


def test_the_trunk_warms_up_once_then_holds_its_learning_rate(wsd_grown):
    root, _, results = wsd_grown
    run = root / "work" / "run"
    s1, s2 = results["stages"]
    assert results["schedule"] == "wsd" and s1["schedule"] == s2["schedule"] == "wsd"
    trunk1, trunk2 = _records(run / "stages" / "s1"), _records(run / "stages" / "s2")
    assert [r[0] for r in trunk1] == list(range(12)) and [r[0] for r in trunk2] == list(range(12, 23))
    assert [r[2] for r in trunk1[:3]] == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3)])  # warmup_iters = 3
    assert {r[2] for r in trunk1[3:]} == {3e-3}  # then constant: no decay in the trunk
    assert {r[2] for r in trunk2} == {2e-3}  # stage 2: its own rate at once, no re-warming


def test_each_stage_cools_down_in_a_branch_off_the_trunk(wsd_grown):
    root, _, results = wsd_grown
    run = root / "work" / "run"
    for entry, start, iters, lr in zip(results["stages"], (12, 23), (6, 6), (3e-3, 2e-3)):
        # round(12 * 0.5) = 6 and round(11 * 0.5) = 6 (Python rounds halves to even)
        assert entry["trunk_dir"] == f"stages/{entry['name']}"
        assert entry["run_dir"] == f"stages/{entry['name']}/cooldown"
        branch = entry["branch"]
        assert (branch["start_iter"], branch["end_iter"], branch["iters"]) == (start, start + iters, iters)
        assert branch["tokens"] == iters * 4 * 32 * 2
        assert entry["tokens"] == (entry["end_iter"] - entry["start_iter"]) * 256
        records = _records(run / entry["run_dir"])
        assert [r[0] for r in records] == list(range(start, start + iters))
        min_lr = lr / 10  # the plan sets no min_lr
        expected = [min_lr + (1 - math.sqrt(k / iters)) * (lr - min_lr) for k in range(iters)]
        assert [r[2] for r in records] == pytest.approx(expected)  # 1-sqrt from the trunk's rate toward min_lr
        assert ckpt_io.load(run / entry["run_dir"] / "ckpt.pt")["iter_num"] == start + iters


def test_the_next_stage_continues_the_trunk_not_the_branch(wsd_grown):
    root, _, results = wsd_grown
    run = root / "work" / "run"
    trunk2 = ckpt_io.load(run / "stages" / "s2" / "ckpt.pt")
    # AdamW's step count: 12 trunk steps of stage 1 + 11 of stage 2; a continuation of stage 1's branch
    # would have 12 + 6 + 11.
    assert {float(v["step"]) for v in trunk2["optimizer"]["state"].values()} == {23.0}
    assert trunk2["iter_num"] == 23
    # and stage 2's first trunk step saw stage 1's trunk weights: its loss equals a fresh one-step run
    # from that checkpoint, which the branch's first step (other LR, other mixture) does not share.
    assert _records(run / "stages" / "s2")[0][0] == 12


def test_the_stage_is_scored_and_sampled_as_its_branch(wsd_grown):
    root, _, results = wsd_grown
    from growgpt.evaluate import evaluate_parts
    from growgpt.grow import eval_batch_size
    from growgpt.plan import load_plan

    plan = load_plan(root / "plan.toml")
    run = root / "work" / "run"
    s2 = results["stages"][1]
    part = next(iter(s2["eval"]["parts"]))
    stems = s2["eval"]["union_parts"]
    stem = [s for s in stems if f"articles{part}-" in s]
    kwargs = dict(batches=plan.eval.batches, batch_size=eval_batch_size(plan), seed=plan.eval.seed, device="cpu")
    branch = evaluate_parts(run / s2["run_dir"] / "ckpt.pt", root / "work" / "tokens", {part: stem}, {}, **kwargs)
    trunk = evaluate_parts(run / s2["trunk_dir"] / "ckpt.pt", root / "work" / "tokens", {part: stem}, {}, **kwargs)
    assert branch["parts"][part]["loss"] == s2["eval"]["parts"][part]["loss"]
    assert trunk["parts"][part]["loss"] != s2["eval"]["parts"][part]["loss"]
    assert s2["samples"] and s2["samples"][0]["prompt"] == "The"


def test_compare_schedules_trains_the_cosine_chain_beside_it(wsd_grown):
    root, _, results = wsd_grown
    run = root / "work" / "run"
    chain = results["variants"]["cosine"]
    assert chain["schedule"] == "cosine" and [s["name"] for s in chain["stages"]] == ["s1", "s2"]
    s2 = chain["stages"][1]
    assert s2["run_dir"] == "variants/cosine/s2" and "branch" not in s2 and "trunk_dir" not in s2
    lrs = [r[2] for r in _records(run / "variants" / "cosine" / "s2")]
    # cosine: stage 2 decays over its own iters (this plan gives it no warmup: a wsd plan may not)
    assert lrs[0] == pytest.approx(2e-3) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-3
    assert sorted(s2["eval"]["parts"]) == ["1", "2", "3"] and len(s2["eval"]["union_parts"]) == 3


def test_rerun_of_a_finished_wsd_plan_does_nothing(wsd_grown):
    root, plan, results = wsd_grown
    work = root / "work"
    watched = [work / "run" / "stages" / "s1" / "ckpt.pt", work / "run" / "stages" / "s2" / "cooldown" / "ckpt.pt",
               work / "run" / "variants" / "cosine" / "s2" / "ckpt.pt"]
    before = {p: p.stat().st_mtime_ns for p in watched}
    again = grow(plan, work, progress=False, verbose=False, compare_schedules=True)
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert again["stages"] == results["stages"] and again["variants"] == results["variants"]


@pytest.mark.parametrize("crash_at, where", [(19, "trunk"), (27, "branch")])
def test_a_crash_in_the_trunk_or_a_branch_resumes_bitwise(wsd_grown, tmp_path, monkeypatch, crash_at, where):
    """Stage 2's trunk runs iterations 12-22 (checkpoint at 15), its branch 23-28 (checkpoint at 25)."""
    root, _, results = wsd_grown
    plan = write_plan(tmp_path, WSD_PLAN)
    import growgpt.train as train_module

    real = train_module.Trainer.train_step
    crashed = []

    def crash(self, lr):
        if self.iter_num == crash_at and not crashed:
            crashed.append(self.iter_num)
            raise KeyboardInterrupt
        return real(self, lr)

    monkeypatch.setattr(train_module.Trainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        grow(plan, tmp_path / "work", progress=False, verbose=False)
    folder = tmp_path / "work" / "run" / "stages" / "s2" / ("cooldown" if where == "branch" else "")
    assert ckpt_io.load(folder / "ckpt.pt")["iter_num"] == (25 if where == "branch" else 15)
    monkeypatch.setattr(train_module.Trainer, "train_step", real)
    again = grow(plan, tmp_path / "work", progress=False, verbose=False)
    for sub in ("s2", "s2/cooldown"):
        ours = _records(tmp_path / "work" / "run" / "stages" / sub)
        uninterrupted = _records(root / "work" / "run" / "stages" / sub)
        assert [r[:2] for r in ours] == [r[:2] for r in uninterrupted]  # bitwise, step by step
    assert again["stages"][1]["eval"]["parts"] == results["stages"][1]["eval"]["parts"]


def test_repeat_trains_the_jump_again_with_other_seeds(tmp_path):
    plan = write_plan(tmp_path, PLAN.replace("iters = 12", "iters = 4").replace("iters = 11", "iters = 5"))
    with pytest.raises(UserError, match="--repeat trains the jump baseline"):
        grow(plan, tmp_path / "work", progress=False, verbose=False, repeat=2)
    with pytest.raises(UserError, match="--repeat must be a whole number from 1 to 100, got 0"):
        grow(plan, tmp_path / "work", progress=False, verbose=False, repeat=0, baseline="jump")
    results = grow(plan, tmp_path / "work", progress=False, verbose=False, baseline="jump", repeat=3)
    base = results["baseline"]
    assert [r["seed_offset"] for r in base["repeats"]] == [1, 2]
    assert [r["run_dir"] for r in base["repeats"]] == ["baseline/jump-seed1", "baseline/jump-seed2"]
    run = tmp_path / "work" / "run"
    seeds = {ckpt_io.load(run / r / "ckpt.pt")["config"]["seed"] for r in ("baseline/jump", "baseline/jump-seed1",
                                                                           "baseline/jump-seed2")}
    assert seeds == {1337, 1338, 1339}
    unions = [base["eval"]["union"]["loss"], *(r["eval"]["union"]["loss"] for r in base["repeats"])]
    assert len(set(unions)) == 3  # other seeds, other models
    # the same val batches: paired comparisons between seeds are valid
    assert len({tuple(r["eval"]["union"]["batches"].items()) for r in [base, *base["repeats"]]}) == 1
    again = grow(plan, tmp_path / "work", progress=False, verbose=False, baseline="jump", repeat=3)
    assert again["baseline"] == results["baseline"]  # nothing retrained


def test_variants_and_repeats_of_another_plan_are_forgotten(tmp_path):
    """A re-run after the plan changed must not show the old plan's other-schedule chain or seed repeats
    beside the new stages; those still matching the plan (an interrupted chain too) are kept."""
    from growgpt.grow import drop_stale, jump_signature, with_schedule
    from growgpt.plan import load_plan

    plan = load_plan(write_plan(tmp_path / "a"))
    edited = load_plan(write_plan(tmp_path / "b", PLAN.replace("iters = 11", "iters = 10")))
    wsd = with_schedule(plan, "wsd")

    def recorded():
        return {"stages": [], "baseline": {"signature": jump_signature(plan), "repeats": []},
                "variants": {"wsd": {"stages": [{"signature": wsd.stage_signature(0)}]}},  # interrupted after s1
                "repeats": [{"seed_offset": 1, "stages": [{"signature": plan.stage_signature(i) + "-seed1"}
                                                          for i in range(2)]}]}

    same = recorded()
    drop_stale(plan, same)
    assert same == recorded()
    other = recorded()
    drop_stale(edited, other)  # stage 2 changed: the wsd stage 1 still matches, the repeat's stage 2 does not
    assert other["variants"] == recorded()["variants"] and "repeats" not in other and other["baseline"] is None
    switched = recorded()
    drop_stale(wsd, switched)  # the plan itself is wsd now: a "wsd" variant would be the main chain
    assert "variants" not in switched


def test_estimate_counts_branches_the_other_chain_and_repeats(tmp_path):
    from growgpt.plan_estimate import estimate_plan

    cosine = write_plan(tmp_path / "c")
    plain = estimate_plan(cosine, tmp_path / "c" / "work", device="cpu", probe=False)
    assert [(s["name"], s["iters"]) for s in plain["stages"]] == [("s1", 12), ("s2", 11)]
    full = estimate_plan(cosine, tmp_path / "c" / "work", device="cpu", probe=False, baseline=True,
                         compare_schedules=True, repeat=3, repeat_grow=True)
    # the wsd chain: 12 + 11 trunk iterations + branches of round(0.2 * 12) = 2 and round(0.2 * 11) = 2
    assert [(s["name"], s["iters"]) for s in full["stages"]] == [
        ("s1", 12), ("s2", 11), ("wsd chain", 27), ("grow x2 seeds", 46), ("jump x3 seeds", 69)]
    wsd = estimate_plan(write_plan(tmp_path / "w", WSD_PLAN), tmp_path / "w" / "work", device="cpu", probe=False)
    assert [(s["name"], s["iters"]) for s in wsd["stages"]] == [("s1", 12 + 6), ("s2", 11 + 6)]
    assert full["disk_total"] > plain["disk_total"]


def test_the_jump_trains_on_every_part_when_stages_list_only_new_ones(tmp_path):
    """Replay 0 %: stage 2 lists only its new parts, yet its model has been trained on parts 1-3, and
    the jump it is compared with must be trained on the same union (it once took the last stage's)."""
    plan = write_plan(tmp_path, PLAN.replace("iters = 12", "iters = 4").replace("iters = 11", "iters = 5")
                      .replace("parts = [1, 2, 3]", "parts = [2, 3]"))
    results = grow(plan, tmp_path / "work", progress=False, verbose=False, baseline="jump")
    assert results["stages"][1]["parts"] == ["2", "3"] and results["stages"][1]["parts_trained"] == ["1", "2", "3"]
    assert results["baseline"]["parts"] == ["1", "2", "3"]
    state = ckpt_io.load(tmp_path / "work" / "run" / "baseline" / "jump" / "ckpt.pt")
    assert len(state["config"]["parts"].split(",")) == 3
    assert results["baseline"]["signature"].endswith("-jump-union")
