"""Habits of long work: train's progress line (N/max_iters, elapsed, ETA), tokens per iteration and the
CPU accumulation hint; schedule_start = "resume" (a fresh schedule from the checkpoint's iteration) and
the line a resume with another LR prints; `estimate` answering in seconds (derived time, bounded probe)."""

from __future__ import annotations

import re
import time

import pytest

import growgpt.estimate as est
import growgpt.hardware as hardware
import growgpt.plan_estimate as plan_estimate
from growgpt.config import FIELD_HELP, TrainConfig, load_config
from growgpt.errors import UserError
from growgpt.metrics import read_metrics
from growgpt.train import Trainer, cpu_accum_hint, evals_after, format_duration, lr_at, train

from conftest import PLAN, write_plan


def _train_lrs(run_dir) -> dict[int, float]:
    return {r["iter"]: r["lr"] for r in read_metrics(run_dir) if r["kind"] == "train"}


# --- console ----------------------------------------------------------------------------------------

def test_console_line_has_progress_elapsed_and_eta(tiny_settings, capsys):
    train(load_config(base=tiny_settings(max_iters=6, eval_interval=3, log_interval=2)))
    out = capsys.readouterr().out
    assert "tokens per iteration: 512 = batch_size 8 x block_size 32 x gradient_accumulation_steps 2" in out
    lines = [line for line in out.splitlines() if re.match(r"iter \d+: loss", line)]
    assert [line.split(":")[0] for line in lines] == ["iter 1", "iter 3", "iter 5"]
    for line, done in zip(lines, (2, 4, 6)):
        for field in ("loss ", ", lr ", " ms/iter, ", " tok/s", ", mfu "):  # the existing fields stay
            assert field in line, line
        m = re.search(r"\| (\d+)/6 iters \((\d+)%\), elapsed (\S+), ETA (\S+)$", line)
        assert m, line
        assert int(m.group(1)) == done and int(m.group(2)) == round(100 * done / 6)
        assert re.fullmatch(r"\d+s|\d+m\d\ds", m.group(3)) and re.fullmatch(r"\d+s|\d+m\d\ds", m.group(4))
    assert lines[-1].endswith("ETA 0s")
    assert "hint:" not in out  # 2 micro-batches per iteration: no hint


def test_quiet_train_keeps_evaluations_warnings_and_the_result(tiny_settings, tmp_path, capsys):
    from growgpt.cli import main

    config = tmp_path / "c.toml"
    settings = tiny_settings(max_iters=4, eval_interval=2, log_interval=1, gradient_accumulation_steps=8,
                             eval_iters=1)
    config.write_text("".join(f"{k} = {v!r}\n".replace("'", '"') if not isinstance(v, bool)
                              else f"{k} = {str(v).lower()}\n" for k, v in settings.items()), encoding="utf-8")
    main(["train", str(config), "--quiet"])
    out = capsys.readouterr().out.splitlines()
    assert not [line for line in out if re.match(r"iter \d+: loss|device |tokens per iteration", line)], out
    assert [line.split(":")[0] for line in out if line.startswith("eval iter")] == ["eval iter 0", "eval iter 2",
                                                                                     "eval iter 4"]
    assert sum(line.startswith("hint:") for line in out) == 1  # a warning is not progress
    assert out[-1].startswith("done: iter 4, best val loss ")
    main(["train", str(config), "--quiet", "--set", "init_from=resume", "--set", "max_iters=6",
          "--set", "learning_rate=5e-4"])
    out = capsys.readouterr().out.splitlines()
    assert any("learning_rate" in line and "next step" in line for line in out), out  # the resume LR line stays
    assert not [line for line in out if re.match(r"iter \d+: loss", line)], out


def test_cpu_accumulation_hint(tiny_settings, capsys):
    train(load_config(base=tiny_settings(max_iters=1, gradient_accumulation_steps=8, eval_iters=1)))
    out = capsys.readouterr().out
    hint = [line for line in out.splitlines() if line.startswith("hint:")]
    assert len(hint) == 1 and "8 forward/backward passes of 8 x 32 tokens" in hint[0]
    assert "gradient_accumulation_steps=1" in hint[0]
    small = TrainConfig(dataset="x", batch_size=12, block_size=64, gradient_accumulation_steps=40)
    assert cpu_accum_hint(small, "cpu", 40) and "40 forward/backward passes" in cpu_accum_hint(small, "cpu", 40)
    assert cpu_accum_hint(small, "cuda", 40) is None  # GPUs: accumulation is what fits memory
    assert cpu_accum_hint(small, "cpu", 4) is None
    big = TrainConfig(dataset="x", batch_size=64, block_size=1024, gradient_accumulation_steps=40)
    assert cpu_accum_hint(big, "cpu", 40) is None  # large micro-batches: accumulation is for memory


def test_durations_and_evaluations_left():
    assert [format_duration(s) for s in (0, 42.4, 185, 3720, 2 * 86400 + 3 * 3600)] == \
        ["0s", "42s", "3m05s", "1h02m", "2d03h"]
    assert format_duration(float("inf")) == "?"
    cfg = TrainConfig(dataset="x", max_iters=10, eval_interval=4)
    assert [evals_after(i, cfg) for i in (0, 3, 4, 8, 9, 10)] == [3, 3, 2, 1, 1, 0]  # at 4, 8 and 10


# --- schedule_start = "resume" ----------------------------------------------------------------------

def test_schedule_start_resume_starts_a_fresh_warmup_at_the_checkpoint(tiny_settings, capsys):
    base = dict(max_iters=7, eval_interval=7, warmup_iters=5, lr_decay_iters=100, learning_rate=3e-3)
    train(load_config(base=tiny_settings(**base)))
    run = tiny_settings()["out_dir"]
    resumed = dict(base, init_from="resume", learning_rate=1e-3, max_iters=7 + 8, schedule_start="resume")
    train(load_config(base=tiny_settings(**resumed)))
    lrs = _train_lrs(run)
    assert lrs[7] == pytest.approx(1e-3 * 1 / 6)  # the warmup counts from the checkpoint's iteration
    assert all(lrs[i] < lrs[i + 1] for i in range(7, 12))
    assert lrs[7 + 5] == pytest.approx(1e-3)  # learning_rate exactly at the end of the warmup
    assert lrs[14] < 1e-3  # then the decay, its horizon lr_decay_iters counted from iter 7
    out = capsys.readouterr().out
    assert 'schedule_start = "resume": a fresh warmup and decay from iter 7' in out
    assert "min_lr 3.00e-04 at iter 107" in out

    # The same command resumed again continues that schedule: no second warmup.
    train(load_config(base=tiny_settings(**dict(resumed, max_iters=17))))
    lrs = _train_lrs(run)
    cfg = load_config(base=tiny_settings(**dict(resumed, schedule_start=7, max_iters=17)))
    assert lrs[15] == lr_at(15, cfg) and lrs[16] == lr_at(16, cfg)
    assert "continuing the fresh schedule this run started at iter 7" in capsys.readouterr().out


def test_schedule_start_resume_is_checked(tiny_settings):
    with pytest.raises(UserError, match=r"schedule_start.*needs init_from = \"resume\"") as e:
        load_config(base=tiny_settings(schedule_start="resume"))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="whole number or \"resume\""):
        load_config(base=tiny_settings(init_from="resume"), overrides=["schedule_start=restart"])
    for override in ("schedule_start=resume", "--schedule_start='resume'", "--schedule_start=resume"):
        cfg = load_config(base=tiny_settings(init_from="resume"), overrides=[override])
        assert cfg.schedule_start == "resume"
    assert load_config(base=tiny_settings(), overrides=["schedule_start=2e3"]).schedule_start == 2000
    with pytest.raises(UserError, match="must be >= 0"):
        load_config(base=tiny_settings(), overrides=["schedule_start=-1"])
    with pytest.raises(ValueError, match="not resolved"):
        lr_at(0, load_config(base=tiny_settings(init_from="resume", schedule_start="resume")))
    assert "resume" in FIELD_HELP["schedule_start"]


def test_schedule_start_resume_from_toml(tiny_settings, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('init_from = "resume"\nschedule_start = "resume"\n')
    assert load_config(config, base=tiny_settings()).schedule_start == "resume"


def test_resume_with_another_lr_names_the_next_lr(tiny_settings, capsys):
    base = dict(max_iters=3, eval_interval=3, warmup_iters=20, lr_decay_iters=100)
    train(load_config(base=tiny_settings(**base)))
    capsys.readouterr()
    cfg = load_config(base=tiny_settings(**dict(base, init_from="resume", learning_rate=3e-4, max_iters=6)))
    Trainer(cfg, verbose=True).run()
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("resuming at iter 3 with")]
    assert len(line) == 1, out
    assert f"LR {lr_at(3, cfg):.2e} at the next step" in line[0] and "learning_rate 0.003 -> 0.0003" in line[0]
    assert "--set schedule_start=resume" in line[0]
    # nothing differs: no line
    Trainer(load_config(base=tiny_settings(**dict(base, init_from="resume", learning_rate=3e-4, max_iters=7))),
            verbose=True).run()
    assert "resuming at iter 6 with" not in capsys.readouterr().out


# --- estimate -----------------------------------------------------------------------------------------

GPT2_124M = {"n_layer = 1\n": "n_layer = 12\n", "n_head = 2\n": "n_head = 12\n", "n_embd = 32\n": "n_embd = 768\n",
             "block_size = 32\n": "block_size = 1024\n", "batch_size = 4\n": "batch_size = 12\n",
             "gradient_accumulation_steps = 2\n": "gradient_accumulation_steps = 40\n"}


@pytest.fixture
def no_probe(monkeypatch):
    def probe(*args, **kwargs):
        raise AssertionError("the timing probe must not run")

    monkeypatch.setattr(plan_estimate, "probe_iter_seconds", probe)
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)


def test_estimate_for_a_gpu_is_derived_without_a_probe(tmp_path, no_probe, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_peak", lambda dtype="float32": pytest.fail("no CPU peak for a remote card"))
    plan = write_plan(tmp_path, PLAN, **GPT2_124M)
    t0 = time.perf_counter()
    e = plan_estimate.estimate_plan(plan, tmp_path / "work", gpu="RTX 4070")
    assert time.perf_counter() - t0 < 10
    assert e["device"] == "cuda" and e["dtype"] == "bfloat16" and e["memory"] == 12_282 * 2**20
    timing = e["timing"]
    assert timing["method"] == "derived" and timing["peak"] == 58.3e12 and timing["mfu"] == plan_estimate.ASSUMED_MFU
    flops = est.train_flops_per_token(12, 12, 768, 1024, 50257) * 12 * 1024
    assert timing["seconds"] == pytest.approx(flops / (58.3e12 * 0.4))
    assert e["stages"][0]["seconds"] == pytest.approx(timing["seconds"] * 40 * e["stages"][0]["iters"])
    text = plan_estimate.format_estimate(e)
    assert "40% MFU assumed" in text and "RTX 4070" in text and "not measured" in text
    lines = text.splitlines()
    first_stage = next(i for i, line in enumerate(lines) if line.startswith("stage"))
    assert any("GPU memory for training" in line for line in lines[:first_stage])  # memory first
    assert any(line.startswith("RAM:") for line in lines[:first_stage])


def test_train_flops_match_the_model():
    from growgpt.model import GPT, GPTConfig, padded_vocab_size

    model = GPT(GPTConfig(block_size=32, vocab_size=padded_vocab_size(100), n_layer=2, n_head=2, n_embd=32))
    assert est.train_flops_per_token(2, 2, 32, 32, 100) == model.flops_per_token()


def test_a_probe_over_budget_is_skipped_on_cpu(tmp_path, no_probe, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_peak", lambda dtype="float32": hardware.Peak(50e9, "test"))
    e = plan_estimate.estimate_plan(write_plan(tmp_path, PLAN, **GPT2_124M), tmp_path / "work", device="cpu")
    timing = e["timing"]
    assert timing["method"] == "derived" and timing["seconds"] == pytest.approx(timing["flops"] / (50e9 * 0.4))
    assert "over the 5 s budget" in timing["basis"] and "MFU assumed" in timing["basis"]


def test_a_small_model_is_probed_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_peak", lambda dtype="float32": hardware.Peak(50e9, "test"))
    calls, said = [], []
    monkeypatch.setattr(plan_estimate, "probe_iter_seconds", lambda *a, **k: calls.append(k) or 0.01)
    e = plan_estimate.estimate_plan(write_plan(tmp_path, PLAN), tmp_path / "work", device="cpu", say=said.append)
    assert len(calls) == 1 and e["timing"]["method"] == "probe" and e["seconds_per_micro_batch"] == 0.01
    assert said and "timing probe" in said[0]
    assert "measured by a timing probe" in plan_estimate.format_estimate(e)


def test_cli_estimate_with_gpu_answers_in_seconds(tmp_path, no_probe, monkeypatch, capsys):
    from growgpt.cli import main

    monkeypatch.setattr(hardware, "cpu_peak", lambda dtype="float32": hardware.Peak(50e9, "test"))
    plan = write_plan(tmp_path, PLAN, **GPT2_124M)
    t0 = time.perf_counter()
    main(["estimate", str(plan), "--workdir", str(tmp_path / "work"), "--gpu", "RTX 4070"])
    assert time.perf_counter() - t0 < 10
    out = capsys.readouterr().out
    assert "MFU assumed" in out and "total time" in out


def test_estimate_of_a_dump_plan_works_offline_from_the_kept_listing_or_part_size(tmp_path, capsys):
    """A wiki/date plan needs the mirror's listing for part sizes: estimate keeps it in W/raw, uses the
    kept one when the mirror cannot be read (saying so), and otherwise takes --part-size."""
    import shutil

    from growgpt.cli import main
    from growgpt.plan_estimate import estimate_plan

    from conftest import PLAN, write_mirror

    mirror = tmp_path / "mirror"
    write_mirror(mirror)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace("files = {files}", f'wiki = "testwiki"\ndate = "20250101"\nmirror = "{mirror}"'))
    online = estimate_plan(plan, tmp_path / "work", device="cpu", probe=False)
    assert online["part_sizes"] == "the mirror's listing"
    assert (tmp_path / "work" / "raw" / "listing-testwiki-20250101.json").is_file()
    shutil.rmtree(mirror)  # the mirror is gone (no network)
    kept = estimate_plan(plan, tmp_path / "work", device="cpu", probe=False)
    assert kept["part_sizes"].startswith("the listing kept in ") and kept["disk_total"] == online["disk_total"]
    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", str(plan), "--workdir", str(tmp_path / "fresh"), "--no-probe", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("growgpt: error:") == 1 and "--part-size BYTES" in err
    main(["estimate", str(plan), "--workdir", str(tmp_path / "fresh"), "--no-probe", "--device", "cpu",
          "--part-size", "1e6"])
    out = capsys.readouterr().out
    assert "part sizes: --part-size 1,000,000 bytes per part" in out
    with pytest.raises(SystemExit):
        main(["estimate", str(plan), "--part-size", "nan"])
    assert "--part-size: must be a whole number of bytes" in capsys.readouterr().err
