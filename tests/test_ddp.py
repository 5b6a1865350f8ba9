"""torchrun: two gloo processes on CPU train like one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from growgpt.metrics import read_metrics


def _settings_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tiny_settings, tmp_path):
    common = dict(max_iters=12, lr_decay_iters=12, eval_interval=6, gradient_accumulation_steps=4)
    single = tiny_settings(out_dir=str(tmp_path / "single"), **common)
    double = tiny_settings(out_dir=str(tmp_path / "ddp"), **common)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "growgpt", "train", *_settings_args(single)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "growgpt", "train", *_settings_args(double)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout

    def evals(run_dir):
        return [(r["iter"], r["train_loss"], r["val_loss"]) for r in read_metrics(run_dir) if r["kind"] == "eval"]

    a, b = evals(tmp_path / "single"), evals(tmp_path / "ddp")
    assert [e[0] for e in a] == [e[0] for e in b] == [0, 6, 12]
    assert a[0] == pytest.approx(b[0], abs=1e-6)  # the same initial weights
    # Same global micro-batches, gradients averaged over ranks: equal up to float summation order.
    for x, y in zip(a[1:], b[1:]):
        assert x == pytest.approx(y, abs=2e-3)
    assert a[-1][2] < a[0][2] - 0.5  # and it did learn
    # Only rank 0 writes.
    written = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert written == ["best.pt", "ckpt.pt", "metrics.jsonl", "model.safetensors"]
