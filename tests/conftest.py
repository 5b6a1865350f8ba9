"""Shared fixtures: small real datasets prepared once per session, tiny model settings, and the real
dump samples of ../shared/data/wikidumps (or gensim's copy of the enwiki ones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the network, and never use more threads than CI's 2 cores.
os.environ.setdefault("WANDB_MODE", "offline")

SHARED_DUMPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikidumps"
# CI (.ci/run sets CI=1) must not pass by skipping: a sample it lacks is a failure there.
IN_CI = bool(os.environ.get("CI"))


def gensim_test_data() -> Path | None:
    """gensim's test-data folder (a dev dependency), which ships the enwiki part-1 excerpt, the table
    markup sample and the bgwiki excerpt, byte for byte the files of ../shared/data/wikidumps/gensim."""
    try:
        import gensim
    except ImportError:
        return None
    folder = Path(gensim.__file__).parent / "test" / "test_data"
    return folder if folder.is_dir() else None


def dump_sample(name: str) -> Path:
    """The dump sample `name`, relative to ../shared/data/wikidumps ("gensim/enwiki-...bz2"). The
    gensim/ files fall back to gensim's own copy, so they are there wherever the dev extra is. A sample
    that is nowhere skips the test with the reason, or fails it under CI."""
    path = SHARED_DUMPS / name
    if path.exists():
        return path
    folder = gensim_test_data()
    if name.startswith("gensim/") and folder is not None and (folder / name.removeprefix("gensim/")).exists():
        return folder / name.removeprefix("gensim/")
    reason = f"dump sample {name} not found in {SHARED_DUMPS} (it lives in ../shared next to the repository)"
    if IN_CI:
        pytest.fail(reason + "; CI must run every test that does not need a GPU", pytrace=False)
    pytest.skip(reason)

# A model small enough that a training step takes milliseconds on one CPU core.
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, gradient_accumulation_steps=2,
            dropout=0.0, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5, lr_decay_iters=60, max_iters=60,
            eval_interval=20, eval_iters=4, log_interval=1, compile=False, device="cpu", beta2=0.99)


@pytest.fixture(scope="session", autouse=True)
def _private_growgpt_cache(tmp_path_factory):
    """The measured CPU peak is cached per machine: the suite's copy (and its subprocesses') stays out
    of ~/.cache."""
    os.environ["GROWGPT_CACHE_DIR"] = str(tmp_path_factory.mktemp("growgpt-cache"))


@pytest.fixture(scope="session")
def char_data(tmp_path_factory) -> Path:
    """The built-in corpus (Python language reference), char-level."""
    from python_reference import python_reference_documents
    from growgpt.prepare import prepare

    out = tmp_path_factory.mktemp("char_data")
    prepare([], str(out), tokenizer="char", documents=python_reference_documents(), progress=False)
    return out


@pytest.fixture(scope="session")
def gpt2_data(tmp_path_factory) -> Path:
    """A few documents of the built-in corpus, GPT-2 BPE."""
    from python_reference import python_reference_documents
    from growgpt.prepare import prepare

    out = tmp_path_factory.mktemp("gpt2_data")
    docs = list(python_reference_documents())[:30]
    prepare([], str(out), tokenizer="gpt2", documents=docs, progress=False, val_fraction=0.2)
    return out


@pytest.fixture
def tiny_settings(char_data, tmp_path):
    def make(**overrides):
        return {**TINY, "dataset": str(char_data), "out_dir": str(tmp_path / "run"), **overrides}
    return make
