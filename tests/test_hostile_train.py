"""Hostile inputs to training, checkpoints and metrics (issue 11: B7-B10, C11, C12, D16, D17).

Every refusal is checked the way a user meets it where that is cheap: `growgpt ...` in-process,
exit status 2, exactly one stderr line `growgpt: error: ...` naming the key or the file, and no
traceback. One tiny run is trained per module and copied before each test tampers with it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from growgpt import checkpoint as ckpt_io
from growgpt.cli import main
from growgpt.config import load_config
from growgpt.errors import UserError
from growgpt.metrics import METRICS_FILE, read_metrics, truncate_metrics
from growgpt.train import Trainer, train

RUN_FILES = (ckpt_io.CHECKPOINT, ckpt_io.BEST, ckpt_io.SAFETENSORS, METRICS_FILE)


def _settings(char_data: Path, out_dir: Path, **overrides) -> dict:
    from conftest import TINY

    return {**TINY, "dataset": str(char_data), "out_dir": str(out_dir), "max_iters": 6, "eval_interval": 3,
            "lr_decay_iters": 6, **overrides}


def _set_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    return args


def _cli_error(capsys, argv: list[str], *named: str) -> str:
    """Run `growgpt ARGV`, expect exit 2 with one `growgpt: error:` line naming each of `named`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("growgpt: error: "), err
    assert "Traceback" not in err
    for needle in named:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in RUN_FILES}


@pytest.fixture(scope="module")
def trained(char_data, tmp_path_factory) -> Path:
    """A finished tiny run: ckpt.pt and best.pt at iter 6, model.safetensors, metrics.jsonl."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(load_config(base=_settings(char_data, run)), verbose=False)
    return run


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(trained, target)
    return target


# --- B7: a scratch run never lands on an earlier run -----------------------------------------------

def test_b7_scratch_into_existing_run_refused(run_copy, char_data, capsys):
    before = _snapshot(run_copy)
    line = _cli_error(capsys, ["train", *_set_args(_settings(char_data, run_copy))],
                      str(run_copy), "already holds a run", "ckpt.pt", "--set init_from=resume", "--overwrite")
    assert "metrics.jsonl" in line
    assert _snapshot(run_copy) == before  # checkpoints, weights and metrics untouched
    assert not list(run_copy.parent.glob("run.old-*"))


def test_b7_gpt2_weights_into_existing_run_refused(run_copy, char_data):
    # Refused before the weights are even looked for: the folder is the problem.
    with pytest.raises(UserError, match=r"already holds a run .*from the weights .*nowhere"):
        Trainer(load_config(base=_settings(char_data, run_copy, init_from=str(run_copy / "nowhere"))), verbose=False)


def test_b7_metrics_only_folder_is_refused_too_but_empty_one_is_not(char_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / METRICS_FILE).write_text("")
    Trainer(load_config(base=_settings(char_data, run)), verbose=False)  # an empty log is no earlier run
    (run / METRICS_FILE).write_text('{"kind": "train", "iter": 0, "loss": 4.0, "lr": 0.001, '
                                    '"ms_per_iter": 1.0, "tokens_per_s": 10.0}\n')
    with pytest.raises(UserError, match=r"already holds a run \(metrics.jsonl\).*cannot be resumed .*--overwrite"):
        Trainer(load_config(base=_settings(char_data, run)), verbose=False)


def test_b7_overwrite_moves_old_run_aside_and_starts_fresh(run_copy, char_data, capsys):
    before = _snapshot(run_copy)
    main(["train", "--overwrite", *_set_args(_settings(char_data, run_copy, max_iters=4, eval_interval=2))])
    out = capsys.readouterr().out
    (old,) = run_copy.parent.glob("run.old-*")
    assert f"aside to {old}" in out
    assert _snapshot(old) == before  # the earlier run, whole
    assert ckpt_io.load(run_copy / ckpt_io.CHECKPOINT)["iter_num"] == 4
    evals = [r["iter"] for r in read_metrics(run_copy) if r["kind"] == "eval"]
    assert evals == [0, 2, 4]  # a fresh log, not the old one with a second run appended
    assert "overwrite" not in ckpt_io.load(run_copy / ckpt_io.CHECKPOINT)["config"]  # not a config key


def test_b7_overwrite_name_is_unique(run_copy, monkeypatch):
    import growgpt.train as train_module

    monkeypatch.setattr(train_module.time, "strftime", lambda fmt: "20250101-000000")
    taken = run_copy.with_name("run.old-20250101-000000")
    taken.mkdir()
    (taken / "keep").write_text("x")
    moved = train_module.move_aside(run_copy)
    assert moved.name == "run.old-20250101-000000-2" and (moved / ckpt_io.CHECKPOINT).is_file()
    assert (taken / "keep").read_text() == "x" and not run_copy.exists()


def test_b7_overwrite_with_a_bad_config_moves_nothing(run_copy, char_data):
    with pytest.raises(UserError, match=r"block_size"):
        train(load_config(base=_settings(char_data, run_copy, block_size=10_000_000)), verbose=False, overwrite=True)
    assert (run_copy / ckpt_io.CHECKPOINT).is_file() and not list(run_copy.parent.glob("run.old-*"))


def test_b7_resume_is_not_refused(run_copy, char_data):
    result = train(load_config(base=_settings(char_data, run_copy, init_from="resume", max_iters=8)), verbose=False)
    assert result["iter_num"] == 8


def test_b7_grow_moves_a_changed_stage_aside_instead_of_deleting(run_copy, char_data, capsys):
    from growgpt.grow import STAGE_MARK, run_training

    (run_copy / STAGE_MARK).write_text(json.dumps({"signature": "old-plan"}))
    before = _snapshot(run_copy)
    outcome = run_training(_settings(char_data, run_copy, max_iters=3), run_copy, "new-plan", "scratch", None,
                           verbose=False)
    (old,) = run_copy.parent.glob("run.old-*")
    assert _snapshot(old) == before and f"moved aside to {old}" in capsys.readouterr().out
    assert outcome["iter_num"] == 3
    assert json.loads((run_copy / STAGE_MARK).read_text())["signature"] == "new-plan"


def test_b7_grow_restarts_a_stage_that_died_before_its_first_checkpoint(char_data, tmp_path):
    from growgpt.grow import STAGE_MARK, run_training

    stage = tmp_path / "s1"
    stage.mkdir()
    (stage / STAGE_MARK).write_text(json.dumps({"signature": "sig"}))
    (stage / METRICS_FILE).write_text('{"kind": "eval", "iter": 0, "train_loss": 4.6, "val_loss": 4.6}\n')
    outcome = run_training(_settings(char_data, stage, max_iters=3), stage, "sig", "scratch", None, verbose=False)
    assert outcome["iter_num"] == 3  # not refused as "already holds a run"
    assert [r["iter"] for r in read_metrics(stage) if r["kind"] == "eval"] == [0, 3]


def test_b7_grow_names_a_previous_stage_checkpoint_that_cannot_be_continued(run_copy, tmp_path):
    from growgpt.grow import start_from

    _tamper(run_copy / ckpt_io.CHECKPOINT, _drop("rng"))
    with pytest.raises(UserError, match=f"{run_copy / ckpt_io.CHECKPOINT}.* lacks 'rng'"):
        start_from(run_copy / ckpt_io.CHECKPOINT, tmp_path / "s2" / ckpt_io.CHECKPOINT)


# --- B8: one bad metrics line does not erase the rest ---------------------------------------------

def _train_record(it: int) -> str:
    return json.dumps({"kind": "train", "iter": it, "loss": 3.0, "lr": 1e-3, "ms_per_iter": 2.0,
                       "tokens_per_s": 100.0, "mfu": None})


def test_b8_corrupt_line_11_of_229_keeps_the_other_228(tmp_path, capsys):
    lines = [_train_record(i) for i in range(229)]
    lines[10] = '{"kind": "train", "iter": 10, "lo'  # line 11, cut short
    (tmp_path / METRICS_FILE).write_text("\n".join(lines) + "\n")
    assert truncate_metrics(tmp_path, 229) == 1
    kept = read_metrics(tmp_path)
    assert [r["iter"] for r in kept] == [i for i in range(229) if i != 10]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "skipped 1 unreadable line" in err and str(tmp_path / METRICS_FILE) in err


@pytest.mark.parametrize("bad", [b"\xff\xfe not utf-8", b"[1,2]", b"3", b'"x"', b"null", b'{"kind": "train"}',
                                 b'{"iter": "5"}', b'{"iter": NaN}', b'{"kind": "train", "iter": 2}',
                                 b"[" * 100_000, b"1" * 5000, b'{"iter": ' + b"9" * 400 + b"}",
                                 b'{"kind": "train", "iter": 9, "loss": 1, "lr": 1, "ms_per_iter": 1, '
                                 b'"tokens_per_s": 1, "mfu": "high"}'])
def test_b8_unreadable_lines_are_skipped_by_every_reader(tmp_path, bad):
    from growgpt.config import TrainConfig
    from growgpt.grow import run_stats
    from growgpt.report import curves

    good = [_train_record(i).encode() for i in range(4)]
    (tmp_path / METRICS_FILE).write_bytes(b"\n".join(good[:2] + [bad] + good[2:]) + b"\n")
    assert [r["iter"] for r in read_metrics(tmp_path)] == [0, 1, 2, 3]
    stats = run_stats(tmp_path, TrainConfig(dataset="d"), 0, 4)
    assert stats["tokens_per_s"] == 100.0
    train_points, _ = curves(tmp_path.parent, {"run_dir": tmp_path.name})
    assert [i for i, _ in train_points] == [0, 1, 2, 3]


def test_b8_resume_keeps_valid_history_around_bad_lines(run_copy, char_data, capsys):
    path = run_copy / METRICS_FILE
    original = path.read_bytes().splitlines()
    damaged = original[:3] + [b"\xff garbage", b"[1, 2]"] + original[3:]
    path.write_bytes(b"\n".join(damaged) + b"\n")
    train(load_config(base=_settings(char_data, run_copy, init_from="resume", max_iters=8)), verbose=False)
    err = capsys.readouterr().err
    assert err.count("skipped 2 unreadable line(s)") == 1 and str(path) in err
    records = read_metrics(run_copy)
    assert [json.loads(line) for line in original] == records[:len(original)]  # all 9 old records kept
    assert [r["iter"] for r in records[len(original):] if r["kind"] == "train"] == [6, 7]


# --- B9: a corrupt checkpoint's error never advises weights_only=False -----------------------------

class NotPlainData:  # pickled by reference: weights_only loading refuses it
    pass


def _assert_no_unsafe_advice(message: str) -> None:
    assert "weights_only" not in message and "trust" not in message and "add_safe_globals" not in message


@pytest.mark.parametrize("damage", ["truncated", "garbage", "python object", "raw pickle"])
def test_b9_corrupt_checkpoint_error_names_file_without_weights_only_advice(run_copy, capsys, damage):
    import pickle

    best = run_copy / ckpt_io.BEST
    if damage == "truncated":
        best.write_bytes(best.read_bytes()[:1000])
    elif damage == "garbage":
        best.write_bytes(b"garbage" * 10)
    elif damage == "python object":
        torch.save({"model": {"w": torch.ones(1)}, "x": NotPlainData()}, best)
    else:
        best.write_bytes(pickle.dumps({"model": {}, "x": {1, 2}}, protocol=4))
    line = _cli_error(capsys, ["sample", "--run", str(run_copy), "--checkpoint", "best", "--device", "cpu"],
                      str(best))
    assert "is corrupt or truncated" in line or "is corrupt or not a growgpt checkpoint" in line
    _assert_no_unsafe_advice(line)


def test_b9_gpt2_weights_error_has_no_weights_only_advice(tmp_path):
    from growgpt.model import load_gpt2_weights

    weights = tmp_path / "gpt2" / "pytorch_model.bin"
    weights.parent.mkdir()
    torch.save({"wte.weight": torch.ones(2, 2), "x": NotPlainData()}, weights)
    with pytest.raises(UserError) as info:
        load_gpt2_weights(weights.parent)
    assert str(weights) in str(info.value) and "\n" not in str(info.value)
    _assert_no_unsafe_advice(str(info.value))


# --- B10: hand-made or foreign checkpoints --------------------------------------------------------

def _tamper(path: Path, change) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    change(state)
    torch.save(state, path)


def _drop(key):
    return lambda s: s.pop(key)


def _set_arg(key, value):
    return lambda s: s["model_args"].__setitem__(key, value)


def _shrink_optimizer_moment(state):
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)


TAMPERINGS = {
    "no tokenizer": (_drop("tokenizer"), "'tokenizer'"),
    "no model_args": (_drop("model_args"), "'model_args'"),
    "no optimizer": (_drop("optimizer"), "no optimizer state"),
    "no iter_num": (_drop("iter_num"), "'iter_num'"),
    "no best_val_loss": (_drop("best_val_loss"), "'best_val_loss'"),
    "no config": (_drop("config"), "'config'"),
    "no rng": (_drop("rng"), "'rng'"),
    "iter_num text": (lambda s: s.__setitem__("iter_num", "six"), "'iter_num'"),
    "tokenizer not a dict": (lambda s: s.__setitem__("tokenizer", "char"), "'tokenizer'"),
    "model_args n_layer differs from tensors": (_set_arg("n_layer", 3), "model_args"),
    "model_args unknown key": (_set_arg("n_experts", 8), "n_experts"),
    "model_args wrong type": (_set_arg("n_embd", "32"), "'n_embd'"),
    "model_args huge n_layer": (_set_arg("n_layer", 10**9), "model_args"),
    "model_args not a dict": (lambda s: s.__setitem__("model_args", [1, 2]), "'model_args'"),
    "missing tensor": (lambda s: s["model"].pop("transformer.h.1.mlp.c_fc.weight"), "missing tensor"),
    "extra tensor": (lambda s: s["model"].__setitem__("transformer.h.1.extra", torch.ones(2)), "unexpected tensor"),
    "wrong tensor shape": (lambda s: s["model"].__setitem__("transformer.h.0.attn.c_proj.weight",
                                                           torch.ones(32, 31)), "c_proj.weight has shape"),
    "weights not tensors": (lambda s: s.__setitem__("model", {"w": [1, 2]}), "not a dict of named tensors"),
    "optimizer moment shape": (_shrink_optimizer_moment, "optimizer state"),
    "optimizer groups": (lambda s: s["optimizer"].__setitem__("param_groups", []), "optimizer state"),
    "rng damaged": (lambda s: s["rng"].__setitem__("python", "(("), "'rng'"),
    "config lacks shape key": (lambda s: s["config"].pop("n_head"), "'n_head'"),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_b10_resume_from_a_tampered_checkpoint_is_one_line(run_copy, char_data, capsys, tampering):
    change, named = TAMPERINGS[tampering]
    ckpt = run_copy / ckpt_io.CHECKPOINT
    _tamper(ckpt, change)
    settings = _settings(char_data, run_copy, init_from="resume", max_iters=8)
    _cli_error(capsys, ["train", *_set_args(settings)], str(ckpt), named)


@pytest.mark.parametrize("tampering", ["no tokenizer", "no model_args", "model_args n_layer differs from tensors",
                                       "model_args unknown key", "model_args wrong type", "model_args huge n_layer",
                                       "missing tensor", "extra tensor", "wrong tensor shape"])
def test_b10_sample_from_a_tampered_checkpoint_is_one_line(run_copy, capsys, tampering):
    change, named = TAMPERINGS[tampering]
    best = run_copy / ckpt_io.BEST
    _tamper(best, change)
    _cli_error(capsys, ["sample", "--run", str(run_copy), "--checkpoint", "best", "--device", "cpu"], str(best), named)


def test_b10_sample_refuses_a_tokenizer_larger_than_the_model(run_copy, capsys):
    best = run_copy / ckpt_io.BEST
    _tamper(best, lambda s: s["tokenizer"].__setitem__("chars", "".join(chr(0x4E00 + i) for i in range(300))))
    _cli_error(capsys, ["sample", "--run", str(run_copy), "--checkpoint", "best", "--device", "cpu"],
               str(best), "tokenizer")


@pytest.mark.parametrize("flag, value", [("--temperature", "nan"), ("--temperature", "inf"),
                                         ("--seed", str(2**64))])
def test_b10_sample_numbers_are_checked_before_sampling(trained, capsys, flag, value):
    _cli_error(capsys, ["sample", "--run", str(trained), "--device", "cpu", flag, value], flag)


def _rewrite_safetensors(path: Path, metadata_change=None, tensors_change=None) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if metadata_change:
        metadata_change(metadata)
    if tensors_change:
        tensors_change(tensors)
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("case, metadata_change, tensors_change, named", [
    ("model_args not JSON", lambda m: m.__setitem__("model_args", "{n_layer: 2"), None,
     "'model_args' is not valid JSON"),
    ("no model_args", lambda m: m.pop("model_args"), None, "lacks 'model_args'"),
    ("no tokenizer", lambda m: m.pop("tokenizer"), None, "lacks 'tokenizer'"),
    ("tokenizer not a dict", lambda m: m.__setitem__("tokenizer", "[1]"), None, "'tokenizer'"),
    ("model_args mismatch", lambda m: m.__setitem__("model_args", m["model_args"].replace('"n_layer": 2',
                                                                                          '"n_layer": 5')),
     None, "model_args"),
    ("model_args unknown key", lambda m: m.__setitem__("model_args", m["model_args"].replace("{", '{"rope": true, ')),
     None, "rope"),
    ("no embedding", None, lambda t: t.pop("transformer.wte.weight"), "transformer.wte.weight"),
])
def test_b10_safetensors_with_bad_metadata_is_one_line(run_copy, capsys, case, metadata_change, tensors_change,
                                                       named):
    weights = run_copy / ckpt_io.SAFETENSORS
    _rewrite_safetensors(weights, metadata_change, tensors_change)
    _cli_error(capsys, ["sample", "--run", str(run_copy), "--checkpoint", str(weights), "--device", "cpu"],
               str(weights), named)


def test_b10_untampered_files_still_load(trained):
    from growgpt.sample import load_model

    for name in (ckpt_io.CHECKPOINT, ckpt_io.BEST, ckpt_io.SAFETENSORS):
        model, state = load_model(trained / name)
        assert model.config.n_layer == 2 and state["tokenizer"]["name"] == "char"


# --- C11: numbers a config can hold --------------------------------------------------------------

@pytest.mark.parametrize("setting, key", [
    ("max_iters=1e400", "max_iters"), ("seed=1e30", "seed"), ("seed=18446744073709551616", "seed"),
    ("learning_rate=nan", "learning_rate"), ("grad_clip=nan", "grad_clip"), ("learning_rate=inf", "learning_rate"),
    ("min_lr=-inf", "min_lr"), ("weight_decay=1e999", "weight_decay"), ("peak_flops=nan", "peak_flops"),
    ("n_layer=1.5", "n_layer"), ("n_layer=1.5e0", "n_layer"), ("batch_size=nan", "batch_size"),
    ("max_iters=" + "1" + "0" * 30, "max_iters"), ("eval_iters=1e20", "eval_iters"),
    ("max_iters=" + "9" * 5000, "max_iters"),
])
def test_c11_bad_numbers_on_the_command_line_name_the_key(capsys, tmp_path, setting, key):
    line = _cli_error(capsys, ["train", "--set", f"dataset={tmp_path}", "--set", setting], f"'{key}'")
    assert len(line) < 300


@pytest.mark.parametrize("toml, key", [
    ("n_layer = 1.5", "n_layer"), ("learning_rate = nan", "learning_rate"), ("grad_clip = inf", "grad_clip"),
    ("max_iters = inf", "max_iters"), ("max_iters = 1e30", "max_iters"), ("seed = 1e30", "seed"),
    ("n_layer = {a = 1}", "n_layer"), ("n_layer = [1]", "n_layer"), ("[n_layer]\nx = 1", "n_layer"),
    ("learning_rate = [0.1]", "learning_rate"), ("dropout = nan", "dropout"),
    ("max_iters = 1000000000000000000000000000000", "max_iters"),
])
def test_c11_bad_numbers_in_toml_name_the_key(capsys, tmp_path, toml, key):
    config = tmp_path / "c.toml"
    config.write_text(f'dataset = "{tmp_path}"\n{toml}\n')
    _cli_error(capsys, ["train", str(config)], f"'{key}'")


@pytest.mark.parametrize("base, key", [
    ({"n_layer": 1.5}, "n_layer"), ({"learning_rate": float("nan")}, "learning_rate"),
    ({"max_iters": 10**30}, "max_iters"), ({"seed": 2**64}, "seed"), ({"learning_rate": 10**400}, "learning_rate"),
    ({"warmup_iters": float("inf")}, "warmup_iters"), ({"n_head": {"a": 1}}, "n_head"),
])
def test_c11_bad_numbers_in_base_settings_name_the_key(base, key):
    with pytest.raises(UserError, match=f"'{key}'"):
        load_config(base={"dataset": "d", **base})


def test_c11_whole_numbers_in_float_form_still_work(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('dataset = "d"\nmax_iters = 2e3\nn_layer = 4.0\n')
    cfg = load_config(config, ["eval_interval=1e2", "seed=9223372036854775807"])
    assert (cfg.max_iters, cfg.n_layer, cfg.eval_interval, cfg.seed) == (2000, 4, 100, 2**63 - 1)
    assert type(cfg.n_layer) is int


def test_c11_direct_trainconfig_is_checked_too():
    from growgpt.config import TrainConfig

    with pytest.raises(UserError, match=r"'n_layer' expects int"):
        TrainConfig(dataset="d", n_layer=1.5).validate()
    with pytest.raises(UserError, match=r"'grad_clip' must be a finite number"):
        TrainConfig(dataset="d", grad_clip=float("nan")).validate()


# --- C12: models and batches that cannot fit -----------------------------------------------------

@pytest.mark.parametrize("setting", ["n_layer=1000000000", "n_embd=1000000000", "batch_size=1000000000"])
def test_c12_model_or_batch_too_big_for_memory_is_refused_before_allocating(char_data, tmp_path, capsys, setting):
    import time

    settings = _settings(char_data, tmp_path / "run")
    t0 = time.perf_counter()
    line = _cli_error(capsys, ["train", *_set_args(settings), "--set", setting],
                      "memory", "n_layer", "n_embd", "batch_size", "block_size")
    assert time.perf_counter() - t0 < 20  # arithmetic, not an attempt to allocate
    assert "RAM has" in line
    assert not (tmp_path / "run").exists()


def test_c12_memory_check_passes_tiny_and_demo_shapes(char_data, tmp_path):
    from growgpt.estimate import vram_bytes
    from growgpt.hardware import host_memory_bytes

    Trainer(load_config(base=_settings(char_data, tmp_path / "run")), verbose=False)  # not refused
    demo = vram_bytes(2, 4, 64, 64, 50257, 12, dtype="float32", device="cpu")["total_on_card"]
    assert demo < 2**30 and (host_memory_bytes() is None or demo < host_memory_bytes())


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                 "you tried to allocate 4000000000000 bytes."),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000000000000 bytes."),
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    MemoryError(),
])
def test_c12_out_of_memory_while_allocating_the_model_is_one_line(char_data, tmp_path, monkeypatch, error):
    import growgpt.train as train_module

    def no_memory(config):
        raise error

    monkeypatch.setattr(train_module, "GPT", no_memory)
    with pytest.raises(UserError, match=r"out of memory while allocating the model \(n_layer=2, n_embd=32\).*"
                                        r"n_layer or n_embd.*batch_size=8.*block_size=32"):
        Trainer(load_config(base=_settings(char_data, tmp_path / "run")), verbose=False)


def test_c12_other_runtime_errors_keep_their_traceback(char_data, tmp_path, monkeypatch):
    import growgpt.train as train_module

    def bug(config):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(train_module, "GPT", bug)
    with pytest.raises(RuntimeError, match="a real bug"):
        Trainer(load_config(base=_settings(char_data, tmp_path / "run")), verbose=False)


# --- D16 / D17: how metrics and weights are written ----------------------------------------------

def test_d16_metrics_rewrite_is_atomic_and_durable(tmp_path, monkeypatch):
    import growgpt.metrics as metrics_module

    written = []
    real = metrics_module.atomic_write_bytes
    monkeypatch.setattr(metrics_module, "atomic_write_bytes", lambda path, data: (written.append(path),
                                                                                   real(path, data)))
    (tmp_path / METRICS_FILE).write_text("\n".join(_train_record(i) for i in range(5)) + "\n")
    truncate_metrics(tmp_path, 3)
    assert written == [tmp_path / METRICS_FILE]
    assert [r["iter"] for r in read_metrics(tmp_path)] == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [METRICS_FILE]  # no metrics.jsonl.tmp left behind


def test_d17_safetensors_mode_equals_the_other_outputs(trained, tmp_path):
    modes = {name: stat.S_IMODE((trained / name).stat().st_mode) for name in RUN_FILES}
    assert len(set(modes.values())) == 1, modes
    old = os.umask(0o027)
    try:
        state = ckpt_io.load(trained / ckpt_io.BEST)
        ckpt_io.export_safetensors(state, tmp_path / ckpt_io.SAFETENSORS)
        ckpt_io.atomic_save(state, tmp_path / ckpt_io.BEST)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / ckpt_io.SAFETENSORS).stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / ckpt_io.BEST).stat().st_mode) == 0o640
