"""The bytes tokenizer (issue 12 §3): UTF-8 bytes 0-255 plus an end-of-text id 256, a vocabulary that is
the same for every corpus, so a corpus of parts (`prepare` of an extract folder, `grow`) accepts it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from growgpt.cli import main
from growgpt.config import load_config
from growgpt.errors import UserError
from growgpt.model import padded_vocab_size
from growgpt.plan import load_plan
from growgpt.prepare import prepare, prepare_parts
from growgpt.sample import sample
from growgpt.shards import load_manifest
from growgpt.tokenizer import (
    BYTES_SEPARATOR_ID,
    BYTES_VOCAB_SIZE,
    GPT2_EOT,
    BytesTokenizer,
    CharTokenizer,
    GPT2Tokenizer,
    from_spec,
    same_tokenizer,
)
from growgpt.train import train

from test_prepare import all_documents, split_documents


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model is fastest on one thread, and far slower on two when other work shares the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


DOCS = [f"Document {i}: Ελληνικά, 東京, 🚀 and plain words about topic {i}.\n" * (1 + i % 3) for i in range(40)]


# --------------------------------------------------------------------------------------------
# The tokenizer itself


@pytest.mark.parametrize("text", [
    "plain ASCII, with punctuation!?", "Ελληνικά κείμενα", "東京都の漢字と かな", "emoji 🚀👩‍👩‍👧 and flags 🇬🇷",
    "combining e\u0301 a\u0308 \u0915\u094d\u0937", "a NUL \x00 inside", "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010ffff", "", "\ufffd",
])
def test_round_trips_any_unicode(text):
    tok = BytesTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8")) and all(0 <= i < 256 for i in ids)
    assert tok.decode(ids) == text


def test_round_trips_random_strings():
    """Property-style: random code points from every plane (no surrogates), seeded."""
    rng = random.Random(1234)
    ranges = [(0x00, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    tok = BytesTokenizer()
    for _ in range(300):
        text = "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(0, 40)))
        assert tok.decode(tok.encode(text)) == text
        assert tok.encode_batch([text, "x"]) == [tok.encode(text), [ord("x")]]


def test_vocabulary_and_separator():
    tok = BytesTokenizer()
    assert tok.vocab_size == BYTES_VOCAB_SIZE == 257 and tok.separator_id == BYTES_SEPARATOR_ID == 256
    assert tok.decode([0x41, 256, 0x42]) == f"A{GPT2_EOT}B"
    assert padded_vocab_size(257) == 320  # a multiple of 64 that holds every id


def test_invalid_utf8_decodes_to_replacement_characters():
    tok = BytesTokenizer()
    assert tok.decode([0xFF, 0x41]) == "\ufffdA"
    assert tok.decode([0x80]) == "\ufffd"  # a stray continuation byte
    # half a character before a separator is one U+FFFD and does not swallow what follows
    assert tok.decode([0xE2, 0x82, 256, 0x41]) == f"\ufffd{GPT2_EOT}A"
    with pytest.raises(UserError, match=r"token id 300 is not in the bytes vocabulary"):
        tok.decode([300])


def test_a_lone_surrogate_is_refused_in_one_line():
    with pytest.raises(UserError, match=r"lone surrogate '\\ud800' at character 2") as info:
        BytesTokenizer().encode("ab\ud800c")
    assert "\n" not in str(info.value)


def test_spec_identifies_the_tokenizer():
    spec = BytesTokenizer().spec()
    assert spec["name"] == "bytes" and spec["vocab_size"] == 257
    assert isinstance(from_spec(json.loads(json.dumps(spec))), BytesTokenizer)
    assert same_tokenizer(spec, from_spec(spec).spec())
    assert not same_tokenizer(spec, GPT2Tokenizer().spec())
    assert not same_tokenizer(spec, CharTokenizer([chr(b) for b in range(1, 257)]).spec())


# --------------------------------------------------------------------------------------------
# prepare


def test_cli_prepare_writes_a_257_id_corpus(tmp_path, capsys):
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    main(["prepare", str(source), "--out", str(tmp_path / "d"), "--tokenizer", "bytes", "--val-fraction", "0.3"])
    assert "(bytes, vocab 257, uint16)" in capsys.readouterr().out
    m = load_manifest(tmp_path / "d")
    assert m["vocab_size"] == 257 and m["dtype"] == "uint16" and m["tokenizer"] == BytesTokenizer().spec()
    train_docs, val_docs = split_documents(tmp_path / "d", "train"), split_documents(tmp_path / "d", "val")
    assert sorted(train_docs + val_docs) == sorted(DOCS)
    tokens = m["splits"]["train"]["tokens"] + m["splits"]["val"]["tokens"]
    assert tokens == sum(len(d.encode("utf-8")) + 1 for d in DOCS)  # one id per byte, one separator each


def test_prepare_names_the_source_of_a_lone_surrogate(tmp_path):
    source = tmp_path / "s.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in DOCS[:5] + ["half a pair \ud800!"] + DOCS[5:]),
                      encoding="utf-8")
    with pytest.raises(UserError, match=r"s\.jsonl:6: 'text' holds a lone surrogate"):
        prepare([source], tmp_path / "d", tokenizer="bytes", val_fraction=0.3, progress=False)
    with pytest.raises(UserError, match=r"in-memory doc: 'text' holds a lone surrogate '\\udfff'"):
        prepare([], tmp_path / "d", tokenizer="bytes", documents=[("in-memory doc", "a\udfffb")], progress=False)
    prepare([source], tmp_path / "d", tokenizer="bytes", val_fraction=0.3, errors="replace", progress=False)
    assert "half a pair \ufffd!" in all_documents(tmp_path / "d")


def _extract_folder(folder: Path, parts: int) -> Path:
    """What `growgpt extract` leaves: PART.parquet (id, text) and a finished PART.manifest.json each."""
    folder.mkdir()
    for n in range(1, parts + 1):
        rows = range((n - 1) * 20, n * 20)
        pq.write_table(pa.table({"id": list(rows), "text": [DOCS[i % len(DOCS)] for i in rows]}),
                       folder / f"p{n}.parquet")
        (folder / f"p{n}.manifest.json").write_text(json.dumps(
            {"format": "growgpt-extract/2", "complete": True, "parquet": f"p{n}.parquet"}), encoding="utf-8")
    return folder


def test_a_corpus_of_parts_accepts_bytes_and_refuses_char(tmp_path):
    text = _extract_folder(tmp_path / "text", 2)
    first = prepare_parts(text, tmp_path / "tokens", tokenizer="bytes", val_fraction=0.3, progress=False)
    assert [(m["part"], m["skipped"], m["vocab_size"]) for m in first] == [("p1", False, 257), ("p2", False, 257)]
    again = prepare_parts(text, tmp_path / "tokens", tokenizer="bytes", val_fraction=0.3, progress=False)
    assert [m["skipped"] for m in again] == [True, True]
    with pytest.raises(UserError, match=r"needs --tokenizer gpt2 or bytes, not 'char': a char vocabulary would"):
        prepare_parts(text, tmp_path / "char", tokenizer="char", progress=False)


# --------------------------------------------------------------------------------------------
# Plans


def _plan(folder: Path, data: str, init_from: str = "") -> Path:
    (folder / "p1.xml.bz2").write_bytes(b"BZh9")  # loading a plan does not read its dump files
    stage_init = f'init_from = "{init_from}"\n' if init_from else ""
    text = ("[model]\nn_layer = 1\nn_head = 2\nn_embd = 32\nblock_size = 32\n"
            f'[data]\nfiles = ["p1.xml.bz2"]\n{data}\n[train]\nbatch_size = 4\ndevice = "cpu"\n'
            f'[[stage]]\nname = "s1"\nparts = [1]\niters = 10\nlearning_rate = 3e-3\n{stage_init}')
    (folder / "plan.toml").write_text(text, encoding="utf-8")
    return folder / "plan.toml"


def test_a_plan_with_bytes_loads_and_char_is_refused(tmp_path):
    assert load_plan(_plan(tmp_path, 'tokenizer = "bytes"')).data.tokenizer == "bytes"
    with pytest.raises(UserError, match=r"key 'tokenizer' in \[data\] of .*plan\.toml must be 'gpt2' or 'bytes', "
                                        r"got 'char': .*a char vocabulary would change as parts are added"):
        load_plan(_plan(tmp_path, 'tokenizer = "char"'))


def test_a_plan_refuses_gpt2_weights_with_bytes_at_load_time(tmp_path):
    (tmp_path / "gpt2").mkdir()
    with pytest.raises(UserError, match=r"key 'init_from' in \[\[stage\]\] 1 \('s1'\) .* need tokenizer = 'gpt2'"):
        load_plan(_plan(tmp_path, 'tokenizer = "bytes"', init_from=str(tmp_path / "gpt2")))


def test_estimate_uses_the_plans_vocabulary(tmp_path):
    from growgpt.estimate import model_params
    from growgpt.plan_estimate import estimate_plan

    shape = dict(n_layer=1, n_head=2, n_embd=32, block_size=32)
    for tokenizer, vocab in (("bytes", 257), ("gpt2", 50257)):
        plan = _plan(tmp_path, f'tokenizer = "{tokenizer}"')
        estimate = estimate_plan(plan, tmp_path / "work", device="cpu", probe=False)
        assert estimate["params"] == model_params(**shape, vocab_size=vocab)


# --------------------------------------------------------------------------------------------
# Training, sampling and checkpoints


@pytest.fixture(scope="module")
def bytes_data(tmp_path_factory) -> Path:
    """A few documents of the built-in corpus as bytes."""
    from python_reference import python_reference_documents

    data = tmp_path_factory.mktemp("bytes_data")
    prepare([], data, tokenizer="bytes", documents=list(python_reference_documents())[:20], progress=False,
            val_fraction=0.2)
    return data


@pytest.fixture(scope="module")
def bytes_run(bytes_data, tmp_path_factory) -> Path:
    """A tiny model trained a few iterations on bytes_data."""
    from conftest import TINY

    run = tmp_path_factory.mktemp("bytes_run")
    train(load_config(base=dict(TINY, dataset=str(bytes_data), out_dir=str(run), max_iters=10, eval_interval=5,
                                eval_iters=2)), verbose=False)
    return run


def test_sampling_a_bytes_model_returns_text(bytes_run):
    texts = sample(str(bytes_run), start="Ελλη ", num_samples=2, max_new_tokens=40, seed=7, device="cpu")
    assert len(texts) == 2 and all(isinstance(t, str) and t.startswith("Ελλη ") for t in texts)
    greedy = sample(str(bytes_run), start="", num_samples=1, max_new_tokens=8, temperature=0, device="cpu")
    assert greedy[0].startswith(GPT2_EOT)  # an empty prompt starts a fresh document: the separator
    with pytest.raises(UserError, match=r"--start: the prompt holds a lone surrogate '\\udcff'"):
        sample(str(bytes_run), start="bad \udcff", device="cpu")


def test_a_bytes_checkpoint_is_refused_on_a_gpt2_dataset(bytes_run, gpt2_data):
    from growgpt.checkpoint import load

    from conftest import TINY

    state = load(bytes_run / "ckpt.pt")
    assert state["tokenizer"] == BytesTokenizer().spec() and state["model_args"]["vocab_size"] == 320
    with pytest.raises(UserError, match=r"trained with tokenizer bytes-utf8-257, but dataset .* uses gpt2-r50k"):
        train(load_config(base=dict(TINY, dataset=str(gpt2_data), out_dir=str(bytes_run), init_from="resume",
                                    max_iters=12)), verbose=False)


def test_gpt2_weights_are_refused_on_a_bytes_dataset(bytes_data, tmp_path):
    from conftest import TINY

    (tmp_path / "gpt2").mkdir()  # never read: the dataset's tokenizer is checked first
    with pytest.raises(UserError, match=r"loads GPT-2 weights, but dataset .* uses the 'bytes' tokenizer"):
        train(load_config(base=dict(TINY, dataset=str(bytes_data), out_dir=str(tmp_path / "run"),
                                    init_from=str(tmp_path / "gpt2"))), verbose=False)
