"""MFU: the CPU peak is measured once per machine and cached, never shown above 100 %, and the grow
report's stage MFU is the console's figure taken over the whole stage."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import pytest
import torch

from growgpt import hardware
from growgpt.config import load_config
from growgpt.grow import run_stats
from growgpt.hardware import CACHE_DIR_ENV, REMEASURE_ENV, Peak, checked_mfu, cpu_peak, cpu_peak_key, peak_cache_path
from growgpt.metrics import read_metrics
from growgpt.train import Trainer

MEASURED = 5e10  # what the fake probe reports, FLOP/s


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test here gets its own cache folder: nothing is written to the real ~/.cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(REMEASURE_ENV, raising=False)
    return folder


@pytest.fixture
def probe(monkeypatch):
    """Replace the (seconds-long) matmul probe by a counter; set .rate to change what it measures."""
    calls = SimpleNamespace(count=0, rate=MEASURED)

    def fake(*args, **kwargs):
        calls.count += 1
        return calls.rate

    monkeypatch.setattr(hardware, "measure_cpu_matmul_flops", fake)
    return calls


def _cache_entries() -> dict:
    return json.loads(peak_cache_path().read_text(encoding="utf-8"))["entries"]


# --- the cache -------------------------------------------------------------------------------------

def test_cached_peak_is_reused_without_measuring_again(probe, cache_dir):
    first = cpu_peak("float32")
    second = cpu_peak("float32")
    assert probe.count == 1
    assert first.flops == second.flops == MEASURED
    assert peak_cache_path() == cache_dir / "peak_flops.json"
    assert _cache_entries()[cpu_peak_key("float32")]["flops"] == MEASURED
    assert "cached in" in second.source and second.cache_key == cpu_peak_key("float32")


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'{"entries": []}',
                                     b'{"entries": {"KEY": {"flops": "fast"}}}', b'{"entries": {"KEY": {"flops": -1}}}',
                                     b'{"entries": {"KEY": {"flops": 1e999}}}', b'{"entries": {"KEY": 3}}',
                                     b"[" * 100_000])
def test_corrupt_cache_is_ignored_and_rewritten(probe, cache_dir, content):
    cache_dir.mkdir()
    peak_cache_path().write_bytes(content.replace(b"KEY", cpu_peak_key("float32").encode()))
    assert cpu_peak("float32").flops == MEASURED and probe.count == 1
    assert _cache_entries()[cpu_peak_key("float32")]["flops"] == MEASURED  # valid again
    cpu_peak("float32")
    assert probe.count == 1


def test_remeasure_on_request(probe, monkeypatch):
    cpu_peak("float32")
    probe.rate = 2 * MEASURED
    monkeypatch.setenv(REMEASURE_ENV, "1")
    assert cpu_peak("float32").flops == 2 * MEASURED and probe.count == 2
    monkeypatch.setenv(REMEASURE_ENV, "0")  # "0" is off: the new figure is cached
    assert cpu_peak("float32").flops == 2 * MEASURED and probe.count == 2


def test_cache_key_includes_cpu_torch_threads_and_dtype(probe, monkeypatch):
    key = cpu_peak_key("float32", threads=2)
    assert key != cpu_peak_key("float32", threads=4) and key != cpu_peak_key("bfloat16", threads=2)
    assert hardware.cpu_model_name() in key and torch.__version__ in key
    cpu_peak("float32")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 97)  # another thread count: measured anew
    cpu_peak("float32")
    monkeypatch.setattr(hardware, "cpu_model_name", lambda: "Another CPU 9000")  # another machine
    cpu_peak("float32")
    assert probe.count == 3 and len(_cache_entries()) == 3


def test_cache_folder_follows_growgpt_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert peak_cache_path() == tmp_path / "xdg" / "growgpt" / "peak_flops.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignore relative paths
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert peak_cache_path() == tmp_path / "home" / ".cache" / "growgpt" / "peak_flops.json"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert peak_cache_path() == tmp_path / "mine" / "peak_flops.json"


def test_unwritable_cache_still_gives_a_peak(probe, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_DIR_ENV, str(blocker / "cache"))
    peak = cpu_peak("float32")
    assert peak.flops == MEASURED and peak.cache_key is None and "not cached" in peak.source
    peak.record_rate(10 * MEASURED)  # nothing to raise, and no error


def test_probe_is_sane_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    rate = hardware.measure_cpu_matmul_flops(size=64, repeats=2, pause_s=0)
    assert math.isfinite(rate) and rate > 1e6
    assert torch.equal(torch.get_rng_state(), state)


# --- never above 100 % ----------------------------------------------------------------------------

def test_mfu_above_100_percent_prints_peak_unknown_and_is_none():
    peak = Peak(1e11, "test", "re-measure it")
    assert peak.mfu(5e10) == 0.5 and peak.console_text(5e10) == ", mfu 50.0%"
    assert peak.mfu(1e11) == 1.0  # exactly the peak is possible
    assert peak.mfu(1.988e11) is None
    text = peak.console_text(1.988e11)  # once printed as "mfu 198.8 %"
    assert text.startswith(", mfu ? (peak too low:") and "re-measure it" in text and "%" not in text
    assert "198.8 GFLOP/s achieved > 100.0 GFLOP/s peak" in text  # the figures, not a ratio
    assert Peak(None, "unknown GPU").console_text(1e12) == ""  # no peak: no MFU at all, as before
    assert checked_mfu(1.0, None) is None and checked_mfu(float("nan"), 1.0) is None


def test_gpu_table_is_unchanged_and_gets_the_same_guard():
    assert hardware.gpu_peak_flops("NVIDIA H200", "bfloat16") == 989.4e12
    assert hardware.gpu_peak_flops("NVIDIA A100-SXM4-80GB", "float32") == 19.5e12
    # e.g. fp32 training with TF32 matmuls (the trainer enables them) beats the fp32 column:
    a100 = Peak(19.5e12, "A100 dense float32 datasheet", "set peak_flops")
    assert a100.mfu(40e12) is None and "mfu ? (peak too low" in a100.console_text(40e12)


def test_rate_above_the_cached_peak_raises_it_and_the_next_run_remeasures(probe):
    peak = cpu_peak("float32")
    peak.record_rate(0.9 * MEASURED)  # below the peak: nothing to learn
    assert _cache_entries()[peak.cache_key] == {**_cache_entries()[peak.cache_key], "remeasure": False}
    peak.record_rate(3 * MEASURED)
    entry = _cache_entries()[peak.cache_key]
    assert entry["flops"] == 3 * MEASURED and entry["remeasure"] is True
    assert peak.flops == MEASURED  # this run keeps its figure (and prints "mfu ?") ...
    again = cpu_peak("float32")  # ... the next one measures again, and keeps the proven lower bound
    assert probe.count == 2 and again.flops == 3 * MEASURED
    assert _cache_entries()[peak.cache_key]["remeasure"] is False
    cpu_peak("float32")
    assert probe.count == 2


def test_trainer_records_null_mfu_when_the_peak_is_too_low(tiny_settings, capsys):
    cfg = load_config(base=tiny_settings(max_iters=3, eval_interval=3, peak_flops=1.0))  # 1 FLOP/s
    Trainer(cfg, verbose=True).run()
    out = capsys.readouterr().out
    assert "mfu ? (peak too low:" in out and "raise peak_flops" in out and not re.search(r"mfu [\d.]+%", out)
    trains = [r for r in read_metrics(cfg.out_dir) if r["kind"] == "train"]
    assert len(trains) == 3 and all(r["mfu"] is None for r in trains)  # null, which the reader accepts
    assert run_stats(cfg.out_dir, cfg, 0, 3)["mfu"] is None


# --- the report's stage MFU is the console's ------------------------------------------------------

def _write_train_records(run_dir, records):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [{"kind": "train", "iter": it, "loss": 3.0, "lr": 1e-3, "ms_per_iter": ms, "tokens_per_s": tps, "mfu": mfu}
             for it, ms, tps, mfu in records]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")


def test_run_stats_weights_each_log_interval_by_its_time(tmp_path):
    cfg = SimpleNamespace(batch_size=2, block_size=8, gradient_accumulation_steps=1)
    # log_interval 10, 25 iterations: the last record stands for 5 of them, not 10.
    _write_train_records(tmp_path, [(9, 100.0, 160.0, 0.4), (19, 100.0, 160.0, 0.4), (24, 200.0, 80.0, 0.2)])
    stats = run_stats(tmp_path, cfg, 0, 25)
    assert stats["seconds"] == 3.0  # 10 x 0.1 + 10 x 0.1 + 5 x 0.2 (the old sum x log_interval said 4.0)
    assert math.isclose(stats["mfu"], (0.4 + 0.4 + 0.2) / 3.0)  # = the stage's FLOPs / 3 s / peak
    assert math.isclose(stats["tokens_per_s"], 25 * 16 / 3.0)
    # a stage after another one starts counting at its start iteration
    assert run_stats(tmp_path, cfg, 15, 25)["seconds"] == 0.5 + 1.0


@pytest.mark.parametrize("mfus", [(0.4, None, 0.4), (0.4, 1.7, 0.4), (1.5, 1.5, 1.5)])
def test_stage_mfu_is_unknown_when_any_interval_had_a_wrong_peak(tmp_path, mfus):
    cfg = SimpleNamespace(batch_size=2, block_size=8, gradient_accumulation_steps=1)
    _write_train_records(tmp_path, [(it, 100.0, 160.0, mfu) for it, mfu in zip((0, 1, 2), mfus)])
    stats = run_stats(tmp_path, cfg, 0, 3)
    assert (stats["mfu"] is None) == (None in mfus or max(mfus) > 1) and stats["seconds"] == 0.3
    assert stats["mfu"] is None or stats["mfu"] <= 1


def test_report_never_shows_mfu_above_100_percent():
    from growgpt.report import f_mfu

    assert f_mfu(0.5) == "50.0 %" and f_mfu(1.0) == "100.0 %" and f_mfu(None) == "\u2013"
    assert f_mfu(1.988) == "? (peak too low)"  # a grow.json written before the guard


def test_stage_mfu_agrees_with_the_console_on_a_tiny_run(tiny_settings, capsys):
    from growgpt.report import COST_HEADER, COST_NOTE, render_markdown

    # eval_interval 5 and log_interval 3 do not line up: the interval after an evaluation and the last
    # one are shorter than log_interval, and evaluation time must count in neither figure.
    cfg = load_config(base=tiny_settings(max_iters=11, eval_interval=5, log_interval=3, peak_flops=1e11))
    trainer = Trainer(cfg, verbose=True)
    trainer.run()
    console = [float(x) for x in re.findall(r"mfu ([\d.]+)%", capsys.readouterr().out)]
    records = [r["mfu"] for r in read_metrics(cfg.out_dir) if r["kind"] == "train"]
    assert console == [round(100 * m, 1) for m in records] and len(console) == 4  # iters 2, 5, 8 and 10
    stats = run_stats(cfg.out_dir, cfg, 0, 11)
    assert min(records) <= stats["mfu"] <= max(records)  # the console's figure over the whole stage
    # tokens/s and MFU divide by the same training-step time: MFU = tokens/s x FLOPs per token / peak
    flops_per_token = trainer.raw_model.flops_per_token()
    assert math.isclose(stats["mfu"], stats["tokens_per_s"] * flops_per_token / 1e11, rel_tol=1e-9)

    # the report's stage table shows that figure, under a header that says what it divides by
    results = {"title": "t", "parts": ["1"], "baseline": None,
               "stages": [{"name": "s1", "parts": ["1"], "new_parts": ["1"], "start_iter": 0, "end_iter": 11,
                           "run_dir": "s1", "eval": {"parts": {}}, "samples": [], **stats}]}
    md = render_markdown(results)
    stage_table = md.split("## Stages", 1)[1]
    row = next(line for line in stage_table.splitlines() if line.startswith("| s1 |"))
    assert f"{100 * stats['mfu']:.1f} %" in row
    assert "MFU (training steps)" in COST_HEADER and "Train time" in COST_HEADER
    assert "evaluations and checkpoints are not counted" in COST_NOTE and COST_NOTE.split(";")[0] in stage_table
