"""growgpt.evaluate: a checkpoint's loss, perplexity and bits per byte on fixed val batches.

Every number is checked against a hand computation: the same batches drawn with the public data API,
the model's logits, cross-entropy summed in float64, the target bytes from decoding the ids.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from growgpt import checkpoint as ckpt_io
from growgpt.config import load_config
from growgpt.data import TokenData, eval_generator
from growgpt.errors import UserError
from growgpt.evaluate import evaluate_parts
from growgpt.metrics import MAX_PERPLEXITY_LOSS, bits_per_byte, perplexity
from growgpt.sample import load_model
from growgpt.tokenizer import from_spec
from growgpt.train import train

DRAW = dict(batches=3, batch_size=4, seed=7)


@pytest.fixture(scope="module")
def char_run(char_data, tmp_path_factory) -> Path:
    from conftest import TINY

    run = tmp_path_factory.mktemp("evaluate") / "run"
    settings = dict(TINY, dataset=str(char_data), out_dir=str(run), max_iters=10, eval_interval=5, eval_iters=1)
    train(load_config(base=settings), verbose=False)
    return run


def _evaluate(checkpoint, data_dir, **overrides) -> dict:
    return evaluate_parts(checkpoint, data_dir, {"all": []}, {}, device="cpu", **{**DRAW, **overrides})


def _by_hand(checkpoint, data_dir, batches: int, batch_size: int, seed: int) -> list[tuple[float, int, int]]:
    """(nats, UTF-8 bytes, tokens) of each val batch the evaluation draws, from the model's logits."""
    model, state = load_model(checkpoint)
    tokenizer = from_spec(state["tokenizer"])
    data = TokenData(data_dir)
    block_size = model.config.block_size
    out = []
    for i in range(batches):
        x, y = data.val.batch(eval_generator(seed, "val", i), batch_size, block_size)
        with torch.no_grad():
            logits, _ = model(x, y)
        nats = F.cross_entropy(logits.double().view(-1, logits.size(-1)), y.view(-1), reduction="sum").item()
        text = tokenizer.decode([t for t in y.flatten().tolist() if t != tokenizer.separator_id])
        out.append((nats, len(text.encode("utf-8")), y.numel()))
    return out


def test_loss_ppl_and_bpb_equal_a_forward_pass_by_hand(char_run, char_data):
    score = _evaluate(char_run, char_data)["parts"]["all"]
    hand = _by_hand(char_run, char_data, **DRAW)
    nats, n_bytes, tokens = (sum(column) for column in zip(*hand))
    assert score["batch_nats"] == pytest.approx([h[0] for h in hand], rel=1e-5)
    assert score["batch_bytes"] == [h[1] for h in hand]
    assert score["batch_tokens"] == [h[2] for h in hand] == [4 * 32] * 3  # batch_size x TINY's block_size
    assert score["loss"] == pytest.approx(nats / tokens, rel=1e-5)
    assert 0 < score["loss"] < math.log(TokenData(char_data).vocab_size)  # trained: better than uniform
    assert score["ppl"] == math.exp(score["loss"])  # far below the cap
    assert score["bpb"] == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    assert score["bytes_per_token"] == pytest.approx(n_bytes / tokens)
    assert score["val_tokens"] == TokenData(char_data).val.tokens


def test_per_batch_numbers_make_the_totals(char_run, char_data):
    score = _evaluate(char_run, char_data, batches=5)["parts"]["all"]
    assert len(score["batch_nats"]) == len(score["batch_bytes"]) == len(score["batch_tokens"]) == 5
    assert score["loss"] == pytest.approx(sum(score["batch_nats"]) / sum(score["batch_tokens"]), rel=1e-9)
    assert score["bpb"] == bits_per_byte(sum(score["batch_nats"]), sum(score["batch_bytes"]))
    assert score["bytes_per_token"] == sum(score["batch_bytes"]) / sum(score["batch_tokens"])


def test_evaluation_is_deterministic_and_records_how_batches_were_drawn(char_run, char_data):
    first = _evaluate(char_run, char_data)
    assert _evaluate(char_run, char_data) == first  # bit for bit: the same batches, the same model
    assert first["batches"] == {"count": 3, "batch_size": 4, "block_size": 32, "seed": 7}
    other_seed = _evaluate(char_run, char_data, seed=8)["parts"]["all"]
    assert other_seed["batch_nats"] != first["parts"]["all"]["batch_nats"]
    # A checkpoint file and its run folder (best.pt by default) score the same.
    assert _evaluate(char_run / ckpt_io.BEST, char_data) == first


def test_the_same_val_data_under_two_labels_is_scored_once_and_copied(char_run, char_data):
    ev = evaluate_parts(char_run, char_data, {"all": []}, {"union": []}, device="cpu", **DRAW)
    assert ev["union"] == ev["parts"]["all"]
    ev["union"]["batch_nats"].append(0.0)  # a copy, not the same lists
    assert len(ev["parts"]["all"]["batch_nats"]) == 3


def test_perplexity_is_capped_where_the_loss_is_huge(char_run, char_data, tmp_path):
    state = ckpt_io.load(char_run / ckpt_io.BEST)
    for name in ("lm_head.weight", "transformer.wte.weight"):  # tied; saved as one tensor or two
        state["model"][name] = state["model"][name] * 1e4  # confidently wrong: a loss far above 50 nats
    ckpt_io.atomic_save(state, tmp_path / "huge.pt")
    score = _evaluate(tmp_path / "huge.pt", char_data)["parts"]["all"]
    assert score["loss"] > MAX_PERPLEXITY_LOSS and math.isfinite(score["bpb"])
    assert score["ppl"] == math.exp(MAX_PERPLEXITY_LOSS) == perplexity(score["loss"])


def test_perplexity_and_bits_per_byte_by_definition():
    assert perplexity(2.0) == math.exp(2.0)
    assert perplexity(1e6) == perplexity(MAX_PERPLEXITY_LOSS) == math.exp(50)  # never an OverflowError
    assert bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)  # 8 bits over 4 bytes
    assert bits_per_byte(1.0, 0) is None and bits_per_byte(1.0, None) is None  # bytes unknown


def test_a_dataset_of_another_tokenizer_is_refused(char_run, gpt2_data):
    with pytest.raises(UserError) as error:
        _evaluate(char_run, gpt2_data)
    message = str(error.value)
    assert "\n" not in message
    assert message == f"checkpoint {char_run} and corpus {gpt2_data} use different tokenizers"
