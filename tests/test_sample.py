"""Sampling from a trained run: reproducible with a seed, prompts from files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from growgpt.config import load_config
from growgpt.errors import UserError
from growgpt.sample import sample
from growgpt.train import train


@pytest.fixture(scope="module")
def trained_run(char_data, tmp_path_factory):
    from conftest import TINY

    run = tmp_path_factory.mktemp("run")
    train(load_config(base=dict(TINY, dataset=str(char_data), out_dir=str(run), max_iters=40)), verbose=False)
    return run


def test_sampling_is_reproducible_with_a_seed(trained_run):
    a = sample(str(trained_run), start="The ", num_samples=2, max_new_tokens=40, seed=7, device="cpu")
    b = sample(str(trained_run), start="The ", num_samples=2, max_new_tokens=40, seed=7, device="cpu")
    c = sample(str(trained_run), start="The ", num_samples=2, max_new_tokens=40, seed=8, device="cpu")
    assert a == b and a != c
    assert all(t.startswith("The ") and len(t) == 44 for t in a)  # char-level: one char per token
    assert a[0] != a[1]  # successive samples differ


def test_prompt_from_file_and_greedy(trained_run, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("def ", encoding="utf-8")
    greedy = sample(str(trained_run), start=f"FILE:{prompt}", num_samples=2, max_new_tokens=20, temperature=0,
                    device="cpu", seed=1)
    assert greedy[0] == greedy[1] and greedy[0].startswith("def ")
    with pytest.raises(UserError, match=r"prompt file not found: .*missing.txt"):
        sample(str(trained_run), start=f"FILE:{tmp_path / 'missing.txt'}", device="cpu")


def test_sample_errors(trained_run, tmp_path):
    with pytest.raises(UserError, match=r"run folder not found"):
        sample(str(tmp_path / "nope"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no checkpoint in .*empty"):
        sample(str(tmp_path / "empty"), device="cpu")
    with pytest.raises(UserError, match=r"not in the char vocabulary"):
        sample(str(trained_run), start="\u2603 snowman", device="cpu")


def test_sampling_from_the_exported_safetensors_equals_the_checkpoint(trained_run):
    from growgpt.checkpoint import SAFETENSORS

    weights = Path(trained_run) / SAFETENSORS
    assert weights.is_file()
    a = sample(str(trained_run), start="The ", num_samples=2, max_new_tokens=20, seed=3, device="cpu",
               checkpoint="best")
    b = sample(str(trained_run), start="The ", num_samples=2, max_new_tokens=20, seed=3, device="cpu",
               checkpoint=str(weights))
    assert a == b


def test_top_k_zero_is_no_cut_and_negative_is_refused(trained_run):
    kwargs = dict(start="The ", num_samples=2, max_new_tokens=20, seed=3, device="cpu")
    assert sample(str(trained_run), top_k=0, **kwargs) == sample(str(trained_run), top_k=None, **kwargs)
    with pytest.raises(UserError, match=r"--top-k must be >= 0 \(0: no top-k cut\), got -1"):
        sample(str(trained_run), top_k=-1, **kwargs)


def test_cli_takes_the_run_as_a_positional_too(trained_run, capsys):
    from growgpt.cli import main

    args = ["--start", "The ", "--num-samples", "1", "--max-new-tokens", "10", "--temperature", "0", "--device", "cpu"]
    main(["sample", str(trained_run), *args])
    positional = capsys.readouterr().out
    main(["sample", "--run", str(trained_run), *args])
    assert capsys.readouterr().out == positional and positional.startswith("The ")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(trained_run), "--run", str(trained_run) + "-other", *args])
    assert exit_info.value.code == 2
    assert "two run folders given" in capsys.readouterr().err
