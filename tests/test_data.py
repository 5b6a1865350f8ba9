"""The training sampler: batches are a pure function of (seed, split, iteration, micro-step), so resume
and DDP need no sampler state; windows stay inside one shard; a corpus mixes its parts by fixed weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from growgpt.data import MixtureSplit, TokenData, eval_generator, micro_batch_generator, mixture_weights
from growgpt.errors import UserError
from growgpt.prepare import prepare

ROOT = Path(__file__).resolve().parents[1]
BATCH, BLOCK = 4, 16


def _part(folder: Path, letter: str, count: int = 30, shard_tokens: int = 2**27) -> Path:
    """A bytes-tokenizer dataset whose text is only `letter`, spaces and newlines: a row's bytes say
    which part it came from."""
    docs = [(f"{letter}{i}", (letter * (10 + i) + " ") * 4 + "\n") for i in range(count)]
    prepare([], folder, tokenizer="bytes", documents=docs, val_fraction=0.3, seed=1, progress=False,
            shard_tokens=shard_tokens)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A corpus of three parts: `a` (30 documents), `b` (60 documents) and `c` (30)."""
    root = tmp_path_factory.mktemp("corpus")
    _part(root / "a", "a")
    _part(root / "b", "b", count=60)
    _part(root / "c", "c")
    return root


def _batch(data: TokenData, seed: int, split: str, iteration: int, micro_step: int):
    return data.split(split).batch(micro_batch_generator(seed, split, iteration, micro_step), BATCH, BLOCK)


def _same(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a, b))


# --------------------------------------------------------------------------------------------
# The generators


def _draws(gen: np.random.Generator) -> list[int]:
    return gen.integers(0, 2**62, size=8).tolist()


def test_the_generator_is_a_pure_function_of_its_coordinates():
    coords = (1337, "train", 7, 3)
    first = _draws(micro_batch_generator(*coords))
    assert _draws(micro_batch_generator(*coords)) == first
    # ... in a fresh process too: nothing global (no seeding order, no hash randomisation) enters.
    code = ("from growgpt.data import micro_batch_generator as g; "
            "print(g(1337, 'train', 7, 3).integers(0, 2**62, size=8).tolist())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(first)
    others = [(1338, "train", 7, 3), (1337, "val", 7, 3), (1337, "train", 8, 3), (1337, "train", 7, 4),
              (1337, "train", 3, 7)]
    draws = [first] + [_draws(micro_batch_generator(*c)) for c in others]
    assert len({tuple(d) for d in draws}) == len(draws)  # every coordinate matters, and in its place


def test_evaluation_batches_are_apart_from_training_batches():
    assert _draws(eval_generator(1337, "val", 2)) == _draws(eval_generator(1337, "val", 2))
    assert _draws(eval_generator(1337, "val", 2)) != _draws(eval_generator(1337, "train", 2))
    assert _draws(eval_generator(1337, "train", 0)) != _draws(micro_batch_generator(1337, "train", 0, 0))
    with pytest.raises(KeyError):
        micro_batch_generator(1337, "test", 0, 0)


# --------------------------------------------------------------------------------------------
# Batches


def test_a_batch_is_a_pure_function_of_seed_split_iteration_and_micro_step(char_data):
    one, other = TokenData(char_data), TokenData(char_data)  # two readers of the same dataset
    x, y = _batch(one, 5, "train", 10, 1)
    assert x.shape == y.shape == (BATCH, BLOCK) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one token
    assert _same(_batch(other, 5, "train", 10, 1), (x, y))
    for coords in ((6, "train", 10, 1), (5, "val", 10, 1), (5, "train", 11, 1), (5, "train", 10, 2)):
        assert not _same(_batch(one, *coords), (x, y)), coords


def test_resuming_at_iteration_k_draws_what_an_uninterrupted_run_draws(char_data):
    accumulation, iterations, resume_at = 3, 8, 5
    data = TokenData(char_data)
    uninterrupted = {}
    for it in range(iterations):
        for k in range(accumulation):
            uninterrupted[it, k] = _batch(data, 1337, "train", it, k)
        if it % 2 == 0:  # evaluations in between draw from their own generators
            data.val.batch(eval_generator(1337, "val", 0), BATCH, BLOCK)
        np.random.default_rng().random(100)  # nor does any other randomness move the sampler
    resumed = TokenData(char_data)  # a new process: a fresh reader, only the iteration carried over
    for it in range(resume_at, iterations):
        for k in range(accumulation):
            assert _same(_batch(resumed, 1337, "train", it, k), uninterrupted[it, k]), (it, k)


def test_ranks_taking_every_world_th_micro_step_see_the_batches_of_one_process(char_data):
    data, accumulation, world = TokenData(char_data), 4, 2
    one_process = [_batch(data, 3, "train", 9, k) for k in range(accumulation)]
    ranks = {k * world + rank: _batch(data, 3, "train", 9, k * world + rank)
             for rank in range(world) for k in range(accumulation // world)}
    assert sorted(ranks) == list(range(accumulation))
    assert all(_same(ranks[k], one_process[k]) for k in range(accumulation))


def test_windows_never_cross_a_shard_boundary(tmp_path):
    # Text in which every 17-byte window is unique, cut into shards of 100 tokens.
    docs = [(f"d{i}", " ".join(f"w{i}x{j}" for j in range(12))) for i in range(30)]
    prepare([], tmp_path / "d", tokenizer="bytes", documents=docs, val_fraction=0.3, progress=False, shard_tokens=100)
    data = TokenData(tmp_path / "d")
    shards = [np.asarray(s, dtype=np.int64) for s in data.train.splits[0].shards]
    assert len(shards) > 5 and all(len(s) <= 100 for s in shards)
    inside = {tuple(s[i:i + BLOCK + 1]) for s in shards for i in range(len(s) - BLOCK)}
    stream = np.concatenate(shards)
    crossing = {tuple(stream[i:i + BLOCK + 1]) for i in range(len(stream) - BLOCK)} - inside
    assert len(crossing) > 5 * BLOCK  # windows the sampler could draw if it ignored the boundaries
    for it in range(50):
        x, y = _batch(data, 0, "train", it, 0)
        assert all(tuple(row) in inside for row in torch.cat([x, y[:, -1:]], dim=1).tolist())


def test_a_block_size_larger_than_every_shard_is_refused(tmp_path):
    data = TokenData(_part(tmp_path / "d", "a", shard_tokens=40))
    data.check_block_size(39)
    with pytest.raises(UserError, match=r"'block_size' \(40\) is larger than the data: the longest train shard"):
        data.check_block_size(40)


# --------------------------------------------------------------------------------------------
# A corpus of parts: the mixture


def _parts(tokens: dict[str, int]) -> list:
    return [SimpleNamespace(name=name, train=SimpleNamespace(tokens=n)) for name, n in tokens.items()]


def test_mixture_weights_follow_replay_and_new_fraction():
    parts = _parts({"p1": 100, "p2": 300, "p3": 600})
    assert mixture_weights(parts, "proportional", [], 0.0) == [100.0, 300.0, 600.0]
    assert mixture_weights(parts, "uniform", [], 0.0) == [1.0, 1.0, 1.0]
    # new_fraction: the new parts share it, the old ones the rest, each group by the replay rule.
    w = mixture_weights(parts, "proportional", ["p3"], 0.25)
    assert w == pytest.approx([0.75 * 100 / 400, 0.75 * 300 / 400, 0.25]) and sum(w) == pytest.approx(1.0)
    w = mixture_weights(parts, "uniform", ["p2", "p3"], 0.5)
    assert w == pytest.approx([0.5, 0.25, 0.25])
    # No split to make (every part new, none new, or no fraction): the replay rule alone.
    assert mixture_weights(parts, "uniform", ["p1", "p2", "p3"], 0.5) == [1.0, 1.0, 1.0]
    assert mixture_weights(parts, "proportional", ["other"], 0.5) == [100.0, 300.0, 600.0]
    assert mixture_weights(parts, "proportional", ["p3"], 0.0) == [100.0, 300.0, 600.0]


def _letters(batch) -> set[str]:
    x, _ = batch
    return {chr(v) for v in x.unique().tolist() if v < 256} - {" ", "\n"}


def test_a_corpus_mixes_its_parts_by_normalised_weights(corpus):
    data = TokenData(corpus)
    assert [p.name for p in data.parts] == ["a", "b", "c"]
    tokens = [p.train.tokens for p in data.parts]
    assert data.train.weights == pytest.approx(np.array(tokens) / sum(tokens))
    assert data.train.tokens == sum(tokens) and data.val.tokens == sum(p.val.tokens for p in data.parts)
    val_tokens = [p.val.tokens for p in data.parts]
    assert data.val.weights == pytest.approx(np.array(val_tokens) / sum(val_tokens))  # val: by its tokens

    new = TokenData(corpus, parts=["a", "b"], replay="uniform", new_parts=["b"], new_fraction=0.2)
    assert new.train.weights.tolist() == pytest.approx([0.8, 0.2]) and new.train.weights.sum() == pytest.approx(1.0)
    # Each row picks a part by weight, then a window in it: one part's text per row, only `a` and `b`.
    counts = {"a": 0, "b": 0}
    for it in range(20):
        x, y = _batch(new, 0, "train", it, 0)
        for row in x:
            (letter,) = _letters((row, y))
            counts[letter] += 1
    assert counts["a"] > 2 * counts["b"] > 0


def test_a_part_of_zero_weight_is_never_drawn(corpus):
    data = TokenData(corpus)
    mixed = MixtureSplit("train", [p.train for p in data.parts], [0.0, 3.0, 1.0])
    assert mixed.weights.tolist() == [0.0, 0.75, 0.25]
    letters = set()
    for it in range(20):
        letters |= _letters(mixed.batch(micro_batch_generator(0, "train", it, 0), BATCH, BLOCK))
    assert letters == {"b", "c"}


def test_the_corpus_and_its_parts_are_validated(corpus, tmp_path):
    with pytest.raises(UserError, match=r"config key 'parts': .* has no part 'z' \(parts: a, b, c\)"):
        TokenData(corpus, parts=["a", "z"])
    with pytest.raises(UserError, match=r"config key 'parts': .* has no part 'y'"):
        TokenData(corpus, new_parts=["y"], new_fraction=0.5)
    with pytest.raises(UserError, match="is a single dataset, not a corpus of parts"):
        TokenData(corpus / "a", parts=["a"])
    with pytest.raises(UserError, match=r"no manifest\.json .*growgpt prepare"):
        TokenData(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    _part(mixed / "a", "a")
    prepare([], mixed / "b", tokenizer="char", documents=[(f"b{i}", "b" * (10 + i)) for i in range(30)],
            val_fraction=0.3, progress=False)
    with pytest.raises(UserError, match="was prepared with another tokenizer than"):
        TokenData(mixed)
