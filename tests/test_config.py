"""Config: nanoGPT names, TOML + --set, every mistake named."""

from __future__ import annotations

import pytest

from growgpt.config import TrainConfig, load_config
from growgpt.errors import UserError


def test_toml_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('dataset = "d"\nbatch_size = 4\n[model]\nn_layer = 3\nbias = false\nlearning_rate = 1e-3\n')
    cfg = load_config(path, ["batch_size=8", "compile=false", "min_lr=1e-5", "max_iters=2e3"])
    assert (cfg.batch_size, cfg.n_layer, cfg.bias, cfg.learning_rate) == (8, 3, False, 1e-3)
    assert cfg.compile is False and cfg.min_lr == 1e-5 and cfg.max_iters == 2000


def test_nanogpt_key_names_exist():
    names = set(TrainConfig.__dataclass_fields__)
    for key in ("out_dir", "dataset", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias",
                "max_iters", "learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "weight_decay", "beta1",
                "beta2", "grad_clip", "gradient_accumulation_steps", "eval_interval", "eval_iters", "log_interval",
                "always_save_checkpoint", "init_from", "device", "dtype", "compile", "seed", "wandb_log"):
        assert key in names


@pytest.mark.parametrize("overrides, message", [
    (["learnig_rate=1"], r"unknown config key 'learnig_rate' in --set \(did you mean 'learning_rate'\?\)"),
    (["batch_size=big"], r"config key 'batch_size' \(--set\) expects int, got 'big'"),
    (["compile=maybe"], r"config key 'compile' \(--set\) expects bool"),
    (["batch_size=0"], r"config key 'batch_size' must be > 0"),
    (["n_embd=100", "n_head=3"], r"'n_embd' \(100\) must be a multiple of 'n_head' \(3\)"),
    (["device=tpu"], r"config key 'device' must be one of"),
    (["dropout=1.5"], r"config key 'dropout' must be in \[0, 1\)"),
    (["init_from=gpt2"], r"loads GPT-2 weights from disk only"),
    (["batch_size"], r"--set expects key=value"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, ["dataset=d", *overrides])


def test_bad_toml_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("dataset = 'd'\nbatch_sise = 4\n")
    unknown = r"unknown config key 'batch_sise' in .*bad.toml \(did you mean 'batch_size'\?\)"
    with pytest.raises(UserError, match=unknown):
        load_config(path)
    path.write_text("dataset = \n")
    with pytest.raises(UserError, match=r"bad.toml is not valid TOML"):
        load_config(path)
    path.write_text("dataset = 'd'\nbatch_size = '4'\n")
    with pytest.raises(UserError, match=r"config key 'batch_size' \(.*bad.toml\) expects int, got str"):
        load_config(path)
    with pytest.raises(UserError, match=r"config file not found: .*nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_dataset_is_required():
    with pytest.raises(UserError, match=r"config key 'dataset' is required"):
        load_config()
