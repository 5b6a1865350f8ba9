"""The token-shard format on disk: what `prepare` writes and `data` reads.

A DATA_DIR holds `train-00000.bin`, `val-00000.bin`, ...: raw token ids, uint16 while the vocabulary
fits (GPT-2's 50257 does), uint32 otherwise, so numpy memmaps read them with no header to parse. Each
document follows the tokenizer's separator, so a window that spans two documents sees where one ends.
`manifest.json` records the tokenizer spec, vocab size, dtype, token, byte and document counts per split
and shard (`bytes`: the UTF-8 bytes the tokens stand for, separators not counted, per
growgpt.token_bytes: bits per byte's denominator) and every source with its size. Shards are staged and
moved into place, the manifest last: a dataset counts only once its manifest is there, so an
interrupted prepare never leaves a dataset that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_json, fsync_dir

MANIFEST = "manifest.json"
FORMAT = "growgpt-tokens"
VERSION = 1
STAGING = ".staging-"


def natural_key(name: str) -> list:
    """'part-10' after 'part-9': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


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


class ShardWriter:
    """Appends token arrays (documents: `write_document`) to `{split}-NNNNN.bin` files of at most
    `shard_tokens` tokens, counting the documents and, per shard, the UTF-8 bytes the tokens stand for
    (`byte_lengths`: bytes per token id; None: not counted)."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int,
                 byte_lengths: np.ndarray | None = None) -> None:
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.byte_lengths = byte_lengths
        self.shards: list[dict] = []
        self.documents = 0
        self.last_run: tuple[int, int] | None = None  # the re-cut block written last (write_document)
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
                self.close_file()
                self._open()
            take = min(len(tokens), self.shard_tokens - self._in_shard)
            self._file.write(tokens[:take].tobytes())
            self._in_shard += take
            self.shards[-1]["tokens"] += take
            if self.byte_lengths is not None:
                # Counted per token, not per document: a document cut between two shards is counted right.
                self.shards[-1]["bytes"] += int(self.byte_lengths[tokens[:take]].sum())
            tokens = tokens[take:]

    def write_document(self, ids: np.ndarray, separator: np.ndarray, run: tuple[int, int] | None = None) -> None:
        """One document after `separator`; a re-cut block (`run`: document number, block number) that
        follows the block written last continues it with no separator."""
        continues = run is not None and self.last_run == (run[0], run[1] - 1)
        self.write(ids if continues else np.concatenate([separator, ids]))
        self.last_run = run
        self.documents += 1

    def close_file(self) -> None:
        """Flush, fsync and close the open shard, if any (also what cleanup after an error calls)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def close(self) -> dict:
        """Close the last shard; the split's entry of the manifest."""
        self.close_file()
        counts = {"tokens": sum(s["tokens"] for s in self.shards)}
        if self.byte_lengths is not None:
            counts["bytes"] = sum(s["bytes"] for s in self.shards)
        return {**counts, "documents": self.documents, "shards": self.shards}


def make_staging(out: Path) -> Path:
    """Create DATA_DIR and a fresh staging folder in it for the shards, removing those of killed runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(STAGING + "*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a prepare that was killed
        staging = out / f"{STAGING}{os.getpid()}"
        staging.mkdir()
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder: {e.strerror}") from None
    return staging


def publish(staging: Path, out: Path, manifest: dict) -> None:
    """Move the staged shards into DATA_DIR, replacing an older dataset, manifest last."""
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the end, DATA_DIR is 'not prepared'
    for old in list(out.glob("train-*.bin")) + list(out.glob("val-*.bin")):
        old.unlink()
    for shard in staging.iterdir():
        os.replace(shard, out / shard.name)
    fsync_dir(out)
    atomic_write_json(out / MANIFEST, manifest)
    staging.rmdir()
