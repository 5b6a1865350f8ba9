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
    proc = growgpt("prepare", str(docs), "--out", str(tmp_path / "data"), "--tokenizer", "char",
                   "--val-fraction", "0.2")
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


def test_dump_extract_and_grow_commands(tmp_path):
    import hashlib
    import json

    from conftest import write_dump_parts

    day = tmp_path / "mirror" / "testwiki" / "20250101"
    raw = write_dump_parts(day)
    files = {p.name: {"size": p.stat().st_size, "url": "", "sha1": hashlib.sha1(p.read_bytes()).hexdigest()}
             for p in raw}
    (day / "dumpstatus.json").write_text(json.dumps({"jobs": {"articlesdump": {"status": "done", "files": files}}}))
    mirror = str(tmp_path / "mirror")
    proc = growgpt("dumps", "list", "--wiki", "testwiki", "--date", "20250101", "--mirror", mirror)
    assert proc.returncode == 0, proc.stderr
    assert all(p.name in proc.stdout for p in raw) and "p10p35" in proc.stdout
    proc = growgpt("fetch", "--wiki", "testwiki", "--date", "20250101", "--parts", "1-2", "--to",
                   str(tmp_path / "raw"), "--mirror", mirror, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "raw").glob("*.bz2")) == sorted(p.name for p in raw[:2])
    assert_one_line_error(growgpt("fetch", "--wiki", "testwiki", "--date", "20250101", "--parts", "9", "--to",
                                  str(tmp_path / "raw"), "--mirror", mirror), r"part.*9.*available parts: 1-3")
    proc = growgpt("extract", *[str(p) for p in (tmp_path / "raw").glob("*.bz2")], "--out", str(tmp_path / "text"),
                   "--processes", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = growgpt("prepare", str(tmp_path / "text"), "--out", str(tmp_path / "tokens"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("tokenized") == 2
    proc = growgpt("prepare", str(tmp_path / "text"), "--out", str(tmp_path / "tokens"))
    assert proc.stdout.count("already tokenized, unchanged") == 2
    assert_one_line_error(growgpt("extract", str(tmp_path / "nope.xml.bz2"), "--out", str(tmp_path / "t2")),
                          r"nope\.xml\.bz2")
    assert_one_line_error(growgpt("grow", str(tmp_path / "plan.toml"), "--workdir", str(tmp_path / "w")),
                          r"plan file not found")
    (tmp_path / "bad.toml").write_text("[model]\nn_layer = 1\n")
    assert_one_line_error(growgpt("estimate", str(tmp_path / "bad.toml")), r"\[model\] of .*bad.toml must set 'n_head'")


LONG = "é" * 300  # 600 bytes: longer than any file name the filesystem allows


@pytest.mark.parametrize("argv", [
    ["extract", LONG, "--out", "o"], ["prepare", LONG, "--out", "o"], ["train", "--set", f"dataset={LONG}"],
    ["sample", "--run", LONG], ["report", LONG], ["estimate", LONG], ["grow", LONG, "--workdir", "w"],
    ["dropped", LONG], ["dumps", "list", "--wiki", "enwiki", "--date", "20250101", "--mirror", LONG],
    ["fetch", "--wiki", "enwiki", "--date", "20250101", "--mirror", LONG, "--parts", "1", "--to", "t"],
    ["demo", "--dump", LONG, "--workdir", "w"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_path_the_os_refuses_is_one_line_in_every_command(argv, tmp_path, monkeypatch, capsys):
    """A name too long for the filesystem (the OS's ENAMETOOLONG, wherever it is first touched) is the
    user's to fix: one line naming it, exit 2, no traceback."""
    from growgpt.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("growgpt: error: ") and "éééé" in err
    assert len(err) < 400  # the 600-byte name is shortened, not printed whole
