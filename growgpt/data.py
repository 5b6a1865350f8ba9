"""Batches of (input, target) windows drawn from memory-mapped token shards.

Sampling is random windows, as in nanoGPT, but without hidden state: micro-batch `k` of iteration
`it` is drawn from a generator seeded with (seed, split, it, k). So the data sampler's position is
just the iteration number, resuming at iteration k draws exactly the batches an uninterrupted run
would have drawn, and under DDP rank r simply takes the global micro-batches k = r, r + world, ...:
two ranks with half the accumulation steps each see exactly the batches of one process.

Windows never cross a shard boundary (a shard with fewer than block_size + 1 tokens is skipped);
shards are chosen in proportion to the windows they hold, so every start position is equally likely.

A DATA_DIR is either one prepared dataset (a manifest.json) or a corpus: a folder of parts, each a
sub-folder holding a prepared dataset (what `growgpt prepare` writes for the Parquet parts of
`extract`, and what `grow` trains on). For a corpus, config keys `parts`, `replay`, `new_parts` and
`new_fraction` choose the parts and their weights; each row of a batch first picks a part by weight,
then a window in it. Weights are fixed by the config, so the mixture adds no sampler state: exact
resume still only needs the iteration. Validation during training is the union of the chosen parts'
val sets (parts weighted by their val tokens), so its loss is comparable whatever the replay.

Bits per byte: the UTF-8 bytes a window of targets decodes to are a lookup in a per-id table
(growgpt.token_bytes), so any window, drawn anywhere, has its exact byte count with nothing stored per
shard; bpb = nats over the targets / (their bytes x ln 2) compares across tokenizers. The manifest's
per-split `bytes` (same table) give whole-set figures; manifests older than them lack only those.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from growgpt.errors import UserError
from growgpt.shards import MANIFEST, load_manifest, natural_key
from growgpt.token_bytes import byte_lengths_for_spec

_SPLIT_IDS = {"train": 0, "val": 1}


def _total_bytes(counts: list) -> int | None:
    """The sum of byte counts read from a manifest; None when any is missing (an older manifest)."""
    if any(isinstance(c, bool) or not isinstance(c, int) for c in counts):
        return None
    return sum(counts)


class TokenSplit:
    """One split (train or val) of a prepared dataset: shards as read-only memmaps."""

    def __init__(self, data_dir: Path, manifest: dict, split: str) -> None:
        self.name = split
        info = manifest["splits"].get(split)
        if info is None:
            raise UserError(f"{data_dir}: manifest.json has no '{split}' split")
        dtype = np.dtype(manifest["dtype"])
        self.shards: list[np.memmap] = []
        for shard in info["shards"]:
            path = data_dir / shard["file"]
            if not path.is_file():
                raise UserError(f"{data_dir}: shard {shard['file']} listed in manifest.json is missing")
            expected = shard["tokens"] * dtype.itemsize
            if path.stat().st_size != expected:
                raise UserError(f"{path}: {path.stat().st_size} bytes, manifest.json says {expected}: re-run prepare")
            if shard["tokens"]:
                self.shards.append(np.memmap(path, dtype=dtype, mode="r"))
        self.tokens = sum(len(s) for s in self.shards)
        # UTF-8 bytes of the split's text (prepare's count); None for a manifest written before bytes were counted.
        self.bytes = _total_bytes([info.get("bytes")])

    def check_block_size(self, block_size: int, data_dir: Path) -> None:
        longest = max((len(s) for s in self.shards), default=0)
        if longest < block_size + 1:
            raise UserError(
                f"config key 'block_size' ({block_size}) is larger than the data: the longest {self.name} "
                f"shard of {data_dir} has {longest} tokens; lower block_size or prepare more text"
            )

    def rows(self, generator: np.random.Generator, n: int, block_size: int) -> np.ndarray:
        """n random windows of block_size + 1 tokens, shape (n, block_size + 1), int64."""
        windows = np.array([max(len(s) - block_size, 0) for s in self.shards], dtype=np.int64)
        which = generator.choice(len(self.shards), size=n, p=windows / windows.sum())
        starts = generator.integers(0, windows[which])
        rows = [np.asarray(self.shards[w][s: s + block_size + 1], dtype=np.int64) for w, s in zip(which, starts)]
        return np.stack(rows) if rows else np.zeros((0, block_size + 1), dtype=np.int64)

    def batch(self, generator: np.random.Generator, batch_size: int,
              block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return x, y of shape (batch_size, block_size), y shifted by one token."""
        return _xy(self.rows(generator, batch_size, block_size))


def _xy(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    xy = torch.from_numpy(rows)
    return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()


class MixtureSplit:
    """The same split of several parts, mixed: each row picks a part by weight, then a window."""

    def __init__(self, name: str, splits: list[TokenSplit], weights: list[float]) -> None:
        self.name = name
        self.splits = splits
        total = float(sum(weights))
        self.weights = np.array([w / total for w in weights], dtype=np.float64)
        self.tokens = sum(s.tokens for s in splits)
        self.bytes = _total_bytes([s.bytes for s in splits])

    def check_block_size(self, block_size: int, data_dir: Path) -> None:
        for split in self.splits:
            split.check_block_size(block_size, data_dir)

    def batch(self, generator: np.random.Generator, batch_size: int,
              block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.splits) == 1:
            return self.splits[0].batch(generator, batch_size, block_size)
        which = generator.choice(len(self.splits), size=batch_size, p=self.weights)
        rows = np.empty((batch_size, block_size + 1), dtype=np.int64)
        for part in range(len(self.splits)):
            mask = which == part
            if mask.any():
                rows[mask] = self.splits[part].rows(generator, int(mask.sum()), block_size)
        return _xy(rows)


class Part:
    """One prepared dataset: its manifest and both splits."""

    def __init__(self, name: str, data_dir: Path) -> None:
        self.name = name
        self.data_dir = data_dir
        self.manifest = load_manifest(data_dir)
        self.train = TokenSplit(data_dir, self.manifest, "train")
        self.val = TokenSplit(data_dir, self.manifest, "val")


def corpus_parts(data_dir: str | Path) -> list[str]:
    """The part names of a corpus folder (sub-folders holding a manifest.json), in natural order."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(names, key=natural_key)


def mixture_weights(parts: list[Part], replay: str, new_parts: list[str], new_fraction: float) -> list[float]:
    """Train weights of the parts: by train tokens (proportional) or equal (uniform); with
    new_fraction > 0 the new parts share new_fraction and the others the rest, each group by replay."""
    base = [float(p.train.tokens) if replay == "proportional" else 1.0 for p in parts]
    if new_fraction <= 0:
        return base
    new = [p.name in new_parts for p in parts]
    if all(new) or not any(new):
        return base
    new_total = sum(b for b, n in zip(base, new) if n)
    old_total = sum(b for b, n in zip(base, new) if not n)
    return [b / new_total * new_fraction if n else b / old_total * (1.0 - new_fraction) for b, n in zip(base, new)]


class TokenData:
    """A DATA_DIR: one prepared dataset, or the chosen parts of a corpus, with mixed splits."""

    def __init__(self, data_dir: str | Path, parts: list[str] | None = None, replay: str = "proportional",
                 new_parts: list[str] | None = None, new_fraction: float = 0.0) -> None:
        self.data_dir = Path(data_dir)
        parts = [p for p in (parts or []) if p]
        if (self.data_dir / MANIFEST).is_file():
            if parts:
                raise UserError(f"config key 'parts' is set, but {self.data_dir} is a single dataset, "
                                "not a corpus of parts")
            self.parts = [Part("", self.data_dir)]
        else:
            available = corpus_parts(self.data_dir)
            if not available:
                load_manifest(self.data_dir)  # raises the 'run prepare first' error
            for name in parts + list(new_parts or []):
                if name not in available:
                    raise UserError(f"config key 'parts': {self.data_dir} has no part {name!r} "
                                    f"(parts: {', '.join(available)})")
            self.parts = [Part(name, self.data_dir / name) for name in (parts or available)]
        first = self.parts[0].manifest
        for part in self.parts[1:]:
            if part.manifest["tokenizer"].get("fingerprint") != first["tokenizer"].get("fingerprint"):
                raise UserError(f"{part.data_dir} was prepared with another tokenizer than {self.parts[0].data_dir}: "
                                "every part of a corpus needs the same one")
        self.manifest = first
        self.tokenizer_spec = first["tokenizer"]
        self.vocab_size = int(first["vocab_size"])
        weights = mixture_weights(self.parts, replay, list(new_parts or []), new_fraction)
        self.train = MixtureSplit("train", [p.train for p in self.parts], weights)
        self.val = MixtureSplit("val", [p.val for p in self.parts], [float(p.val.tokens) for p in self.parts])

    def split(self, name: str) -> MixtureSplit:
        return self.train if name == "train" else self.val

    @cached_property
    def byte_lengths(self) -> np.ndarray | None:
        """UTF-8 bytes per token id (growgpt.token_bytes); None: bits per byte are not available."""
        return byte_lengths_for_spec(self.tokenizer_spec)

    def target_bytes(self, targets: torch.Tensor) -> int | None:
        """The UTF-8 bytes a batch of target ids decodes to (separators count 0), None without a table."""
        table = self.byte_lengths
        return None if table is None else int(table[targets.numpy()].sum())

    def check_block_size(self, block_size: int) -> None:
        self.train.check_block_size(block_size, self.data_dir)
        self.val.check_block_size(block_size, self.data_dir)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def open_dataset(cfg) -> TokenData:
    """The training data a TrainConfig names."""
    return TokenData(cfg.dataset, parts=_names(cfg.parts), replay=cfg.replay, new_parts=_names(cfg.new_parts),
                     new_fraction=cfg.new_fraction)


def micro_batch_generator(seed: int, split: str, iteration: int, micro_step: int) -> np.random.Generator:
    """The generator for one global micro-batch; a pure function of its coordinates."""
    return np.random.default_rng([seed, _SPLIT_IDS[split], iteration, micro_step])


def eval_generator(seed: int, split: str, index: int) -> np.random.Generator:
    """Evaluation batches are the same at every evaluation, so losses are comparable over time."""
    return np.random.default_rng([seed, 100 + _SPLIT_IDS[split], index])
