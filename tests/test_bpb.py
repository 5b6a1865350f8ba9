"""Bits per byte: counted at prepare, computed on the very windows scored, logged in training, reported.

The hand computations here decode the scored target ids back to text (bytes) and take nats from the
model's own logits, independently of growgpt's per-id byte table.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import growgpt.evaluate as evaluate_module
from growgpt.config import load_config
from growgpt.data import TokenData, eval_generator
from growgpt.evaluate import evaluate_parts
from growgpt.metrics import read_metrics
from growgpt.prepare import prepare
from growgpt.report import render_html, render_markdown, verdicts
from growgpt.shards import load_manifest
from growgpt.token_bytes import token_byte_lengths
from growgpt.tokenizer import CharTokenizer, GPT2Tokenizer, from_spec
from growgpt.train import train

# Words of 1-, 2-, 3- and 4-byte UTF-8 characters: ASCII, Greek, CJK and emoji.
WORDS = ["the", "bytes", "of", "text", "γλώσσα", "λέξη", "Ελλάδα", "中文", "字符", "東京", "😀", "🚀", "naïve", "café"]
ALPHABET = "".join(sorted(set(" .\n".join(WORDS) + " .\n")))


def _documents(seed: int, count: int = 40) -> list[tuple[str, str]]:
    """Sentences of WORDS; the first document holds every character, so every part gets one vocabulary."""
    rng = random.Random(seed)
    docs = [(f"doc{seed}-0", ALPHABET)]
    for i in range(1, count):
        text = ". ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(5))
        docs.append((f"doc{seed}-{i}", text + ".\n"))
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A corpus of two char-level parts of multi-byte text, with small shards."""
    root = tmp_path_factory.mktemp("bpb_corpus")
    for k, name in enumerate(("p1", "p2")):
        prepare([], root / name, tokenizer="char", documents=_documents(k), val_fraction=0.3, seed=5,
                shard_tokens=700, progress=False)
    return root


class BigramModel(torch.nn.Module):
    """Logits from a fixed random table indexed by the input token: a loss that varies per token, and
    a record of every (x, y) it scores, so the test sees the very windows evaluation drew."""

    def __init__(self, vocab_size: int, block_size: int) -> None:
        super().__init__()
        self.table = torch.randn(vocab_size, vocab_size, generator=torch.Generator().manual_seed(0))
        self.config = SimpleNamespace(block_size=block_size)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, y):
        self.seen.append((x.clone(), y.clone()))
        logits = self.table[x]
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))

    def hand_nats(self, x: torch.Tensor, y: torch.Tensor) -> float:
        logits = self.table.double().numpy()[x.numpy()]
        log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return float(-np.take_along_axis(log_probs, y.numpy()[..., None], axis=-1).sum())


class UniformModel(torch.nn.Module):
    """Every token equally likely: the loss is ln(vocab_size) for any target."""

    def __init__(self, vocab_size: int, block_size: int) -> None:
        super().__init__()
        self.vocab_size, self.config, self.seen = vocab_size, SimpleNamespace(block_size=block_size), []

    def forward(self, x, y):
        self.seen.append((x.clone(), y.clone()))
        logits = torch.zeros(*y.shape, self.vocab_size)
        return logits, F.cross_entropy(logits.view(-1, self.vocab_size), y.reshape(-1))


def _use_model(monkeypatch, model, spec: dict) -> None:
    monkeypatch.setattr(evaluate_module, "load_model", lambda path, device: (model, {"tokenizer": spec}))


def _char_bytes(spec: dict, ids: torch.Tensor) -> int:
    """UTF-8 bytes of the text the ids decode to, the separator (id 0) being no text."""
    chars = spec["chars"]
    return len("".join(chars[i - 1] for i in ids.flatten().tolist() if i != 0).encode("utf-8"))


# --------------------------------------------------------------------------------------------------
# The per-id table and prepare's counts


def test_byte_table_counts_utf8_bytes_not_characters():
    tok = CharTokenizer(["a", "λ", "中", "😀"])
    assert token_byte_lengths(tok).tolist() == [0, 1, 2, 3, 4]  # id 0: the separator, no text
    gpt2 = GPT2Tokenizer()
    table = token_byte_lengths(gpt2)
    assert len(table) == 50257 and table[gpt2.separator_id] == 0
    text = "Ελληνικά και 中文字符, emoji 😀🚀 and café."
    ids = gpt2.encode(text)
    assert int(table[ids].sum()) == len(text.encode("utf-8")) > len(text)
    # A token may be part of a character: its bytes count, not those of its (replaced) decoded text.
    assert any(gpt2.decode([i]) == "\ufffd" for i in ids)
    bytes_tok = from_spec({"name": "bytes"})  # one id per byte, the separator none
    assert int(token_byte_lengths(bytes_tok)[bytes_tok.encode(text) + [bytes_tok.separator_id]].sum()) == \
        len(text.encode("utf-8"))


def test_manifest_records_bytes_per_shard_and_split(corpus):
    manifest = load_manifest(corpus / "p1")
    tok = from_spec(manifest["tokenizer"])
    total = 0
    for split in manifest["splits"].values():
        assert len(split["shards"]) >= 2  # small shards: documents are cut between shards
        for shard in split["shards"]:
            ids = np.fromfile(corpus / "p1" / shard["file"], dtype=manifest["dtype"])
            text = "".join(tok.chars[i - 1] for i in ids.tolist() if i != 0)
            assert shard["bytes"] == len(text.encode("utf-8")) > len(text)
        assert split["bytes"] == sum(s["bytes"] for s in split["shards"])
        total += split["bytes"]
    assert total == sum(len(text.encode("utf-8")) for _, text in _documents(0))


def test_gpt2_manifest_bytes_are_the_decoded_bytes(gpt2_data):
    manifest = load_manifest(gpt2_data)
    tok = GPT2Tokenizer()
    for split in manifest["splits"].values():
        ids = np.concatenate([np.fromfile(gpt2_data / s["file"], dtype=manifest["dtype"]) for s in split["shards"]])
        text_ids = [i for i in ids.tolist() if i != tok.separator_id]
        assert split["bytes"] == len(tok.encoding.decode_bytes(text_ids))


# --------------------------------------------------------------------------------------------------
# Evaluation


def test_bpb_equals_a_hand_computation_on_the_scored_windows(corpus, monkeypatch):
    spec = load_manifest(corpus / "p1")["tokenizer"]
    model = BigramModel(spec["vocab_size"], block_size=16)
    _use_model(monkeypatch, model, spec)
    ev = evaluate_parts("unused.pt", corpus, {"1": ["p1"], "2": ["p2"]}, {"union": ["p1", "p2"]},
                        batches=5, batch_size=4, seed=3, device="cpu")
    assert ev["batches"] == {"count": 5, "batch_size": 4, "block_size": 16, "seed": 3}
    groups = [ev["parts"]["1"], ev["parts"]["2"], ev["union"]]
    assert len(model.seen) == 15
    for k, score in enumerate(groups):
        windows = model.seen[5 * k: 5 * (k + 1)]
        nats = [model.hand_nats(x, y) for x, y in windows]
        n_bytes = [_char_bytes(spec, y) for _, y in windows]
        assert sum(n_bytes) > sum(int((y != 0).sum()) for _, y in windows)  # multi-byte characters
        assert score["bpb"] == pytest.approx(sum(nats) / (sum(n_bytes) * math.log(2)), rel=1e-5)
        assert score["batch_nats"] == pytest.approx(nats, rel=1e-5)
        assert score["batch_bytes"] == n_bytes and score["batch_tokens"] == [4 * 16] * 5
        assert score["loss"] == pytest.approx(sum(nats) / (5 * 4 * 16), rel=1e-5)
        assert score["bytes_per_token"] == pytest.approx(sum(n_bytes) / (5 * 4 * 16))
    assert ev["union"]["val_bytes"] == sum(load_manifest(corpus / p)["splits"]["val"]["bytes"] for p in ("p1", "p2"))


def test_gpt2_bpb_of_a_uniform_model(gpt2_data, monkeypatch):
    spec = load_manifest(gpt2_data)["tokenizer"]
    model = UniformModel(50257, block_size=32)
    _use_model(monkeypatch, model, spec)
    ev = evaluate_parts("unused.pt", gpt2_data, {"all": []}, {}, batches=3, batch_size=2, seed=1, device="cpu")
    eot = GPT2Tokenizer().separator_id
    encoding = GPT2Tokenizer().encoding
    n_bytes = sum(len(encoding.decode_bytes([i for i in y.flatten().tolist() if i != eot])) for _, y in model.seen)
    expected = math.log(50257) * 3 * 2 * 32 / (n_bytes * math.log(2))
    assert ev["parts"]["all"]["loss"] == pytest.approx(math.log(50257), rel=1e-6)
    assert ev["parts"]["all"]["bpb"] == pytest.approx(expected, rel=1e-6)


def test_old_manifests_without_byte_counts_still_evaluate(corpus, tmp_path, monkeypatch):
    old = tmp_path / "old"
    for part in ("p1", "p2"):
        shutil.copytree(corpus / part, old / part)
        manifest = load_manifest(old / part)
        for split in manifest["splits"].values():
            split.pop("bytes")
            for shard in split["shards"]:
                shard.pop("bytes")
        (old / part / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    data = TokenData(old, parts=["p1", "p2"])
    assert data.val.bytes is None and data.train.bytes is None

    spec = load_manifest(corpus / "p1")["tokenizer"]
    args = dict(batches=4, batch_size=4, seed=3, device="cpu")
    _use_model(monkeypatch, BigramModel(spec["vocab_size"], block_size=16), spec)
    new_ev = evaluate_parts("unused.pt", corpus, {"1": ["p1"]}, {"union": ["p1", "p2"]}, **args)
    _use_model(monkeypatch, BigramModel(spec["vocab_size"], block_size=16), spec)
    old_ev = evaluate_parts("unused.pt", old, {"1": ["p1"]}, {"union": ["p1", "p2"]}, **args)
    # The per-id table needs nothing from the manifest: the same bpb; only whole-set bytes are unknown.
    assert old_ev["union"]["bpb"] == new_ev["union"]["bpb"]
    assert old_ev["parts"]["1"]["bpb"] == new_ev["parts"]["1"]["bpb"]
    assert old_ev["union"]["val_bytes"] is None and new_ev["union"]["val_bytes"] > 0

    # A tokenizer without a byte table: bpb is n/a (None), never an error.
    monkeypatch.setattr("growgpt.data.byte_lengths_for_spec", lambda spec: None)
    _use_model(monkeypatch, BigramModel(spec["vocab_size"], block_size=16), spec)
    none_ev = evaluate_parts("unused.pt", old, {"1": ["p1"]}, {}, **args)
    assert none_ev["parts"]["1"]["bpb"] is None and none_ev["parts"]["1"]["batch_bytes"] is None
    assert none_ev["parts"]["1"]["loss"] == pytest.approx(new_ev["parts"]["1"]["loss"])


# --------------------------------------------------------------------------------------------------
# Training


def test_training_eval_records_and_console_show_bpb(corpus, tmp_path, capsys):
    from conftest import TINY

    settings = {**TINY, "dataset": str(corpus / "p1"), "out_dir": str(tmp_path / "run"), "block_size": 16,
                "batch_size": 4, "max_iters": 2, "eval_interval": 2, "eval_iters": 3, "log_interval": 1,
                "peak_flops": 1e12}  # no CPU peak to measure: MFU is not what this test is about
    cfg = load_config(base=settings)
    train(cfg, verbose=True)
    evals = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "eval"]
    assert [r["iter"] for r in evals] == [0, 2]
    data = TokenData(corpus / "p1")
    for split in ("train", "val"):
        # the eval batches, drawn again: the same windows at every evaluation
        targets = [data.split(split).batch(eval_generator(cfg.seed, split, i), 4, 16)[1] for i in range(3)]
        n_bytes = sum(_char_bytes(data.tokenizer_spec, y) for y in targets)
        for r in evals:
            nats = r[f"{split}_loss"] * 3 * 4 * 16  # the mean loss over 3 batches of 4 x 16 targets
            assert r[f"{split}_bpb"] == pytest.approx(nats / (n_bytes * math.log(2)), rel=1e-5)
    out = capsys.readouterr().out
    eval_lines = [line for line in out.splitlines() if line.startswith("eval iter")]
    assert len(eval_lines) == 2 and all(f"{r['val_bpb']:.4f} bpb" in line for r, line in zip(evals, eval_lines))


def test_metrics_reader_keeps_eval_records_with_and_without_bpb(tmp_path):
    lines = [{"kind": "eval", "iter": 0, "train_loss": 4.6, "val_loss": 4.7},  # written before bpb
             {"kind": "eval", "iter": 1, "train_loss": 4.6, "val_loss": 4.7, "train_bpb": 1.9, "val_bpb": 2.0},
             {"kind": "eval", "iter": 2, "train_loss": 4.6, "val_loss": 4.7, "train_bpb": None, "val_bpb": None},
             {"kind": "eval", "iter": 3, "train_loss": 4.6, "val_loss": 4.7, "val_bpb": "2.0"}]  # not a number
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    assert [r["iter"] for r in read_metrics(tmp_path)] == [0, 1, 2]


# --------------------------------------------------------------------------------------------------
# The report


def _score(loss: float, bpb: float | None) -> dict:
    score = {"loss": loss, "ppl": math.exp(loss)}
    return score if bpb is None else {**score, "bpb": bpb, "bytes_per_token": 4.0, "val_tokens": 1000,
                                      "val_bytes": 4000}


def _results(with_bpb: bool = True) -> dict:
    def stage(name, parts, start, end, losses, union):
        bpb = (lambda loss: loss / math.log(2) / 4.0) if with_bpb else (lambda loss: None)
        return {"name": name, "parts": parts, "start_iter": start, "end_iter": end, "tokens": 1000,
                "seconds": 10.0, "run_dir": f"stages/{name}",
                "eval": {"parts": {p: _score(v, bpb(v)) for p, v in losses.items()},
                         "union": _score(union, bpb(union))}}
    stages = [stage("s1", ["1"], 0, 10, {"1": 4.0, "2": 5.0}, 4.5),
              stage("s2", ["1", "2"], 10, 20, {"1": 4.2, "2": 4.0}, 4.1)]
    base = stage("jump", ["1", "2"], 0, 20, {"1": 4.1, "2": 4.1}, 4.1 if not with_bpb else 4.3)
    return {"title": "bpb", "parts": ["1", "2"], "stages": stages, "baseline": base}


def test_report_shows_bpb_and_compares_in_bpb():
    results = _results()
    md, html = render_markdown(results), render_html(results, png=b"")  # (write_report adds only the plot)
    bpb_section = md.split("## Val bits per byte: stage \u00d7 part", 1)[1].split("## Val loss", 1)[0]
    rows = [line for line in bpb_section.splitlines() if line.startswith("| s")]
    s1_bpb = 4.0 / math.log(2) / 4.0
    assert rows[0].startswith(f"| s1 | {s1_bpb:.3f} |") and "\u25b2 +5.0 %" in rows[1]  # part 1: 4.0 -> 4.2
    assert "4.00 bytes per token" in bpb_section
    assert "## Val loss: stage \u00d7 part" in md and "4.20 (66.7)" in md  # loss and perplexity stay
    assert "Val bits per byte: stage \u00d7 part</h2>" in html and "Union val bpb" in html
    v = verdicts(results)
    union_bpb = 4.5 / math.log(2) / 4
    assert v[0] == f"Stage s1 trained part 1 from scratch: union val bpb {union_bpb:.3f} (loss 4.50, ppl 90.0)."
    assert v[1].startswith(f"Stage s2 (added part 2): union val bpb {4.5 / math.log(2) / 4:.3f} \u2192 "
                           f"{4.1 / math.log(2) / 4:.3f} (\u22128.9 %); part 1 rose by 5.0 % ")
    assert v[1].endswith(": forgetting (no interval: re-run grow to rescore).")  # no per-batch sums here
    assert (f"Growing ended at a union val bpb of {4.1 / math.log(2) / 4:.3f}, jumping at "
            f"{4.3 / math.log(2) / 4:.3f}: growing is better by") in md


def test_report_of_results_without_bpb_says_so_and_compares_loss():
    results = _results(with_bpb=False)
    md = render_markdown(results)
    assert "No bits per byte were recorded" in md
    assert verdicts(results)[0] == "Stage s1 trained part 1 from scratch: union val loss 4.50 (ppl 90.0)."
    # One score without bpb is enough for the verdicts to compare losses, never a mix.
    mixed = _results()
    del mixed["stages"][0]["eval"]["parts"]["2"]["bpb"]
    assert "union val loss" in verdicts(mixed)[1]
