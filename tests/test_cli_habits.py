"""Command-line habits: --version, a generated key list in `train --help`, nanoGPT's `--key=value`
overrides, nanoGPT `.py` configs refused, `prepare --quiet`, informative W&B run names."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

import growgpt
import growgpt.train
from growgpt.cli import main
from growgpt.config import FIELD_HELP, TrainConfig, default_run_name, load_config


def run_main(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr); 0 when it returned normally."""
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("growgpt: error: ") and "Traceback" not in err, err
    assert re.search(pattern, err), err


@pytest.fixture
def captured(monkeypatch):
    """Replaces the trainer: records the config `growgpt train` would train with."""
    seen = []

    def fake_train(cfg, overwrite=False, progress=True):
        seen.append(cfg)
        return {"iter_num": 0, "best_val_loss": 0.0, "out_dir": cfg.out_dir}

    monkeypatch.setattr(growgpt.train, "train", fake_train)
    return seen


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'dataset = "{tmp_path}"\nout_dir = "{tmp_path / "run"}"\nbatch_size = 4\n')
    return path


# --- 1. --version -------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag, capsys):
    from importlib.metadata import version

    code, out, _ = run_main([flag], capsys)
    assert code == 0 and out.strip() == f"growgpt {version('growgpt')}"
    assert re.fullmatch(r"growgpt \d+\.\d+\.\d+\S*", out.strip())


def test_version_falls_back_to_the_package(monkeypatch):
    import importlib.metadata

    from growgpt.cli import installed_version

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert installed_version() == growgpt.__version__


# --- 2. help generated from the dataclass ---------------------------------------------------------

def test_every_config_key_has_a_one_line_meaning():
    names = [f.name for f in fields(TrainConfig)]
    assert set(FIELD_HELP) == set(names), set(FIELD_HELP) ^ set(names)
    for name in names:
        assert FIELD_HELP[name].strip() and "\n" not in FIELD_HELP[name], name


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_train_help_lists_every_key_with_its_default_and_meaning(capsys):
    code, out, _ = run_main(["train", "--help"], capsys)
    assert code == 0
    for f in fields(TrainConfig):
        line = re.search(rf"^\s+{f.name} = (.+?)\s\s+(.+)$", out, re.MULTILINE)
        assert line, f"{f.name} missing from train --help"
        assert line.group(1) == _toml(f.default), (f.name, line.group(1))
        assert line.group(2) == FIELD_HELP[f.name]
    assert "--batch_size=8" in out  # the nanoGPT override style is documented


def test_other_options_show_their_defaults_once(capsys):
    _, out, _ = run_main(["sample", "--help"], capsys)
    flat = " ".join(out.split())
    for text in ("(default: 0.8)", "(default: 200)", "(default: 1337)", "(default: auto)"):
        assert text in flat, text
    _, out, _ = run_main(["prepare", "--help"], capsys)
    flat = " ".join(out.split())
    assert "(default: 0.1)" in flat and "(default: 1337)" in flat
    _, out, _ = run_main(["extract", "--help"], capsys)
    flat = " ".join(out.split())
    assert "(default 100)" in flat and "(default: 100)" not in flat  # already stated: not repeated


# --- 3. nanoGPT's --key=value overrides ----------------------------------------------------------

def test_nanogpt_overrides_are_parsed_like_set(config, captured, capsys):
    code, _, err = run_main(["train", str(config), "--batch_size=8", "--compile=False", "--bias=True",
                             "--learning_rate=1e-3", "--max_iters=2e3", "--set", "n_layer=2",
                             "--init_from='resume'"], capsys)
    assert code == 0, err
    cfg = captured[-1]
    assert (cfg.batch_size, cfg.compile, cfg.bias, cfg.learning_rate, cfg.max_iters, cfg.n_layer) == \
        (8, False, True, 1e-3, 2000, 2)
    assert cfg.init_from == "resume"


def test_overrides_apply_in_command_line_order(config, captured, capsys):
    run_main(["train", str(config), "--set", "batch_size=4", "--batch_size=8"], capsys)
    run_main(["train", str(config), "--batch_size=8", "--set", "batch_size=4"], capsys)
    assert [cfg.batch_size for cfg in captured] == [8, 4]


@pytest.mark.parametrize("args, pattern", [
    (["--bacth_size=8"], r"unknown config key 'bacth_size' in --bacth_size=8 \(did you mean 'batch_size'\?\)"),
    (["--batch_size=big"], r"config key 'batch_size' \(--batch_size=big\) expects int, got 'big'"),
    (["--compile=maybe"], r"config key 'compile' \(--compile=maybe\) expects bool"),
    (["--batch_size=0"], r"config key 'batch_size' must be > 0"),
    (["--batch_size", "8"], r"--batch_size needs its value after '=': write --batch_size=VALUE"),
])
def test_nanogpt_override_mistakes_are_one_line(config, captured, capsys, args, pattern):
    code, _, err = run_main(["train", str(config), *args], capsys)
    assert_one_line_error(code, err, pattern)
    assert not captured


def test_set_errors_unchanged(config, captured, capsys):
    code, _, err = run_main(["train", str(config), "--set", "bacth_size=2"], capsys)
    assert_one_line_error(code, err, r"unknown config key 'bacth_size' in --set \(did you mean 'batch_size'\?\)")


def test_nanogpt_style_only_for_train(capsys, tmp_path):
    code, _, err = run_main(["prepare", str(tmp_path), "--out", str(tmp_path / "d"), "--batch_size=8"], capsys)
    assert code == 2 and "unrecognized arguments: --batch_size=8" in err


# --- 4. config files that are not TOML -----------------------------------------------------------

def test_a_nanogpt_py_config_is_refused_even_when_it_parses_as_toml(tmp_path, captured, capsys):
    path = tmp_path / "train_shakespeare_char.py"
    path.write_text(f'dataset = "{tmp_path}"\nbatch_size = 8\n')  # valid TOML too
    code, _, err = run_main(["train", str(path)], capsys)
    assert_one_line_error(code, err, r"train_shakespeare_char.py is Python \(nanoGPT's format\); growgpt reads "
                                     r"TOML: .*train_shakespeare_char.toml")
    assert not captured
    path.with_suffix(".PY").write_text(path.read_text())
    code, _, err = run_main(["train", str(path.with_suffix(".PY"))], capsys)
    assert_one_line_error(code, err, r"is Python")


def test_other_suffixes_are_read_only_when_they_are_toml(tmp_path, captured, capsys):
    good = tmp_path / "c.cfg"
    good.write_text(f'dataset = "{tmp_path}"\nbatch_size = 3\n')
    code, _, err = run_main(["train", str(good)], capsys)
    assert code == 0 and captured[-1].batch_size == 3, err
    bad = tmp_path / "c.json"
    bad.write_text('{"dataset": "d"}')
    code, _, err = run_main(["train", str(bad)], capsys)
    assert_one_line_error(code, err, r"c.json is not a TOML config \(growgpt reads TOML; name it .toml\)")
    code, _, err = run_main(["train", str(tmp_path / "missing.cfg")], capsys)
    assert_one_line_error(code, err, r"config file not found: .*missing.cfg")


# --- 5. prepare --quiet ----------------------------------------------------------------------------

def test_prepare_quiet_hides_progress_bars(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"{i}.txt").write_text(f"Document {i}. " + "The cat sat on the mat. " * 20, encoding="utf-8")
    code, out, err = run_main(["prepare", str(docs), "--out", str(tmp_path / "loud"), "--tokenizer", "char"], capsys)
    assert code == 0 and "tokenize" in err, err  # the bar is there without --quiet
    code, out, err = run_main(["prepare", str(docs), "--out", str(tmp_path / "quiet"), "--tokenizer", "char",
                               "--quiet"], capsys)
    assert code == 0 and "wrote" in out
    assert err == "", err


def test_prepare_quiet_reaches_the_library(tmp_path, capsys, monkeypatch):
    import growgpt.prepare

    seen = {}

    def fake_prepare(inputs, out, **kwargs):
        seen.update(kwargs)
        return {"splits": {s: {"tokens": 0, "documents": 0} for s in ("train", "val")},
                "tokenizer": {"name": "char"}, "vocab_size": 1, "dtype": "uint16"}

    monkeypatch.setattr(growgpt.prepare, "prepare", fake_prepare)
    run_main(["prepare", str(tmp_path), "--out", str(tmp_path / "d"), "--quiet"], capsys)
    assert seen["progress"] is False
    run_main(["prepare", str(tmp_path), "--out", str(tmp_path / "d")], capsys)
    assert seen["progress"] is True


# --- 6. W&B run names --------------------------------------------------------------------------------

def test_wandb_run_name_defaults_to_out_dir_and_time(tmp_path):
    cfg = load_config(None, ["dataset=d", f"out_dir={tmp_path / 'exp-small'}", "wandb_log=true"])
    assert re.fullmatch(r"exp-small-\d{8}-\d{6}", cfg.wandb_run_name), cfg.wandb_run_name
    cfg = load_config(None, ["dataset=d", "out_dir=x", "wandb_log=true", "wandb_run_name=mine"])
    assert cfg.wandb_run_name == "mine"  # a name the user set is kept
    cfg = load_config(None, ["dataset=d", "out_dir=x", "wandb_log=true", "wandb_run_name="])
    assert cfg.wandb_run_name.startswith("x-")  # "" means "choose one"
    assert load_config(None, ["dataset=d"]).wandb_run_name == ""  # no W&B: nothing is made up


def test_default_run_name_of_a_bare_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_run_name(".", now=0).startswith(f"{tmp_path.name}-")
    assert default_run_name("runs/a/", now=0).startswith("a-")


def test_wandb_run_name_through_the_cli(config, captured, capsys):
    run_main(["train", str(config), "--wandb_log=True", "--out_dir=grow/stage1"], capsys)
    assert re.fullmatch(r"stage1-\d{8}-\d{6}", captured[-1].wandb_run_name)


def test_export_command_errors_are_one_line(tmp_path, capsys):
    """`growgpt export` is wired to growgpt.export: a missing run is one error line, exit 2 (the export
    itself is tested through transformers in tests/test_export.py)."""
    from growgpt.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--run", str(tmp_path / "nope"), "--to", str(tmp_path / "hf")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("growgpt: error:") == 1 and "Traceback" not in err and "nope" in err
    assert not (tmp_path / "hf").exists()


def test_an_error_never_shares_a_line_with_a_progress_bar(tmp_path, capsys, monkeypatch):
    """A bar the error interrupted is closed first: the error line holds the message and nothing of
    the bar (before, "tokenize:  40%|####  | growgpt: error: ..." on one line)."""
    import sys

    from tqdm import tqdm

    import growgpt.prepare
    from growgpt.cli import main
    from growgpt.errors import UserError

    def half_done(inputs, out, **kwargs):
        bar = tqdm(total=10, desc="tokenize", file=sys.stderr)  # leave=True: its close ends the line
        bar.update(4)
        raise UserError(f"{inputs[0]}: broken in the middle")

    monkeypatch.setattr(growgpt.prepare, "prepare", half_done)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", str(tmp_path / "a.txt"), "--out", str(tmp_path / "d"), "--tokenizer", "char"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    last = err.rstrip("\n").split("\n")[-1]
    assert last == f"growgpt: error: {tmp_path / 'a.txt'}: broken in the middle", repr(err)
    assert "tokenize" in err  # the bar was there, on a line of its own
