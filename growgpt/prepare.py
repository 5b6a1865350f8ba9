"""Text to token shards: `growgpt prepare TEXT... --out DATA_DIR`.

Inputs are .txt files, .jsonl files (one JSON object per line with a `text` field), .parquet files
(a `text` column, e.g. what `growgpt extract` writes or a Hugging Face dataset's Parquet: id, url,
title, text), .arrow files (Arrow IPC stream or file) and folders of them (searched recursively, in
sorted order). A folder written by `datasets.Dataset.save_to_disk` (data-*.arrow, dataset_info.json,
state.json) is read directly: its Arrow stream files, exactly those its state.json lists (a
DatasetDict's folder: every split's). `text_field` (`--text-field`) names another field/column than
`text`. Everything is streamed: memory is bounded by the shuffle buffer, never the corpus.

What a document is
------------------
Train/val is split by document, never by a cut in the byte stream, so no document is half in each.
A .jsonl line or a Parquet row is one document. For .txt, `txt_docs` says:
  * "file": the whole file is one document (a folder of articles or books);
  * "blocks": runs of whole paragraphs (blank-line separated) of about BLOCK_CHARS characters, for
    one big file such as Shakespeare: fine enough to give a val set, coarse enough that train and val
    do not share most of their context;
  * "line": every non-empty line (corpora with one document per line);
  * "auto" (default): "file" for files up to AUTO_FILE_LIMIT bytes, "blocks" for bigger ones; and a
    small corpus whose documents split poorly is re-cut into smaller blocks (below).
Each document is preceded by the tokenizer's separator (`<|endoftext|>` for GPT-2, reserved id 0
for char, id 256 for bytes), so a window that spans two documents sees where one ends.

The split
---------
A document goes to val when a keyed 64-bit BLAKE2b hash of it, read as a fraction, is below
`val_fraction`. The key is the seed; what is hashed is the document's page id when a Parquet/Arrow
file has an `id` column or a JSONL record an `id` field (Wikipedia articles from `extract` or from
Hugging Face: an article stays on its side whatever else is added or edited; the same dataset as
Parquet or as JSONL splits the same), otherwise its text (so exact duplicates land on the same side). Integer ids hash as
"id:<decimal>" (integral float ids too), string ids as "id:" + their UTF-8 bytes, so an id written as
text lands where the same number written as an integer does. The assignment is
therefore a pure function of (seed, document): independent of the order, of the other inputs and of
the shuffle, and stable as a corpus grows. Documents are then shuffled with the seed inside a
bounded buffer (BUFFER_BYTES), which breaks up runs of similar files without holding the corpus.

Too few documents: the automatic re-cut
---------------------------------------
One small .txt file is one document, which cannot be split (nanoGPT cuts such a file 90/10). So with
txt_docs="auto" (the default), a corpus of at most RECUT_LIMIT_CHARS (32 Mi) characters, read from
files, is looked at whole before anything is written. When its documents split poorly — fewer than
MIN_DOCUMENTS (20), or val's share of the characters off val_fraction by more than half of
min(val_fraction, 1 - val_fraction) — every document is cut into blocks and the blocks are split
instead. A block ends at the first line end after BLOCK (a word end inside a line longer than
2 BLOCK); BLOCK is the largest power of two from 16384 down to 64 characters that gives about
TARGET_VAL_BLOCKS / val_fraction blocks (200 at 10 %), halved again while the blocks still split
poorly (the hash's luck on few blocks). Each block is keyed by its text, like a document: its side is
a pure function of (seed, block text), whatever else is in the corpus. The blocks are written in text
order, not shuffled, and a block that follows the block before it in the same split continues it with
no separator: each split's stream is the text less the other split's blocks, with a separator where a
block was taken out (so few false document boundaries, unlike cutting into many documents).
Trade-offs, accepted for small corpora only: val blocks sit between train blocks of the same text
(val shares topic and style with train, as nanoGPT's 90/10 cut does at one place), and BLOCK depends on
the corpus size and on the hash, so a corpus that grows (or another seed) can be cut at another size and
move text between splits; a large corpus is never re-cut, parts of an extract corpus never are (their
split stays keyed by page id), and txt_docs file/blocks/line or in-memory documents turn it off. The
manifest's `recut` records the block size and count and why (None when not re-cut); its `documents`
counts are then blocks.

Output
------
`DATA_DIR/train-00000.bin`, `val-00000.bin`, ...: raw token ids, uint16 while the vocabulary fits
(GPT-2's 50257 does), uint32 otherwise, at most `shard_tokens` per shard (numpy memmaps read them
with no header to parse). `manifest.json` records the tokenizer (with the char vocabulary), vocab
size, dtype, token, byte and document counts per split and shard, and every source file with its size.
`bytes` counts the UTF-8 bytes of the text the tokens decode to, separators not counted: the denominator
of bits per byte over a whole split (growgpt.token_bytes: the same per-id table evaluation uses).
Shards are written into a staging folder and moved into place, and the manifest is written last:
a dataset counts only once its manifest is there, so an interrupted prepare never leaves a dataset
that looks complete.

A corpus that grows: parts
--------------------------
Given one folder written by `growgpt extract` (Parquet parts, each with its extract manifest),
`prepare` writes one dataset per part, `DATA_DIR/PART/`, and tokenizes only the parts it has not
tokenized yet: a part is recognised by the sha256 of its Parquet file (plus tokenizer, seed and val
fraction), not by its name, so a changed part is redone and nothing else is touched: the shards of
old parts stay byte-identical. Because the split key is the page id, adding parts never moves a
document between train and val; each part keeps its own val set and the union's val set is the
union of the parts'. Training mixes parts (growgpt.data); `grow` evaluates on each part's val set.
Parts need a vocabulary that does not depend on the text, GPT-2 BPE or bytes: a char vocabulary
computed per part would differ between parts.

Speed: GPT-2 BPE uses tiktoken's `encode_ordinary_batch` over the buffer with one thread per core
(bench/prepare_throughput.py compares with raw `encode_ordinary` on the same text). Char-level
needs the vocabulary first, so it reads the input twice and encodes with a numpy lookup. Bytes
are a numpy view of each document's UTF-8 encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_json, fsync_dir
from growgpt.token_bytes import token_byte_lengths
from growgpt.tokenizer import (FIXED_VOCAB_SIZES, LONE_SURROGATE, TOKENIZER_NAMES, BytesTokenizer, CharTokenizer,
                               GPT2Tokenizer)

MANIFEST = "manifest.json"
MAX_SEED = 2**64 - 1  # the split hash's key is the seed as 8 bytes
FORMAT = "growgpt-tokens"
VERSION = 1
SUFFIXES = (".txt", ".jsonl", ".parquet", ".arrow")
TXT_DOCS = ("auto", "file", "blocks", "line")
AUTO_FILE_LIMIT = 1 << 20
BLOCK_CHARS = 16_384
# The automatic re-cut of a small corpus (see "Too few documents" in the docstring above).
RECUT_LIMIT_CHARS = 32 << 20  # only a corpus of at most this much text is looked at whole, and re-cut
MIN_DOCUMENTS = 20  # fewer documents than this: re-cut whatever the split looks like
TARGET_VAL_BLOCKS = 20  # the re-cut aims at about this many val blocks (20 / val_fraction blocks in all)
MIN_BLOCK_CHARS = 64  # the smallest re-cut block
SAVE_TO_DISK_STATE = "state.json"  # with dataset_info.json and data-*.arrow: datasets.Dataset.save_to_disk
BUFFER_BYTES = 64 << 20
_STAGING = ".staging-"


@dataclass
class Source:
    path: Path
    bytes: int
    documents: int = 0


@dataclass
class Document:
    source: int  # index into the sources list
    key: bytes  # what the split hash is taken of
    text: str
    # Re-cut blocks only: (number of the document cut, block number in it). A block written right after
    # the block before it in the same split continues it with no separator in between.
    run: tuple[int, int] | None = None


# --------------------------------------------------------------------------------------------
# Finding and reading inputs


def find_sources(inputs: Iterable[str | Path]) -> list[Source]:
    """Expand files and folders into the list of input files, in a stable order."""
    sources: list[Source] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # (extract's lists of dropped pages are no text to train on)
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and (p.suffix.lower() in SUFFIXES or p.name == SAVE_TO_DISK_STATE)
                           and not p.name.endswith(".dropped.parquet")
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            found = _save_to_disk_files(found)
            if not found:
                raise UserError(f"{path}: no .txt, .jsonl or .parquet files in this folder "
                                "(nor .arrow files of datasets' save_to_disk)")
            sources.extend(Source(p, p.stat().st_size) for p in found)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise UserError(f"{path}: not a .txt, .jsonl or .parquet file "
                                "(nor an .arrow file of datasets' save_to_disk)")
            sources.append(Source(path, path.stat().st_size))
        else:
            raise UserError(f"{path}: no such file or folder")
    return sources


def _save_to_disk_files(found: list[Path]) -> list[Path]:
    """`found` (sorted input files and state.json files) with the .arrow files of each save_to_disk
    folder (one holding state.json) replaced by exactly the data files its state.json lists, in its
    order (not stray cache-*.arrow files), where its state.json sorts."""
    states = {p.parent for p in found if p.name == SAVE_TO_DISK_STATE and (p.parent / "dataset_info.json").is_file()}
    out: list[Path] = []
    for p in found:
        if p.parent not in states:
            if p.name != SAVE_TO_DISK_STATE:  # (another program's state.json is no input)
                out.append(p)
            continue
        if p.name != SAVE_TO_DISK_STATE:
            if p.suffix.lower() != ".arrow":
                out.append(p)
            continue  # an .arrow file next to a save_to_disk state.json: only what it lists is read
        folder = p.parent
        state_path = p
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            names = [entry["filename"] for entry in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{state_path}: not a readable state.json of datasets' save_to_disk ({e}); "
                            "write the dataset as Parquet instead: dataset.to_parquet(\"data.parquet\")") from None
        files = [folder / name for name in names]
        for f in files:
            if not f.is_file():
                raise UserError(f"{f}: listed in {state_path.name} but missing; save the dataset again, "
                                "or write it as Parquet: dataset.to_parquet(\"data.parquet\")")
        out.extend(files)
    return out


def _decode(data: bytes, path: Path, offset: int, errors: str) -> str:
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 at byte offset {offset + e.start} "
                        "(use --errors replace to replace bad bytes and go on)") from None


def _read_txt(source: Source, txt_docs: str, errors: str) -> Iterator[str]:
    mode = txt_docs
    if mode == "auto":
        mode = "file" if source.bytes <= AUTO_FILE_LIMIT else "blocks"
    try:
        f = open(source.path, "rb")
    except OSError as e:
        raise UserError(f"{source.path}: cannot read: {e.strerror}") from None
    with f:
        if mode == "file":
            yield _decode(f.read(), source.path, 0, errors)
            return
        offset = 0
        block: list[str] = []
        block_chars = 0
        for raw in f:  # binary lines: bounded by the longest line, offsets exact for errors
            line = _decode(raw, source.path, offset, errors)
            offset += len(raw)
            if mode == "line":
                if line.strip():
                    yield line.rstrip("\r\n")
                continue
            block.append(line)
            block_chars += len(line)
            if not line.strip() and block_chars >= BLOCK_CHARS:  # a paragraph ends here
                yield "".join(block)
                block, block_chars = [], 0
        if block:
            yield "".join(block)




def _fields(names, limit: int = 20) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "") or "none"


def _json_id_key(value, where: str) -> bytes | None:
    """The split key of a JSONL record's `id` (None: no id, the text decides); the same keys as Parquet's."""
    if value is None:
        return None
    if isinstance(value, str):
        return b"id:" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, int) and not isinstance(value, bool):
        return b"id:%d" % value
    if isinstance(value, float) and value.is_integer():
        return b"id:%d" % int(value)
    raise UserError(f"{where}: 'id' is {value!r}, expected an integer or string page id")


def _read_jsonl(source: Source, errors: str, text_field: str = "text") -> Iterator[tuple[bytes | None, str]]:
    offset = 0
    try:
        f = open(source.path, "rb")
    except OSError as e:
        raise UserError(f"{source.path}: cannot read: {e.strerror}") from None
    with f:
        for number, raw in enumerate(f, 1):
            line = _decode(raw, source.path, offset, errors)
            offset += len(raw)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{source.path}:{number}: not valid JSON ({e.msg})") from None
            except RecursionError:
                raise UserError(f"{source.path}:{number}: not valid JSON (nested too deeply)") from None
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                if not isinstance(record, dict):
                    got = f" (the line holds a JSON {type(record).__name__}, not an object)"
                elif text_field in record:
                    got = f" ('{text_field}' is {type(text).__name__})"
                else:
                    got = f" (fields: {_fields(record)}; choose one with --text-field)"
                raise UserError(f"{source.path}:{number}: no string '{text_field}' field{got}")
            if "\\u" in line:  # a lone surrogate can only come from a \u escape: skip the search otherwise
                text = _check_surrogates(text, f"{source.path}:{number}", errors)
            yield _json_id_key(record.get("id"), f"{source.path}:{number}"), text


def _check_surrogates(text: str, where: str, errors: str) -> str:
    """`text` with no lone surrogates: an error naming `where`, or (errors="replace") U+FFFD for each."""
    found = LONE_SURROGATE.search(text)
    if found is None:
        return text
    if errors == "replace":
        return LONE_SURROGATE.sub("\ufffd", text)
    raise UserError(f"{where}: 'text' holds a lone surrogate {found.group()!r} at character {found.start()}, "
                    "which is not Unicode text (use --errors replace to replace it and go on)")


def _value_kind(arrow_type) -> str | None:
    """What a Parquet column's values are to prepare: "str", "bytes", "int", "float" or None (anything else)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    is_string_view = getattr(pa.types, "is_string_view", lambda _: False)  # pyarrow >= 16
    is_binary_view = getattr(pa.types, "is_binary_view", lambda _: False)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or is_string_view(t):
        return "str"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or is_binary_view(t):
        return "bytes"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    return None


def _as_bytes(column) -> list[bytes | None]:
    """A string or binary column's values as raw bytes, without decoding (or validating) UTF-8."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.cast(pa.large_binary()).to_pylist()


def _parquet_texts(column, source: Source, first_row: int, errors: str, text_field: str = "text") -> list[str | None]:
    try:
        return column.to_pylist()
    except UnicodeDecodeError:  # Parquet does not check that a string column holds UTF-8
        pass
    texts: list[str | None] = []
    for row, data in enumerate(_as_bytes(column), first_row):
        if data is None:
            texts.append(None)
            continue
        try:
            texts.append(data.decode("utf-8", errors=errors))
        except UnicodeDecodeError as e:
            raise UserError(f"{source.path}: row {row} (from 0): '{text_field}' is not UTF-8 at byte {e.start} "
                            "(use --errors replace to replace bad bytes and go on)") from None
    return texts


def _id_keys(column, kind: str, source: Source, first_row: int) -> list[bytes | None]:
    """The split keys of a batch's page ids (None: no id, the text decides)."""
    if kind in ("str", "bytes"):
        return [None if v is None else b"id:" + v for v in _as_bytes(column)]  # str: its UTF-8 bytes
    keys: list[bytes | None] = []
    for row, page_id in enumerate(column.to_pylist(), first_row):
        if kind == "float" and page_id is not None and not page_id.is_integer():
            raise UserError(f"{source.path}: row {row} (from 0): id {page_id!r} is not a whole number")
        keys.append(None if page_id is None else b"id:%d" % page_id)  # an integral float as its integer
    return keys


def _open_columnar(source: Source):
    """(kind, schema, batches(columns)) of a Parquet file or an Arrow IPC file (stream or file format:
    datasets' save_to_disk writes streams), read a record batch at a time."""
    import pyarrow as pa

    if source.path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(source.path)
        except Exception as e:  # pyarrow raises several types for a file that is not Parquet
            raise UserError(f"{source.path}: not a readable Parquet file ({e})") from None
        return "Parquet", pf.schema_arrow, lambda columns: pf.iter_batches(batch_size=1024, columns=columns)
    hint = "; write the dataset as Parquet instead: dataset.to_parquet(\"data.parquet\")"
    try:
        data = pa.memory_map(str(source.path))
    except OSError as e:
        raise UserError(f"{source.path}: cannot read: {e.strerror or e}") from None
    try:
        reader = pa.ipc.open_stream(data)
        batches = iter(reader)
    except (OSError, pa.ArrowException):
        try:
            data.seek(0)
            file_reader = pa.ipc.open_file(data)
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"{source.path}: not a readable Arrow stream or file ({e}){hint}") from None
        reader = file_reader
        batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))

    def select(columns):
        for batch in batches:
            yield pa.record_batch([batch.column(c) for c in columns], names=columns)

    return "Arrow", reader.schema, select


def _read_columnar(source: Source, errors: str, text_field: str = "text") -> Iterator[tuple[bytes | None, str]]:
    """(split key or None, text) of every row of a Parquet or Arrow file with a text column."""
    import pyarrow as pa

    kind, schema, batches = _open_columnar(source)
    if text_field not in schema.names:
        raise UserError(f"{source.path}: no '{text_field}' column (columns: {_fields(schema.names)})"
                        + ("" if text_field != "text" else "; choose one with --text-field"))
    for column, allowed in ((text_field, ("str",)), ("id", ("int", "float", "str", "bytes"))):
        if column in schema.names and _value_kind(schema.field(column).type) not in allowed:
            expected = "strings" if column == text_field else "integer or string page ids"
            raise UserError(f"{source.path}: column '{column}' holds {schema.field(column).type}, "
                            f"expected {expected}")
    id_kind = _value_kind(schema.field("id").type) if "id" in schema.names and text_field != "id" else None
    first_row = 0
    try:
        for batch in batches(["id", text_field] if id_kind else [text_field]):
            texts = _parquet_texts(batch.column(text_field), source, first_row, errors, text_field)
            keys = (_id_keys(batch.column("id"), id_kind, source, first_row) if id_kind
                    else [None] * len(texts))
            first_row += len(texts)
            for key, text in zip(keys, texts):
                if text is not None:  # a null text is no document
                    yield key, text
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{source.path}: not a readable {kind} file at row {first_row} ({e})") from None


def iter_documents(sources: list[Source], txt_docs: str = "auto", errors: str = "strict",
                   on_source_done=None, text_field: str = "text") -> Iterator[Document]:
    """Every non-empty document of every source, in input order. `text_field`: the JSONL field or
    Parquet/Arrow column that holds the text."""
    for index, source in enumerate(sources):
        suffix = source.path.suffix.lower()
        if suffix in (".parquet", ".arrow"):
            items = _read_columnar(source, errors, text_field)
        elif suffix == ".jsonl":
            items = _read_jsonl(source, errors, text_field)
        else:
            items = ((None, t) for t in _read_txt(source, txt_docs, errors))
        for key, text in items:
            if text.strip():
                source.documents += 1
                yield Document(index, key if key is not None else text.encode("utf-8", "surrogatepass"), text)
        if on_source_done:
            on_source_done(source)


# --------------------------------------------------------------------------------------------
# Split, tokenize, write


def is_val(key: bytes, seed: int, val_fraction: float) -> bool:
    """The train/val assignment: a pure function of the document's key and the seed."""
    digest = hashlib.blake2b(key, digest_size=8, key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little") < val_fraction * 2.0**64


_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_WORD = re.compile(r"\S*\s+|\S+")


def _pieces(text: str, block_chars: int) -> Iterator[str]:
    """`text` in order as lines, and a line longer than 2 blocks as words (a word longer than that, in
    block-sized slices): where a re-cut block may end."""
    for line in _LINE.findall(text):
        if len(line) <= 2 * block_chars:
            yield line
            continue
        for word in _WORD.findall(line):
            for at in range(0, len(word), block_chars):
                yield word[at:at + block_chars]


def cut_blocks(text: str, block_chars: int) -> list[str]:
    """`text` cut into blocks of at least `block_chars` characters (the last may be shorter), each ending
    at the first line end after that many (a word end in a very long line). Together they are `text`."""
    blocks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _pieces(text, block_chars):
        current.append(piece)
        size += len(piece)
        if size >= block_chars:
            blocks.append("".join(current))
            current, size = [], 0
    if current:
        blocks.append("".join(current))
    return blocks


def _val_share(docs: list[Document], seed: int, val_fraction: float) -> tuple[float, int, int]:
    """(val's share of the characters, val documents, train documents) of a by-key split of `docs`."""
    total = val = val_docs = 0
    for doc in docs:
        total += len(doc.text)
        if is_val(doc.key, seed, val_fraction):
            val += len(doc.text)
            val_docs += 1
    return (val / total if total else 0.0), val_docs, len(docs) - val_docs


def _split_is_poor(docs: list[Document], seed: int, val_fraction: float) -> str | None:
    """Why splitting these documents whole gives a poor val split, or None when it does not."""
    share, val_docs, train_docs = _val_share(docs, seed, val_fraction)
    if len(docs) < MIN_DOCUMENTS:
        return f"{len(docs)} document(s) (fewer than {MIN_DOCUMENTS}) would put {share:.1%} of the text in val"
    if abs(share - val_fraction) > min(val_fraction, 1 - val_fraction) / 2:
        return f"split by whole document, val would hold {share:.1%} of the text (val fraction {val_fraction:g})"
    return None


def recut(docs: list[Document], seed: int, val_fraction: float) -> tuple[list[Document], dict] | None:
    """Blocks to split instead of `docs` when splitting these documents whole gives a poor val split
    (see "Too few documents" in the module docstring), with what was done; None when the split is fine."""
    total = sum(len(d.text) for d in docs)
    reason = _split_is_poor(docs, seed, val_fraction) if total else None
    if reason is None:
        return None
    # Block size: the largest power of two (16384 down to 64) that gives TARGET_VAL_BLOCKS / val_fraction
    # blocks, halved again while the blocks' split is still poor (the hash's luck on few blocks).
    target = TARGET_VAL_BLOCKS / min(val_fraction, 1 - val_fraction)
    block_chars = BLOCK_CHARS
    while block_chars > MIN_BLOCK_CHARS and total / block_chars < target:
        block_chars //= 2
    while True:
        blocks = [Document(doc.source, text.encode("utf-8", "surrogatepass"), text, (number, index))
                  for number, doc in enumerate(docs)
                  for index, text in enumerate(cut_blocks(doc.text, block_chars)) if text.strip()]
        share, val_blocks, train_blocks = _val_share(blocks, seed, val_fraction)
        good = (val_blocks and train_blocks
                and abs(share - val_fraction) <= min(val_fraction, 1 - val_fraction) / 2)
        if good or block_chars <= MIN_BLOCK_CHARS:
            break
        block_chars //= 2
    if not good:
        _, whole_val, whole_train = _val_share(docs, seed, val_fraction)
        if whole_val and whole_train:
            # Blocks did no better (repetitive text: equal blocks share a side), and the documents whole
            # already give both splits: keep those rather than trade a poor split for a worse one.
            return None
    message = (f"cut the text into {len(blocks):,} blocks of about {block_chars:,} characters for the train/val "
               f"split ({reason}); val holds {share:.1%} of the text in {val_blocks:,} block(s)")
    return blocks, {"block_chars": block_chars, "blocks": len(blocks), "documents": len(docs),
                    "val_share": round(share, 4), "message": message}


class ShardWriter:
    """Appends token arrays to `{split}-NNNNN.bin` files of at most `shard_tokens` tokens, counting
    the UTF-8 bytes they stand for per shard (`byte_lengths`: bytes per token id; None: not counted)."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int,
                 byte_lengths: np.ndarray | None = None) -> None:
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.byte_lengths = byte_lengths
        self.shards: list[dict] = []
        self.documents = 0
        self.last_run: tuple[int, int] | None = None  # the re-cut block written last
        self._file = None
        self._in_shard = 0

    def _open(self) -> None:
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._file = open(self.folder / name, "wb")
        self.shards.append({"file": name, "tokens": 0} if self.byte_lengths is None
                           else {"file": name, "tokens": 0, "bytes": 0})
        self._in_shard = 0

    def write(self, tokens: np.ndarray) -> None:
        tokens = tokens.astype(self.dtype, copy=False)
        while len(tokens):
            if self._file is None or self._in_shard == self.shard_tokens:
                self._close()
                self._open()
            take = min(len(tokens), self.shard_tokens - self._in_shard)
            self._file.write(tokens[:take].tobytes())
            self._in_shard += take
            self.shards[-1]["tokens"] += take
            if self.byte_lengths is not None:
                # Counted per token, not per document: a document cut between two shards is counted right.
                self.shards[-1]["bytes"] += int(self.byte_lengths[tokens[:take]].sum())
            tokens = tokens[take:]

    def _close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def close(self) -> dict:
        self._close()
        counts = {"tokens": sum(s["tokens"] for s in self.shards)}
        if self.byte_lengths is not None:
            counts["bytes"] = sum(s["bytes"] for s in self.shards)
        return {**counts, "documents": self.documents, "shards": self.shards}


class _CharEncoder:
    """Vectorised char-level encoding: code points -> ids through a sorted lookup."""

    def __init__(self, tokenizer: CharTokenizer) -> None:
        self.tokenizer = tokenizer
        self.codepoints = np.array([ord(c) for c in tokenizer.chars], dtype=np.uint32)

    def encode(self, text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.searchsorted(self.codepoints, points)
        return (ids + 1).astype(np.uint32)


def _utf8_ids(text: str, where: str, errors: str) -> np.ndarray:
    """A document's bytes-tokenizer ids: a numpy view of its UTF-8 bytes (no list of Python ints).
    A lone surrogate has no UTF-8 bytes: an error naming `where`, or U+FFFD with errors="replace"."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = _check_surrogates(text, where, errors).encode("utf-8")
    return np.frombuffer(data, dtype=np.uint8)


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not enabled,
                dynamic_ncols=True, leave=False)


def load_manifest(data_dir: str | Path) -> dict:
    data_dir = Path(data_dir)
    path = data_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{data_dir}: no {MANIFEST} — run `growgpt prepare TEXT... --out {data_dir}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e}); re-run prepare") from None
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a growgpt token manifest")
    if manifest.get("version") != VERSION:
        raise UserError(f"{path}: format version {manifest.get('version')}, this growgpt reads {VERSION}; "
                        "re-run prepare")
    return manifest


def _publish(staging: Path, out: Path, manifest: dict) -> None:
    """Move the staged shards into DATA_DIR, replacing an older dataset, manifest last."""
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the end, DATA_DIR is 'not prepared'
    for old in list(out.glob("train-*.bin")) + list(out.glob("val-*.bin")):
        old.unlink()
    for shard in staging.iterdir():
        os.replace(shard, out / shard.name)
    fsync_dir(out)
    atomic_write_json(out / MANIFEST, manifest)
    staging.rmdir()


def _check_split(val_fraction: float, seed: int) -> None:
    """The train/val assignment's settings: a fraction strictly between 0 and 1, a seed that fits its 8 bytes."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be an integer from 0 to {MAX_SEED} (2**64 - 1), got {seed}")


def prepare(inputs: Iterable[str | Path], out_dir: str | Path, tokenizer: str = "gpt2", val_fraction: float = 0.1,
            seed: int = 1337, errors: str = "strict", txt_docs: str = "auto", shard_tokens: int = 2**27,
            progress: bool = True, num_threads: int | None = None,
            documents: Iterable[tuple[str, str]] | None = None, extra: dict | None = None,
            text_field: str = "text", recut_small: bool = True) -> dict:
    """Tokenize `inputs` (or in-memory `documents`, (name, text) pairs) into DATA_DIR; return the manifest.
    `extra` entries are added to the manifest (e.g. the hash of the source a corpus part came from).
    `text_field`: the JSONL field / Parquet or Arrow column holding the text. With txt_docs="auto" and
    `recut_small`, a small corpus whose documents split poorly is cut into blocks ("Too few documents"
    above; the manifest's `recut` says how, with a one-line `message`; None when not re-cut)."""
    if tokenizer not in TOKENIZER_NAMES:
        raise UserError(f"unknown tokenizer {tokenizer!r} (expected {', '.join(TOKENIZER_NAMES)})")
    _check_split(val_fraction, seed)
    if errors not in ("strict", "replace"):
        raise UserError(f"--errors must be strict or replace, got {errors!r}")
    if txt_docs not in TXT_DOCS:
        raise UserError(f"--txt-docs must be one of {', '.join(TXT_DOCS)}, got {txt_docs!r}")
    if shard_tokens < 1:
        raise UserError(f"shard_tokens must be positive, got {shard_tokens}")
    if not isinstance(text_field, str) or not text_field:
        raise UserError(f"--text-field must name a field, got {text_field!r}")
    start_time = time.time()
    threads = num_threads or _default_threads()

    if documents is not None:
        in_memory = list(documents)
        sources = [Source(Path(name), len(text.encode("utf-8", "surrogatepass")), 0) for name, text in in_memory]

        def read() -> Iterator[Document]:
            for index, (_, text) in enumerate(in_memory):
                if text.strip():
                    sources[index].documents += 1
                    yield Document(index, text.encode("utf-8", "surrogatepass"), text)
    else:
        sources = find_sources(inputs)

        def read() -> Iterator[Document]:
            return iter_documents(sources, txt_docs=txt_docs, errors=errors, text_field=text_field)

    total_bytes = sum(s.bytes for s in sources)
    if tokenizer == "gpt2":
        tok = GPT2Tokenizer()
        char_encoder = None
    elif tokenizer == "bytes":
        tok = BytesTokenizer()
        char_encoder = None
    else:
        with _progress(total_bytes, progress, "vocabulary") as bar:
            seen: set[str] = set()
            for doc in read():
                seen.update(doc.text)
                bar.update(len(doc.text))
        for s in sources:
            s.documents = 0  # counted again by the encoding pass
        tok = CharTokenizer(sorted(seen))
        char_encoder = _CharEncoder(tok)
    dtype = np.dtype(np.uint16 if tok.vocab_size <= 2**16 else np.uint32)
    separator = np.array([tok.separator_id], dtype=np.uint32)

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(_STAGING + "*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a prepare that was killed
        staging = out / f"{_STAGING}{os.getpid()}"
        staging.mkdir()
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder: {e.strerror}") from None
    byte_lengths = token_byte_lengths(tok)
    writers = {split: ShardWriter(staging, split, dtype, shard_tokens, byte_lengths) for split in ("train", "val")}
    rng = np.random.default_rng(seed)

    def flush(buffer: list[Document]) -> None:
        # Re-cut blocks stay in text order: each split's stream is then the text less the other split's
        # blocks, with a separator only where a block of the other split (or another document) was.
        docs = buffer if buffer and buffer[0].run is not None else [buffer[i] for i in rng.permutation(len(buffer))]
        if char_encoder is not None:
            encoded = [char_encoder.encode(d.text) for d in docs]
        elif isinstance(tok, BytesTokenizer):
            encoded = [_utf8_ids(d.text, str(sources[d.source].path), errors) for d in docs]
        else:
            encoded = tok.encode_batch([d.text for d in docs], num_threads=threads)
        for doc, ids in zip(docs, encoded):
            writer = writers["val" if is_val(doc.key, seed, val_fraction) else "train"]
            ids = np.asarray(ids, dtype=np.uint32)
            continues = doc.run is not None and writer.last_run == (doc.run[0], doc.run[1] - 1)
            writer.write(ids if continues else np.concatenate([separator, ids]))
            writer.last_run = doc.run
            writer.documents += 1

    recut_info = None

    def documents_to_write() -> Iterator[Document]:
        """read()'s documents; for a small corpus whose documents split poorly, blocks of them instead."""
        nonlocal recut_info
        stream = read()
        if documents is not None or txt_docs != "auto" or not recut_small:
            yield from stream
            return
        # Look at the whole corpus while it is small (memory: under one shuffle buffer of text).
        head: list[Document] = []
        chars = 0
        for doc in stream:
            head.append(doc)
            chars += len(doc.text)
            if chars > RECUT_LIMIT_CHARS:
                yield from head
                yield from stream
                return
        cut = recut(head, seed, val_fraction)
        if cut is None:
            yield from head
            return
        blocks, recut_info = cut
        for s in sources:
            s.documents = 0
        for block in blocks:
            sources[block.source].documents += 1
        yield from blocks

    try:
        with _progress(total_bytes, progress, "tokenize") as bar:
            buffer: list[Document] = []
            buffered = 0
            for doc in documents_to_write():
                buffer.append(doc)
                buffered += len(doc.text)
                bar.update(len(doc.text))
                if buffered >= BUFFER_BYTES:
                    flush(buffer)
                    buffer, buffered = [], 0
            if buffer:
                flush(buffer)
        splits = {name: w.close() for name, w in writers.items()}
        for name, info in splits.items():
            if info["documents"] == 0:
                total = sum(s["documents"] for s in splits.values())
                raise UserError(
                    f"the {name} split is empty ({total} document(s) with text in all, val fraction {val_fraction}): "
                    + ("no input holds any text" if total == 0 else
                       f"even cut into {total} blocks of {recut_info['block_chars']} characters the text is too "
                       "small; give more text or change --val-fraction" if recut_info else
                       "give more documents, change --val-fraction, or cut .txt files into more documents "
                       "with --txt-docs blocks or line (or leave --txt-docs auto, which cuts a small corpus)"))
        manifest = {
            "format": FORMAT, "version": VERSION,
            "tokenizer": tok.spec(), "vocab_size": tok.vocab_size, "dtype": dtype.name,
            "val_fraction": val_fraction, "seed": seed, "txt_docs": txt_docs,
            **({"text_field": text_field} if text_field != "text" else {}), "recut": recut_info,
            "splits": splits,
            "sources": [{"path": str(s.path), "bytes": s.bytes, "documents": s.documents} for s in sources],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - start_time, 3),
            **(extra or {}),
        }
        _publish(staging, out, manifest)
        return manifest
    except OSError as e:
        raise UserError(f"{out}: cannot write token shards: {e.strerror or e}") from None
    finally:
        for w in writers.values():
            w._close()
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A corpus of parts (the Parquet output of `growgpt extract`)

EXTRACT_MANIFEST_SUFFIX = ".manifest.json"


def extract_parts(folder: str | Path) -> list[tuple[str, Path]]:
    """(part name, parquet path) of every finished part in a folder written by `extract`."""
    from growgpt.data import natural_key

    found = []
    for manifest_path in Path(folder).glob("*" + EXTRACT_MANIFEST_SUFFIX):
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(m, dict) or not str(m.get("format", "")).startswith("growgpt-extract"):
            continue
        name = manifest_path.name[: -len(EXTRACT_MANIFEST_SUFFIX)]
        parquet = manifest_path.parent / m.get("parquet", name + ".parquet")
        if not m.get("complete"):
            raise UserError(f"{manifest_path}: this part's extraction did not finish ({m.get('error')}); "
                            "re-run `growgpt extract` first")
        if not parquet.is_file():
            raise UserError(f"{parquet}: missing, though {manifest_path.name} lists it; re-run `growgpt extract`")
        found.append((name, parquet))
    return sorted(found, key=lambda item: natural_key(item[0]))


def is_extract_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any(path.glob("*" + EXTRACT_MANIFEST_SUFFIX))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_parts(text_dir: str | Path, out_dir: str | Path, tokenizer: str = "gpt2", val_fraction: float = 0.1,
                  seed: int = 1337, progress: bool = True, num_threads: int | None = None,
                  parts: list[str] | None = None) -> list[dict]:
    """Tokenize each part of an extract folder into out_dir/PART/, skipping parts already done.
    `parts` limits the work to those part names. Returns one manifest per part, with `skipped`."""
    if tokenizer not in FIXED_VOCAB_SIZES:
        raise UserError(f"a corpus of parts needs --tokenizer {' or '.join(FIXED_VOCAB_SIZES)}, not {tokenizer!r}: "
                        "a char vocabulary would differ from part to part")
    _check_split(val_fraction, seed)
    found = extract_parts(text_dir)
    if not found:
        raise UserError(f"{text_dir}: no finished parts of `growgpt extract` in this folder")
    if parts is not None:
        names = {name for name, _ in found}
        missing = [p for p in parts if p not in names]
        if missing:
            raise UserError(f"{text_dir}: no extracted part {missing[0]!r} (parts: {', '.join(sorted(names))})")
        found = [(name, path) for name, path in found if name in parts]
    results = []
    for name, parquet in found:
        source = {"source_parquet": str(parquet), "source_sha256": file_sha256(parquet)}
        target = Path(out_dir) / name
        try:
            old = load_manifest(target)
        except UserError:
            old = None
        if (old and old.get("source_sha256") == source["source_sha256"] and old["tokenizer"]["name"] == tokenizer
                and old.get("seed") == seed and old.get("val_fraction") == val_fraction):
            results.append({**old, "part": name, "skipped": True})
            continue
        # Never re-cut: a part's split must stay keyed by page id (pages keep their side as parts are added).
        manifest = prepare([parquet], target, tokenizer=tokenizer, val_fraction=val_fraction, seed=seed,
                           progress=progress, num_threads=num_threads, extra={"part": name, **source},
                           recut_small=False)
        results.append({**manifest, "skipped": False})
    return results
