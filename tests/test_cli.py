"""The command line: real subprocesses, one-line errors, non-zero exits, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest


def growgpt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "growgpt", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(proc, pattern):
    import re

    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_prepare_train_sample_end_to_end(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"{i}.txt").write_text(f"Document {i}. " + "The cat sat on the mat. " * (5 + i), encoding="utf-8")
    proc = growgpt("prepare", str(docs), "--out", str(tmp_path / "data"), "--tokenizer", "char", "--val-fraction", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "val" in proc.stdout
    config = tmp_path / "c.toml"
    config.write_text(f'dataset = "{tmp_path / "data"}"\nout_dir = "{tmp_path / "run"}"\ncompile = false\n'
                      "device = 'cpu'\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 16\nbatch_size = 4\n"
                      "gradient_accumulation_steps = 1\nmax_iters = 10\neval_interval = 5\neval_iters = 2\n")
    proc = growgpt("train", str(config), "--set", "log_interval=5")
    assert proc.returncode == 0, proc.stderr
    assert "iter 9: loss" in proc.stdout and "tok/s" in proc.stdout and "mfu" in proc.stdout
    assert "val loss" in proc.stdout and "(ppl" in proc.stdout
    proc = growgpt("sample", "--run", str(tmp_path / "run"), "--start", "The", "--num-samples", "2",
                   "--max-new-tokens", "10", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("---------------") == 2


def test_user_errors_are_one_line(tmp_path):
    assert_one_line_error(growgpt("train", "--set", "dataset=x", "--set", "bacth_size=2"),
                          r"unknown config key 'bacth_size' in --set \(did you mean 'batch_size'\?\)")
    assert_one_line_error(growgpt("train", "--set", f"dataset={tmp_path}"), r"no manifest.json")
    assert_one_line_error(growgpt("prepare", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "d")),
                          r"missing.txt")
    assert_one_line_error(growgpt("sample", "--run", str(tmp_path / "nope")), r"run folder not found")
