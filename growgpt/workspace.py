"""Where a grow run keeps its files (`Workspace`) and where its parts' dump files come from (`Sources`).

Both are shared by `growgpt grow` (growgpt.grow) and `growgpt estimate` (growgpt.plan_estimate): the
estimate reads part sizes the way grow will fetch the parts, without downloading anything. A workdir W:

    W/raw/            downloaded dump files (fetch)
    W/text/           one Parquet file + manifest per dump file (extract)
    W/tokens/PART/    token shards per dump file, train and val (prepare); the corpus
    W/run/stages/S/   stage S's run folder: ckpt.pt (its final state once done), metrics.jsonl
    W/run/stages/S/cooldown/   a wsd stage's cooldown branch (the model the stage is reported as)
    W/run/variants/SCHEDULE/S/ the same stages with the other schedule (--compare-schedules)
    W/run/baseline/jump/   the optional from-scratch baseline (jump-seedN/: its --repeat runs)
    W/run/repeats/seedN/S/ the stages again with seed + N (--repeat K --repeat-grow)
    W/run/grow.json   results: per-stage loss, perplexity and bits per byte on each part (with the
                      per-batch sums behind them, for paired comparisons), tokens, time, samples
    W/run/report.md, report.html, loss_curves.png
"""

from __future__ import annotations

import json
from pathlib import Path

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_json
from growgpt.plan import Plan


class Workspace:
    """The folders of a grow workdir W: raw/ (downloads), text/ (extract), tokens/ (prepare) and run/
    (stage runs, grow.json, the report); the module docstring has the whole layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.raw, self.text, self.tokens, self.run = (self.root / n for n in ("raw", "text", "tokens", "run"))

    def stage_dir(self, name: str) -> Path:
        return self.run / "stages" / name


class Sources:
    """Plan part number -> dump files, and their compressed sizes, for local files or a dump.

    A dump's listing is read from its mirror and kept in W/raw/listing-WIKI-DATE[-multistream].json.
    `offline` (growgpt estimate): when the mirror cannot be read, use that kept listing, or with
    `part_size` (bytes) assume every part is that large; `self.origin` says which was used."""

    def __init__(self, plan: Plan, ws: Workspace, offline: bool = False, part_size: int | None = None) -> None:
        self.plan, self.ws = plan, ws
        self.listing = None
        self.part_size = None
        self.origin = "local files" if plan.data.files else "the mirror's listing"
        if plan.data.files:
            for group in plan.data.files:
                for f in group:
                    if not f.is_file():
                        raise UserError(f"[data] files of {plan.path}: {f} does not exist")
            self.available = list(range(1, len(plan.data.files) + 1))
        else:
            from growgpt.wiki.dumps import DEFAULT_MIRROR, list_parts

            try:
                self.listing = list_parts(plan.data.wiki, plan.data.date, mirror=plan.data.mirror or DEFAULT_MIRROR,
                                          multistream=plan.data.multistream)
                fresh = True
            except UserError as e:
                if not offline:
                    raise
                self.listing = self._kept_listing()
                if self.listing is None and part_size is None:
                    raise UserError(f"{e}; without the listing, give --part-size BYTES (the compressed size to "
                                    f"assume per part), or run once with the mirror reachable (the listing is then "
                                    f"kept in {ws.raw})") from None
                if self.listing is None:
                    self.part_size = part_size
                    self.available = list(plan.all_parts)
                    self.origin = f"--part-size {part_size:,} bytes per part (the mirror could not be read: {e})"
                    return
                self.origin = f"the listing kept in {self._listing_path()} (the mirror could not be read: {e})"
                fresh = False
            self.available = [p.number for p in self.listing.parts]
            if plan.data.require_checksum:
                # Refuse before stage 1 trains, not when a later stage reaches the unverifiable part.
                unverifiable = [f.name for p in self.listing.parts if p.number in plan.all_parts
                                for f in p.files if not (f.sha1 or f.md5)]
                if unverifiable:
                    raise UserError(f"{self.listing.source} gives no sha1 or md5 for {unverifiable[0]}"
                                    f"{f' (and {len(unverifiable) - 1} more)' if len(unverifiable) > 1 else ''}: "
                                    f"it could not be verified; set require_checksum = false in [data] of "
                                    f"{plan.path} to download it unverified")
            if fresh:  # kept only once accepted: a refused plan writes nothing in the workdir
                self._keep_listing()

    def _listing_path(self) -> Path:
        d = self.plan.data
        return self.ws.raw / f"listing-{d.wiki}-{d.date}{'-multistream' if d.multistream else ''}.json"

    def _keep_listing(self) -> None:
        import dataclasses

        try:
            self.ws.raw.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self._listing_path(), dataclasses.asdict(self.listing))
        except OSError:  # a read-only workdir: the listing is only a convenience for offline estimates
            pass

    def _kept_listing(self):
        from growgpt.wiki.dumps import DumpFile, DumpListing, Part

        path = self._listing_path()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            parts = [Part(number=p["number"], start=p["start"], end=p["end"], files=[DumpFile(**f) for f in p["files"]])
                     for p in raw["parts"]]
            return DumpListing(**{**raw, "parts": parts})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path}: not a listing growgpt kept ({e}); delete it") from None

    def compressed_bytes(self, part: int) -> int:
        if self.part_size is not None:
            return self.part_size
        if self.listing is None:
            return sum(f.stat().st_size for f in self.plan.data.files[part - 1])
        return self.listing.part(part).size or 0

    def download_bytes(self, part: int) -> int:
        if self.part_size is not None:
            return self.part_size
        if self.listing is None:
            return 0
        return sum((f.size or 0) for f in self.listing.part(part).files
                   if not (self.ws.raw / f.name).is_file())

    def files(self, part: int, progress: bool) -> list[Path]:
        """The part's dump files on local disk (downloading them first for a dump)."""
        if self.listing is None:
            return list(self.plan.data.files[part - 1])
        from growgpt.wiki.dumps import DEFAULT_MIRROR, fetch

        d = self.plan.data
        paths = fetch(d.wiki, self.listing.date, [part], self.ws.raw, mirror=d.mirror or DEFAULT_MIRROR,
                      multistream=d.multistream, progress=progress, require_checksum=d.require_checksum)
        return [p for p in paths if "index" not in p.name]
