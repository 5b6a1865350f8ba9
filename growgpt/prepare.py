"""Text to token shards: `growgpt prepare TEXT... --out DATA_DIR` (inputs read by growgpt.readers,
written in the format of growgpt.shards).

Train/val is split by whole document, by a keyed hash of its page id (else its text) with the seed as
key (`is_val`): a pure function of (seed, document), independent of the order and of the rest of the
corpus, so an article keeps its side as the corpus grows. Documents are shuffled inside a bounded buffer
(BUFFER_BYTES): memory is bounded by the buffer, never the corpus. A small corpus whose documents split
poorly is cut into blocks instead (`recut`): its val text then sits between train text, as in
nanoGPT's 90/10 cut. An extract folder becomes one dataset per part (`prepare_parts`), so adding parts
rewrites nothing old.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from growgpt.errors import UserError
from growgpt.fsutil import hash_file
from growgpt.readers import BLOCK_CHARS, TXT_DOCS, Document, Source, check_surrogates, find_sources, iter_documents
from growgpt.shards import FORMAT, VERSION, ShardWriter, load_manifest, make_staging, natural_key, publish
from growgpt.token_bytes import token_byte_lengths
from growgpt.tokenizer import FIXED_VOCAB_SIZES, TOKENIZER_NAMES, BytesTokenizer, CharTokenizer, GPT2Tokenizer

MAX_SEED = 2**64 - 1  # the split hash's key is the seed as 8 bytes
# The automatic re-cut of a small corpus (see `recut`).
RECUT_LIMIT_CHARS = 32 << 20  # only a corpus of at most this much text is looked at whole, and re-cut
MIN_DOCUMENTS = 20  # fewer documents than this: re-cut whatever the split looks like
TARGET_VAL_BLOCKS = 20  # the re-cut aims at about this many val blocks (20 / val_fraction blocks in all)
MIN_BLOCK_CHARS = 64  # the smallest re-cut block
BUFFER_BYTES = 64 << 20


# --------------------------------------------------------------------------------------------
# Split, tokenize, write


def is_val(key: bytes, seed: int, val_fraction: float) -> bool:
    """The train/val assignment: a pure function of the document's key and the seed. The key is the
    page id ("id:" + its decimal or UTF-8 bytes) or else the text (growgpt.readers); its 64-bit BLAKE2b,
    keyed by the seed and read as a fraction, puts the document in val when below `val_fraction`."""
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


def _near_target(share: float, val_fraction: float) -> bool:
    """Whether val's share of the text is within half of min(val_fraction, 1 - val_fraction) of its target."""
    return abs(share - val_fraction) <= min(val_fraction, 1 - val_fraction) / 2


def _split_is_poor(share: float, documents: int, val_fraction: float) -> str | None:
    """Why splitting `documents` whole, val holding `share` of the text, gives a poor val split, or None."""
    if documents < MIN_DOCUMENTS:
        return f"{documents} document(s) (fewer than {MIN_DOCUMENTS}) would put {share:.1%} of the text in val"
    if not _near_target(share, val_fraction):
        return f"split by whole document, val would hold {share:.1%} of the text (val fraction {val_fraction:g})"
    return None


def recut(docs: list[Document], seed: int, val_fraction: float) -> tuple[list[Document], dict] | None:
    """Blocks to split instead of `docs` when splitting these documents whole gives a poor val split
    (fewer than MIN_DOCUMENTS, or val's share of the text not `_near_target`), with what was done (the
    manifest's `recut`); None when the split is fine. One small .txt file is one document, which cannot
    be split: nanoGPT cuts such a file 90/10, this cuts it into blocks (`cut_blocks`), each keyed by its
    text like a document. They are written in text order, not shuffled, and a block that follows the
    block before it in the same split continues it with no separator: each split's stream is the text
    less the other split's blocks, with a separator where a block was taken out. Val shares topic and
    style with train, and another corpus size or seed may cut at another size: for small corpora only."""
    total = sum(len(d.text) for d in docs)
    if not total:
        return None
    whole_share, whole_val, whole_train = _val_share(docs, seed, val_fraction)
    reason = _split_is_poor(whole_share, len(docs), val_fraction)
    if reason is None:
        return None
    # Block size: the largest power of two (16384 down to 64) that gives TARGET_VAL_BLOCKS / val_fraction
    # blocks, halved again while the blocks' split is still poor (the hash's luck on few blocks).
    target = TARGET_VAL_BLOCKS / min(val_fraction, 1 - val_fraction)
    block_chars = BLOCK_CHARS
    while block_chars > MIN_BLOCK_CHARS and total / block_chars < target:
        block_chars //= 2
    while True:
        blocks = [Document.of_text(doc.source, text, (number, index))
                  for number, doc in enumerate(docs)
                  for index, text in enumerate(cut_blocks(doc.text, block_chars)) if text.strip()]
        share, val_blocks, train_blocks = _val_share(blocks, seed, val_fraction)
        good = val_blocks and train_blocks and _near_target(share, val_fraction)
        if good or block_chars <= MIN_BLOCK_CHARS:
            break
        block_chars //= 2
    if not good and whole_val and whole_train:
        # Blocks did no better (repetitive text: equal blocks share a side), and the documents whole
        # already give both splits: keep those rather than trade a poor split for a worse one.
        return None
    message = (f"cut the text into {len(blocks):,} blocks of about {block_chars:,} characters for the train/val "
               f"split ({reason}); val holds {share:.1%} of the text in {val_blocks:,} block(s)")
    return blocks, {"block_chars": block_chars, "blocks": len(blocks), "documents": len(docs),
                    "val_share": round(share, 4), "message": message}


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
        data = check_surrogates(text, where, errors).encode("utf-8")
    return np.frombuffer(data, dtype=np.uint8)


def default_threads() -> int:
    """The CPUs this process may use: tiktoken's threads for the batch encoding."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not enabled,
                dynamic_ncols=True, leave=False)


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
    `recut_small`, a small corpus (at most RECUT_LIMIT_CHARS of text read from files) whose documents
    split poorly is cut into blocks (`recut`; the manifest's `recut` says how, with a one-line `message`,
    and its `documents` counts are then blocks; None when not re-cut)."""
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
    threads = num_threads or default_threads()

    if documents is not None:
        in_memory = list(documents)
        sources = [Source(Path(name), len(text.encode("utf-8", "surrogatepass")), 0) for name, text in in_memory]

        def read() -> Iterator[Document]:
            for index, (_, text) in enumerate(in_memory):
                if text.strip():
                    sources[index].documents += 1
                    yield Document.of_text(index, text)
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

            def texts() -> Iterator[str]:
                for doc in read():
                    bar.update(len(doc.text))
                    yield doc.text

            tok = CharTokenizer.from_texts(texts())
        for s in sources:
            s.documents = 0  # counted again by the encoding pass
        char_encoder = _CharEncoder(tok)
    dtype = np.dtype(np.uint16 if tok.vocab_size <= 2**16 else np.uint32)
    separator = np.array([tok.separator_id], dtype=np.uint32)

    out = Path(out_dir)
    staging = make_staging(out)
    byte_lengths = token_byte_lengths(tok)
    writers = {split: ShardWriter(staging, split, dtype, shard_tokens, byte_lengths) for split in ("train", "val")}
    rng = np.random.default_rng(seed)

    def flush(buffer: list[Document]) -> None:
        # Re-cut blocks stay in text order: each split's stream is then the text less the other split's
        # blocks, with a separator only where a block of the other split (or another document) was.
        docs = buffer if buffer and buffer[0].run is not None else [buffer[i] for i in rng.permutation(len(buffer))]
        # GPT-2: tiktoken's batch API, one thread per core (bench/prepare_throughput.py); char: a numpy
        # lookup (its vocabulary took a first pass over the input); bytes: a numpy view of the UTF-8.
        if char_encoder is not None:
            encoded = [char_encoder.encode(d.text) for d in docs]
        elif isinstance(tok, BytesTokenizer):
            encoded = [_utf8_ids(d.text, str(sources[d.source].path), errors) for d in docs]
        else:
            encoded = tok.encode_batch([d.text for d in docs], num_threads=threads)
        for doc, ids in zip(docs, encoded):
            writer = writers["val" if is_val(doc.key, seed, val_fraction) else "train"]
            writer.write_document(np.asarray(ids, dtype=np.uint32), separator, doc.run)

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
        publish(staging, out, manifest)
        return manifest
    except OSError as e:
        raise UserError(f"{out}: cannot write token shards: {e.strerror or e}") from None
    finally:
        for w in writers.values():
            w.close_file()
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A corpus of parts (the Parquet output of `growgpt extract`)

EXTRACT_MANIFEST_SUFFIX = ".manifest.json"


def extract_parts(folder: str | Path) -> list[tuple[str, Path]]:
    """(part name, parquet path) of every finished part in a folder written by `extract`."""
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


def prepare_parts(text_dir: str | Path, out_dir: str | Path, tokenizer: str = "gpt2", val_fraction: float = 0.1,
                  seed: int = 1337, progress: bool = True, num_threads: int | None = None,
                  parts: list[str] | None = None) -> list[dict]:
    """Tokenize each part of an extract folder into out_dir/PART/, skipping parts already done.
    `parts` limits the work to those part names. Returns one manifest per part, with `skipped`.
    A part is recognised by the sha256 of its Parquet file (plus tokenizer, seed and val fraction), not
    by its name: a changed part is redone, and the shards of the others stay byte-identical. Each part
    keeps its own val set, keyed by page id. Needs a vocabulary that is the same for every part."""
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
        source = {"source_parquet": str(parquet), "source_sha256": hash_file(parquet, "sha256").hexdigest()}
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
