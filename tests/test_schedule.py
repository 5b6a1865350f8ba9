"""Learning-rate schedules: cosine as before, WSD (warmup-stable-decay) with linear or 1-sqrt cooldown,
cooldown branches off a constant-LR trunk, and the schedule keys' checks."""

from __future__ import annotations

import math

import pytest

from growgpt import checkpoint as ckpt_io
from growgpt.config import TrainConfig, cooldown_branch, cooldown_start, load_config
from growgpt.errors import UserError
from growgpt.metrics import read_metrics
from growgpt.train import lr_at, train

SCHEDULE_KEYS = ("schedule", "cooldown_fraction", "cooldown_shape")


def _cfg(**settings) -> TrainConfig:
    return load_config(base={"dataset": "x", "learning_rate": 1.0, "min_lr": 0.1, **settings})


def _old_cosine_lr(it: int, cfg: TrainConfig) -> float:
    """lr_at as it was before WSD existed, copied verbatim: cosine must not change."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    step = it - cfg.schedule_start
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= cfg.lr_decay_iters:
        return cfg.min_lr
    progress = (step - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


@pytest.mark.parametrize("settings", [
    {},  # nanoGPT's defaults: warmup 2000, horizon 600000
    {"warmup_iters": 10, "lr_decay_iters": 110},
    {"warmup_iters": 0, "lr_decay_iters": 1},
    {"warmup_iters": 7, "lr_decay_iters": 50, "schedule_start": 123, "learning_rate": 3e-4, "min_lr": 3e-5},
    {"warmup_iters": 60, "lr_decay_iters": 50},  # a warmup past the horizon: cosine never refused it
    {"warmup_iters": 5, "lr_decay_iters": 40, "decay_lr": False},
    # The wsd-only keys change nothing for cosine.
    {"warmup_iters": 10, "lr_decay_iters": 110, "cooldown_fraction": 1.0, "cooldown_shape": "linear"},
])
def test_cosine_is_unchanged(settings):
    cfg = _cfg(**settings)
    assert cfg.schedule == "cosine"  # the default
    probes = [*range(cfg.schedule_start, cfg.schedule_start + 200),
              *range(cfg.schedule_start, cfg.schedule_start + 700_000, 997)]
    assert [lr_at(it, cfg) for it in probes] == [_old_cosine_lr(it, cfg) for it in probes]


def test_wsd_warmup_stable_cooldown_then_min_lr():
    wsd = _cfg(schedule="wsd", warmup_iters=10, lr_decay_iters=110, cooldown_fraction=0.2)
    cosine = _cfg(warmup_iters=10, lr_decay_iters=110)
    assert cooldown_start(wsd) == 88  # 110 - round(110 * 0.2)
    lrs = [lr_at(it, wsd) for it in range(130)]
    assert lrs[:11] == [lr_at(it, cosine) for it in range(11)]  # the same rising warmup, to learning_rate
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert lrs[10:89] == [1.0] * 79  # stable up to and including the cooldown's first iteration
    assert all(a > b for a, b in zip(lrs[88:110], lrs[89:111]))  # every cooldown step lowers the LR
    assert lrs[109] > 0.1 and lrs[110:] == [0.1] * 20  # min_lr exactly at the horizon, and after
    assert lrs[99] == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))  # 1-sqrt is the default shape


def test_cooldown_shapes():
    """1 - sqrt(p) <= 1 - p on [0, 1]: 1-sqrt drops faster at first, and is below linear throughout."""
    common = dict(schedule="wsd", warmup_iters=10, lr_decay_iters=110, cooldown_fraction=0.2)
    linear, one_minus_sqrt = _cfg(cooldown_shape="linear", **common), _cfg(cooldown_shape="1-sqrt", **common)
    for it in range(89, 110):
        progress = (it - 88) / 22
        assert lr_at(it, linear) == pytest.approx(0.1 + 0.9 * (1 - progress))
        assert lr_at(it, one_minus_sqrt) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(progress)))
        assert lr_at(it, one_minus_sqrt) < lr_at(it, linear)
    for it in (*range(0, 89), *range(110, 120)):  # they differ only inside the cooldown
        assert lr_at(it, linear) == lr_at(it, one_minus_sqrt)

    def drop(cfg, it):
        return lr_at(it, cfg) - lr_at(it + 1, cfg)

    assert drop(one_minus_sqrt, 88) > drop(linear, 88) and drop(one_minus_sqrt, 108) < drop(linear, 108)


@pytest.mark.parametrize("fraction, lr_decay_iters, start", [
    (0.2, 100, 80), (1.0, 100, 0), (0.5, 7, 3), (0.001, 100, 99), (1e-9, 1, 0),  # at least one cooldown iteration
])
def test_cooldown_start(fraction, lr_decay_iters, start):
    cfg = _cfg(schedule="wsd", warmup_iters=0, lr_decay_iters=lr_decay_iters, cooldown_fraction=fraction)
    assert cooldown_start(cfg) == start
    assert cooldown_start(_cfg(schedule="wsd", warmup_iters=0, lr_decay_iters=lr_decay_iters,
                               cooldown_fraction=fraction, schedule_start=1000)) == 1000 + start
    assert lr_at(start, cfg) == 1.0 and lr_at(lr_decay_iters, cfg) == 0.1


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_schedule_start_shifts_everything(schedule):
    at_zero = _cfg(schedule=schedule, warmup_iters=6, lr_decay_iters=50, cooldown_fraction=0.3)
    shifted = _cfg(schedule=schedule, warmup_iters=6, lr_decay_iters=50, cooldown_fraction=0.3, schedule_start=1234)
    assert [lr_at(1234 + it, shifted) for it in range(70)] == [lr_at(it, at_zero) for it in range(70)]


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_decay_lr_false_keeps_the_lr_constant(schedule):
    cfg = _cfg(schedule=schedule, warmup_iters=6, lr_decay_iters=50, decay_lr=False)
    assert {lr_at(it, cfg) for it in range(80)} == {1.0}


@pytest.mark.parametrize("shape", ["linear", "1-sqrt"])
def test_cooldown_branch_continues_a_trunk(shape):
    trunk = _cfg(schedule="wsd", warmup_iters=10, lr_decay_iters=110, cooldown_fraction=0.2, cooldown_shape=shape)
    # A trunk's own cooldown is the branch from its cooldown start over the rest of its horizon.
    own = cooldown_branch(trunk, cooldown_start(trunk), 22)
    assert [lr_at(it, own) for it in range(88, 130)] == [lr_at(it, trunk) for it in range(88, 130)]
    # A branch off the stable phase at 50 over 30 iterations: no jump, min_lr at 80, the trunk's shape.
    branch = cooldown_branch(trunk, 50, 30)
    assert (branch.schedule_start, branch.lr_decay_iters, branch.max_iters) == (50, 30, 80)
    assert lr_at(50, branch) == lr_at(50, trunk) == 1.0
    assert all(lr_at(it, branch) > lr_at(it + 1, branch) for it in range(50, 80))
    assert lr_at(80, branch) == 0.1
    progress = 12 / 30
    factor = 1 - (math.sqrt(progress) if shape == "1-sqrt" else progress)
    assert lr_at(62, branch) == pytest.approx(0.1 + 0.9 * factor)
    # cooldown_branch is only these keys: a config written by hand gives the same curve.
    by_hand = _cfg(schedule="wsd", warmup_iters=0, cooldown_fraction=1.0, lr_decay_iters=30, schedule_start=50,
                   cooldown_shape=shape)
    assert [lr_at(it, by_hand) for it in range(50, 90)] == [lr_at(it, branch) for it in range(50, 90)]
    assert trunk.schedule_start == 0 and trunk.cooldown_fraction == 0.2  # the trunk's config is left alone


def test_warmup_may_end_where_the_cooldown_starts():
    cfg = _cfg(schedule="wsd", warmup_iters=80, lr_decay_iters=100, cooldown_fraction=0.2)
    assert lr_at(79, cfg) == pytest.approx(80 / 81) and lr_at(80, cfg) == 1.0 and lr_at(81, cfg) < 1.0


@pytest.mark.parametrize("settings, message", [
    ({"schedule": "step"}, r"config key 'schedule' must be one of cosine, wsd, constant, got 'step'"),
    ({"schedule": "WSD"}, r"config key 'schedule' must be one of cosine, wsd, constant, got 'WSD'"),
    ({"cooldown_shape": "cosine"}, r"config key 'cooldown_shape' must be one of linear, 1-sqrt, got 'cosine'"),
    ({"cooldown_fraction": 0}, r"config key 'cooldown_fraction' must be in \(0, 1\], got 0.0"),
    ({"cooldown_fraction": 1.5}, r"config key 'cooldown_fraction' must be in \(0, 1\], got 1.5"),
    ({"cooldown_fraction": -0.2}, r"config key 'cooldown_fraction' must be in \(0, 1\]"),
    ({"cooldown_fraction": float("nan")}, r"config key 'cooldown_fraction' \(settings\) must be a finite number"),
    ({"cooldown_fraction": float("inf")}, r"config key 'cooldown_fraction' \(settings\) must be a finite number"),
    ({"cooldown_fraction": "0.2"}, r"config key 'cooldown_fraction' \(settings\) expects float, got str"),
    ({"schedule": 1}, r"config key 'schedule' \(settings\) expects str, got int"),
    ({"schedule": "wsd", "warmup_iters": 81, "lr_decay_iters": 100},
     r"config key 'warmup_iters' \(81\) must be <= the wsd cooldown start \(80 = lr_decay_iters 100 less its "
     r"cooldown_fraction 0.2\): lower warmup_iters or cooldown_fraction, or raise lr_decay_iters"),
    ({"schedule": "wsd", "warmup_iters": 1, "lr_decay_iters": 10, "cooldown_fraction": 1.0},
     r"config key 'warmup_iters' \(1\) must be <= the wsd cooldown start \(0 = "),
])
def test_bad_schedule_keys_are_refused_by_name(settings, message):
    with pytest.raises(UserError, match=message) as caught:
        _cfg(**settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("overrides, message", [
    (["cooldown_fraction=nan"], r"config key 'cooldown_fraction' \(--set\) must be a finite number"),
    (["cooldown_fraction=0"], r"config key 'cooldown_fraction' must be in \(0, 1\]"),
    (["schedule=linear"], r"config key 'schedule' must be one of cosine, wsd"),
    (["cooldwon_shape=linear"], r"unknown config key 'cooldwon_shape' in --set \(did you mean 'cooldown_shape'\?\)"),
])
def test_bad_schedule_overrides(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, ["dataset=d", *overrides])


def test_schedule_keys_from_toml_and_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('dataset = "d"\n[optim]\nschedule = "wsd"\ncooldown_fraction = 0.1\nwarmup_iters = 100\n')
    cfg = load_config(path, ["cooldown_shape=linear"])
    assert (cfg.schedule, cfg.cooldown_fraction, cfg.cooldown_shape) == ("wsd", 0.1, "linear")
    direct = TrainConfig(dataset="d", schedule="wsd", cooldown_fraction=1, warmup_iters=0)  # int -> float
    assert direct.validate().cooldown_fraction == 1.0
    with pytest.raises(UserError, match=r"config key 'cooldown_shape' must be one of"):
        TrainConfig(dataset="d", cooldown_shape="sqrt").validate()


def test_training_logs_the_wsd_lr(tiny_settings):
    cfg = load_config(base=tiny_settings(schedule="wsd", cooldown_fraction=0.4, cooldown_shape="1-sqrt",
                                         warmup_iters=4, max_iters=24, lr_decay_iters=20, eval_interval=12))
    result = train(cfg, verbose=False)
    log = read_metrics(result["out_dir"])
    trains = [r for r in log if r["kind"] == "train"]
    assert [r["iter"] for r in trains] == list(range(24))
    assert [r["lr"] for r in trains] == [lr_at(it, cfg) for it in range(24)]  # exactly: JSON keeps the float
    assert [r["lr"] for r in log if r["kind"] == "eval"] == [lr_at(it, cfg) for it in (0, 12, 24)]
    lrs = [r["lr"] for r in trains]
    assert lrs[4:13] == [cfg.learning_rate] * 9 and lrs[20:] == [cfg.min_lr] * 4  # cooldown over 12..20
    saved = ckpt_io.load(result["out_dir"] + "/ckpt.pt")["config"]
    assert {k: saved[k] for k in SCHEDULE_KEYS} == {"schedule": "wsd", "cooldown_fraction": 0.4,
                                                     "cooldown_shape": "1-sqrt"}


def test_resume_a_checkpoint_saved_before_the_schedule_keys(tiny_settings):
    """A checkpoint written before these keys existed resumes; the resuming config decides the schedule."""
    first = train(load_config(base=tiny_settings(max_iters=8, lr_decay_iters=16, eval_interval=8)), verbose=False)
    path = first["out_dir"] + "/ckpt.pt"
    state = ckpt_io.load(path)
    for key in SCHEDULE_KEYS:
        del state["config"][key]
    ckpt_io.atomic_save(state, path)
    cfg = load_config(base=tiny_settings(max_iters=16, lr_decay_iters=16, eval_interval=8, init_from="resume",
                                         schedule="wsd", cooldown_fraction=0.5, cooldown_shape="linear"))
    train(cfg, verbose=False)
    trains = [r for r in read_metrics(first["out_dir"]) if r["kind"] == "train"]
    assert [r["iter"] for r in trains] == list(range(16))
    assert [r["lr"] for r in trains[8:]] == [lr_at(it, cfg) for it in range(8, 16)]
    assert ckpt_io.load(path)["config"]["schedule"] == "wsd"


def test_plans_take_cosine_or_wsd_and_a_wsd_trunk_warms_up_once(tmp_path):
    """A plan's "wsd" means a trunk + cooldown branches (growgpt.grow): accepted; "constant" (the
    trunk's own schedule) and unknown names are refused at load, and so is a later stage's warmup,
    which would re-warm the trunk."""
    from growgpt.plan import load_plan

    from conftest import PLAN, write_plan

    wsd = PLAN.replace("[train]\n", '[train]\nschedule = "wsd"\n')
    rewarm = r"key 'warmup_iters' in \[\[stage\]\] 2 \('s2'\) of .* is 4: with schedule = \"wsd\""
    with pytest.raises(UserError, match=rewarm):
        load_plan(write_plan(tmp_path / "a", wsd))
    plan = load_plan(write_plan(tmp_path / "b", wsd.replace("warmup_iters = 4\n", "")))
    assert plan.train["schedule"] == "wsd" and plan.stages[0].warmup_iters == 3
    for bad in ("constant", "cosnie"):
        with pytest.raises(UserError, match=rf"key 'schedule' in \[train\] of .* got '{bad}'"):
            load_plan(write_plan(tmp_path / bad, PLAN.replace("[train]\n", f'[train]\nschedule = "{bad}"\n')))
    # Naming the default changes nothing: the same stage signatures, so no stage is redone.
    named = load_plan(write_plan(tmp_path / "cosine", PLAN.replace("[train]\n", '[train]\nschedule = "cosine"\n')))
    unnamed = load_plan(write_plan(tmp_path / "plain"))
    assert [named.stage_signature(i) for i in range(2)] == [unnamed.stage_signature(i) for i in range(2)]


def test_constant_schedule_warms_up_then_never_decays():
    cfg = _cfg(schedule="constant", warmup_iters=4, lr_decay_iters=10, learning_rate=1.0, min_lr=0.1)
    cosine = _cfg(warmup_iters=4, lr_decay_iters=10, learning_rate=1.0, min_lr=0.1)
    lrs = [lr_at(it, cfg) for it in range(100)]
    assert lrs[:4] == [lr_at(it, cosine) for it in range(4)] and lrs[3] < 1.0
    assert lrs[4:] == [1.0] * 96  # past the horizon too
