"""Tokenizers: GPT-2 BPE offline with tiktoken's exact ids; char-level round trips."""

from __future__ import annotations

import shutil

import pytest

from growgpt.errors import UserError
from growgpt.tokenizer import (
    GPT2_EOT,
    CharTokenizer,
    GPT2Tokenizer,
    from_spec,
    gpt2_encoding,
    gpt2_files,
    same_tokenizer,
)


def test_gpt2_ids_equal_the_published_ones():
    tok = GPT2Tokenizer()
    # Published GPT-2 ids (e.g. Hugging Face's GPT2Tokenizer docs and tiktoken's own tests).
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("hello world") == [31373, 995]
    assert tok.encode(" Hello world!") == [18435, 995, 0]
    assert tok.vocab_size == 50257 and tok.separator_id == 50256


def test_gpt2_round_trip_and_special_text_is_plain_text():
    tok = GPT2Tokenizer()
    text = "Zürich — 東京 🚀\n\n  indented\tcode() <|endoftext|>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert 50256 not in ids  # typed inside a document it is text, not the separator
    assert tok.encode_batch(["a b", "c"], num_threads=2) == [tok.encode("a b"), tok.encode("c")]


def test_gpt2_files_are_checked_against_tiktokens_hashes(tmp_path, monkeypatch):
    vocab, encoder = gpt2_files()
    shutil.copy(vocab, tmp_path / "vocab.bpe")
    encoder_bytes = encoder.read_bytes()
    (tmp_path / "encoder.json").write_bytes(encoder_bytes.replace(b'"Hello"', b'"Hellp"', 1))
    monkeypatch.setenv("GROWGPT_GPT2_DIR", str(tmp_path))
    gpt2_encoding.cache_clear()
    try:
        with pytest.raises(UserError, match=r"encoder.json has sha256 .* expected 196139668be63f3b"):
            GPT2Tokenizer()
        (tmp_path / "encoder.json").unlink()
        with pytest.raises(UserError, match="GPT-2 BPE file missing: .*encoder.json"):
            GPT2Tokenizer()
    finally:
        gpt2_encoding.cache_clear()


def test_char_tokenizer_round_trip_and_spec():
    tok = CharTokenizer.from_texts(["hello", "wörld\n"])
    assert tok.separator_id == 0 and tok.vocab_size == len(set("hellowörld\n")) + 1
    ids = tok.encode("hello wörld\n".replace(" ", ""))
    assert 0 not in ids and tok.decode(ids) == "hellowörld\n"
    again = from_spec(tok.spec())
    assert again.encode("world") == tok.encode("world") and same_tokenizer(again.spec(), tok.spec())
    assert not same_tokenizer(tok.spec(), CharTokenizer.from_texts(["other"]).spec())
    with pytest.raises(UserError, match="'z' is not in the char vocabulary"):
        tok.encode("z")
    assert GPT2_EOT == "<|endoftext|>"
