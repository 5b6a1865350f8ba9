"""Batches of (input, target) windows drawn from memory-mapped token shards.

Sampling is random windows, as in nanoGPT, but without hidden state: micro-batch `k` of iteration
`it` is drawn from a generator seeded with (seed, split, it, k). So the data sampler's position is
just the iteration number, resuming at iteration k draws exactly the batches an uninterrupted run
would have drawn, and under DDP rank r simply takes the global micro-batches k = r, r + world, ...:
two ranks with half the accumulation steps each see exactly the batches of one process.

Windows never cross a shard boundary (a shard with fewer than block_size + 1 tokens is skipped);
shards are chosen in proportion to the windows they hold, so every start position is equally likely.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from growgpt.errors import UserError

_SPLIT_IDS = {"train": 0, "val": 1}


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

    def check_block_size(self, block_size: int, data_dir: Path) -> None:
        longest = max((len(s) for s in self.shards), default=0)
        if longest < block_size + 1:
            raise UserError(
                f"config key 'block_size' ({block_size}) is larger than the data: the longest {self.name} "
                f"shard of {data_dir} has {longest} tokens; lower block_size or prepare more text"
            )

    def batch(self, generator: np.random.Generator, batch_size: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return x, y of shape (batch_size, block_size), y shifted by one token."""
        windows = np.array([max(len(s) - block_size, 0) for s in self.shards], dtype=np.int64)
        which = generator.choice(len(self.shards), size=batch_size, p=windows / windows.sum())
        starts = generator.integers(0, windows[which])
        rows = [np.asarray(self.shards[w][s: s + block_size + 1], dtype=np.int64) for w, s in zip(which, starts)]
        xy = torch.from_numpy(np.stack(rows))
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()


class TokenData:
    """A prepared dataset (DATA_DIR): its manifest, tokenizer spec and both splits."""

    def __init__(self, data_dir: str | Path) -> None:
        from growgpt.prepare import load_manifest

        self.data_dir = Path(data_dir)
        self.manifest = load_manifest(self.data_dir)
        self.tokenizer_spec = self.manifest["tokenizer"]
        self.vocab_size = int(self.manifest["vocab_size"])
        self.train = TokenSplit(self.data_dir, self.manifest, "train")
        self.val = TokenSplit(self.data_dir, self.manifest, "val")

    def split(self, name: str) -> TokenSplit:
        return self.train if name == "train" else self.val

    def check_block_size(self, block_size: int) -> None:
        self.train.check_block_size(block_size, self.data_dir)
        self.val.check_block_size(block_size, self.data_dir)


def micro_batch_generator(seed: int, split: str, iteration: int, micro_step: int) -> np.random.Generator:
    """The generator for one global micro-batch; a pure function of its coordinates."""
    return np.random.default_rng([seed, _SPLIT_IDS[split], iteration, micro_step])


def eval_generator(seed: int, split: str, index: int) -> np.random.Generator:
    """Evaluation batches are the same at every evaluation, so losses are comparable over time."""
    return np.random.default_rng([seed, 100 + _SPLIT_IDS[split], index])
