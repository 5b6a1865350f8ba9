"""The UTF-8 bytes each token id stands for: the per-id table behind bits per byte.

Every id of GPT-2 BPE stands for a fixed byte string (tiktoken's bytes of that token, which may be
part of a character), every id of the char tokenizer for one character, every id of the bytes
tokenizer for one byte; the document separator is no text of a document and counts 0. So the bytes
a window of tokens decodes to are a table lookup per token: nothing is stored per shard, and prepare
(per shard and split) and evaluation (per scored window) count alike. Apart from growgpt.data so
that `prepare` can count without importing torch.
"""

from __future__ import annotations

import numpy as np

from growgpt.errors import UserError
from growgpt.tokenizer import from_spec


def token_byte_lengths(tokenizer) -> np.ndarray | None:
    """The UTF-8 bytes of the text each token id stands for, indexed by id (int64, vocab_size long),
    the document separator counting 0 (it is no text of a document); None for a tokenizer whose ids
    have no fixed byte strings this function knows of. A tokenizer may give its own table (separator
    at 0 included) through a `token_byte_lengths()` method; it is then taken as it is."""
    own = getattr(tokenizer, "token_byte_lengths", None)
    if callable(own):
        return np.asarray(own(), dtype=np.int64)
    if tokenizer.name == "gpt2":
        # A BPE token is a byte string, maybe only part of a character: decode() of it alone would
        # give U+FFFD, so count the token's bytes, not the bytes of its decoded text.
        encoding = tokenizer.encoding
        lengths = np.array([len(encoding.decode_single_token_bytes(i)) for i in range(tokenizer.vocab_size)],
                           dtype=np.int64)
    elif tokenizer.name == "char":
        lengths = np.array([0] + [len(c.encode("utf-8")) for c in tokenizer.chars], dtype=np.int64)
    elif tokenizer.name == "bytes":
        lengths = np.ones(tokenizer.vocab_size, dtype=np.int64)  # one id per UTF-8 byte
    else:
        return None
    lengths[tokenizer.separator_id] = 0
    return lengths


_BYTE_LENGTHS_BY_FINGERPRINT: dict[str, np.ndarray | None] = {}


def byte_lengths_for_spec(spec: dict) -> np.ndarray | None:
    """token_byte_lengths of the tokenizer a spec describes (cached per fingerprint); None when
    this growgpt cannot rebuild it, so bits per byte are 'n/a' rather than an error."""
    key = str(spec.get("fingerprint"))
    if key not in _BYTE_LENGTHS_BY_FINGERPRINT:
        try:
            table = token_byte_lengths(from_spec(spec))
        except UserError:
            table = None
        _BYTE_LENGTHS_BY_FINGERPRINT[key] = table
    return _BYTE_LENGTHS_BY_FINGERPRINT[key]
