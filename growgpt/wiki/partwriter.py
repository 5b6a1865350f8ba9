"""Writing one dump part: the duplicate filter, the Parquet files of articles and of dropped
pages, the manifest, and the disambiguation templates the run has learned so far.

Duplicates are exact (same text apart from whitespace) against every article written before, in
this part or an earlier one of the same out_dir: 8 bytes per article (a 64-bit BLAKE2 hash; ~55
MB for all of English Wikipedia, about 1 in a million chance of any false duplicate), rebuilt on a
re-run from the finished parts' texts. Output goes to temporary files renamed into place, Parquet
first and the manifest last: a part counts as finished only once its manifest is there and
matches the source (size, mtime or SHA-1) and the options, so a killed run leaves nothing a re-run
could take as finished. Texts arrive from the workers as an Arrow string column's buffers and are
written without a copy; row groups hold ~16 MB of text, the most buffered here.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import time
from array import array
from pathlib import Path

from growgpt.errors import UserError
from growgpt.fsutil import commit, hash_file, temp_path
from growgpt.wiki.bz2blocks import warn
from growgpt.wiki.pages import Result, new_counts, text_hash
from growgpt.wiki.tasks import Part, Restart, Stitch

MANIFEST_FORMAT = "growgpt-extract/2"  # /2: the dropped-pages file, exact disambiguation, timeouts
DROPPED_COLUMNS = ("id", "title", "ns", "reason", "detail", "source_chars")  # PART.dropped.parquet
DROP_REASONS = ("namespace", "redirect", "disambiguation", "empty", "too_short", "duplicate", "timeout")
# A page this big (characters of wikitext) dropped as disambiguation or empty is a red flag worth a
# warning: real disambiguation pages are lists of a few KB; at most BIG_DROP_WARNINGS per part and
# reason are printed, the rest counted. The manifest keeps the LARGEST_DROPPED biggest of each.
BIG_DROP_CHARS = 20_000
BIG_DROP_WARNINGS = 10
LARGEST_DROPPED = 5
_LARGEST_OF = ("disambiguation", "empty")
ROW_GROUP_BYTES = 16 << 20  # Parquet row groups: ~16 MB of text each, the most buffered here


class SeenHashes:
    """Hashes of the documents written so far: a sorted uint64 array (8 bytes each) plus a set of
    the most recent ones, merged into the array every 2^20 entries so memory stays ~8 B/doc. The
    array (and numpy, 0.2 s to import) waits for the first merge: importing it up front delayed the
    workers' start by as much."""

    def __init__(self) -> None:
        self._sorted = None  # numpy uint64 array, from the first merge on
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return (0 if self._sorted is None else int(self._sorted.size)) + len(self._recent)

    def add(self, h: int) -> bool:
        """Add `h`; False if it was already there."""
        if h in self._recent:
            return False
        s = self._sorted
        if s is not None and s.size:
            key = s.dtype.type(h)
            i = int(s.searchsorted(key))
            if i < s.size and s[i] == key:
                return False
        self._recent.add(h)
        if len(self._recent) >= 1 << 20:
            self.merge()
        return True

    def forget(self, hashes: array) -> None:
        """Remove `hashes` (what a part being read again had added)."""
        if not hashes:
            return
        self._recent.difference_update(hashes)
        if self._sorted is not None and self._sorted.size:
            import numpy as np

            self._sorted = self._sorted[~np.isin(self._sorted, np.frombuffer(hashes, dtype=np.uint64))]

    def merge(self) -> None:
        """Move the recent hashes into the sorted array."""
        import numpy as np

        fresh = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        self._sorted = np.sort(fresh if self._sorted is None else np.concatenate([self._sorted, fresh]))
        self._recent = set()


def load_hashes(parquet: Path, seen: SeenHashes) -> None:
    """Add the hashes of a finished part's texts: of their UTF-8 bytes as stored, which are the
    bytes hashed when the part was written (a zero-copy cast to binary; no decoding)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(parquet)
        for batch in pf.iter_batches(columns=["text"], batch_size=64):  # articles can be MBs: few at a time
            for data in batch.column(0).cast(pa.binary()).to_pylist():
                seen.add(text_hash(data or b""))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {parquet} (a finished part, for the duplicate filter): {e}; "
                        f"delete it and its manifest to redo it") from None


# ----------------------------------------------------------------------------------------------
# Manifests


def read_manifest(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT else None


def finished(part: Part, options: dict) -> dict | None:
    """The part's manifest if a previous run finished it from this very source with these options."""
    m = read_manifest(part.manifest)
    if (not m or not m.get("complete") or m.get("options") != options or not part.parquet.is_file()
            or not part.dropped.is_file()):
        return None
    if m.get("source_size") != part.size:
        return None
    if m.get("source_mtime_ns") != part.mtime_ns and m.get("source_sha1") != hash_file(part.path, "sha1").hexdigest():
        return None  # same size but other content (a re-download): redo
    return m


def write_json(path: Path, obj: dict) -> None:
    """Write a manifest crash-safely (fsync, rename, fsync the folder). Not fsutil.atomic_write_json:
    manifests are indented by 2, and an OSError must reach the run loop as it is (a disk full is
    worded there, naming the part)."""
    tmp = temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale(part: Part) -> None:
    for path in (part.parquet, part.manifest, part.dropped):
        for stale in part.out_dir.glob(path.name + ".tmp-*"):
            stale.unlink(missing_ok=True)  # left by a run that was killed mid-part


def _schema():
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("revid", pa.int64()), ("title", pa.string()), ("url", pa.string()),
                      ("text", pa.string())])


def _dropped_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("title", pa.string()), ("ns", pa.int32()), ("reason", pa.string()),
                      ("detail", pa.string()), ("source_chars", pa.int64())])


class WikiTemplates:
    """What the run knows about each wiki's disambiguation templates beyond the curated table:
    learned from the finished parts of out_dir (their manifests list the templates they applied,
    with where each was learned) and from the parts read in this run, in part order. Parts learn
    from everything finished before them, in this run or an earlier one, and from themselves (see
    `PartWriter.finish`); a killed and re-run extraction therefore learns exactly what an
    uninterrupted one does."""

    def __init__(self) -> None:
        self.learned: dict[str, object] = {}  # wiki key -> LearnedTemplates
        self.applied: dict[str, dict[str, set[str]]] = {}  # wiki key -> {finished part: templates it applied}
        self.seeds: dict[str, dict[str, str]] = {}  # wiki key -> {template: source}, from finished parts

    def add_finished(self, stem: str, manifest: dict) -> None:
        """What a part finished by an earlier run applied (and so, what later parts start from)."""
        key = (manifest.get("wiki") or {}).get("key") or ""
        applied = (manifest.get("disambiguation") or {}).get("templates_applied") or {}
        if key and isinstance(applied, dict):
            self.seeds.setdefault(key, {}).update(applied)
            self.applied.setdefault(key, {})[stem] = set(applied)

    def state(self, site: tuple, stem: str):
        """The LearnedTemplates of the wiki a part's <siteinfo> names (a wiki that names itself
        nowhere learns from its own part only)."""
        from growgpt.wiki.disambiguation import LearnedTemplates, detector_for

        key = site[0].key or f"?{stem}"
        state = self.learned.get(key)
        if state is None:
            state = self.learned[key] = LearnedTemplates(detector_for(*site).templates)
            for name, source in sorted(self.seeds.get(key, {}).items()):
                if not state.known(name):
                    state.extra[name] = source
        return state

    def finished(self, key: str, stem: str, applied: set[str]) -> None:
        if key:
            self.applied.setdefault(key, {})[stem] = set(applied)


class PartWriter:
    """Collects a part's documents in order, drops duplicates and pages that call disambiguation
    templates learned from the dump, and writes Parquet row groups to a temporary file that
    becomes the part's file only when the part is done; every dropped page goes to the part's
    `.dropped.parquet` the same way."""

    def __init__(self, part: Part, seen: SeenHashes, options: dict, wikis: WikiTemplates,
                 read_again: bool = False) -> None:
        import pyarrow.parquet as pq

        self.part = part
        self.seen = seen
        self.options = options
        self.wikis = wikis
        self.read_again = read_again  # this is the second reading, for templates learned late
        self.started = time.perf_counter()
        self.counts = new_counts()
        self.duplicates = 0
        self.written = 0
        self.chars = 0
        self.warnings: list[str] = []
        self.root_closed = False
        self.sha1 = hashlib.sha1()
        self.sha1_thread = None
        self.by_index = False  # a multistream part read by its index (set by the run loop)
        # what an unfinished or outdated run left is no longer true: without a manifest nothing
        # counts as finished, and no stale Parquet file is left for `prepare` to pick up
        part.manifest.unlink(missing_ok=True)
        part.parquet.unlink(missing_ok=True)
        part.dropped.unlink(missing_ok=True)
        _remove_stale(part)
        self.tmp = temp_path(part.parquet)
        self.dropped_tmp = temp_path(part.dropped)
        self.schema = _schema()
        # no dictionary encoding: every text, title and url is distinct
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd", use_dictionary=False)
        self.dropped_writer = pq.ParquetWriter(self.dropped_tmp, _dropped_schema(), compression="zstd",
                                               use_dictionary=["reason"])
        self.dropped_rows: list[tuple] = []
        self.largest: dict[str, list] = {reason: [] for reason in _LARGEST_OF}  # min-heaps by size
        self.big: dict[str, list] = {reason: [] for reason in _LARGEST_OF}  # big pages dropped: warned about
        self.big_count = dict.fromkeys(_LARGEST_OF, 0)
        self.batches: list = []
        self.buffered = 0  # bytes of Arrow data waiting for the next row group
        self.placed: list[Path] = []  # files renamed into place (removed again if the part is abandoned)
        self.added = array("Q")  # hashes this part added to `seen`
        self.stitch: Stitch | None = None  # read by bzip2 blocks
        self.site: tuple | None = None  # (Wiki, template namespace names, case), from the first result
        self.templates = None  # LearnedTemplates of the part's wiki
        self.called: set[str] = set()  # templates called by the documents written so far
        self.late: set[str] = set()  # templates learned here that documents written before were calling

    def add(self, result: Result) -> None:
        import pyarrow as pa

        for k, v in result.counts.items():
            self.counts[k] += v
        if result.site is not None and self.site is None:
            self.site = result.site
            self.templates = self.wikis.state(result.site, self.part.stem)
        learned = self.templates
        if learned is not None:
            stem = self.part.stem
            for key, page_id in result.templates:
                self._learned(learned.define(key, f"page {page_id} of {stem}", stem))
            for key, target in result.template_redirects:
                self._learned(learned.redirect(key, target, stem))
        extra = learned.extra if learned is not None else None
        drops, next_drop = result.dropped, 0
        cols: list[list] = [[], [], [], []]  # id, revid, title, url
        keep = []
        for i, doc in enumerate(result.docs):
            while next_drop < len(drops) and drops[next_drop][0] <= i:  # the file order of kept and dropped
                self._drop(drops[next_drop][1:])
                next_drop += 1
            keys = doc[7]
            if extra and keys and not extra.keys().isdisjoint(keys):
                hit = min(extra.keys() & keys)
                self.counts["disambiguation"] += 1
                self._drop((doc[0], doc[2], 0, "disambiguation", f"template {{{{{hit}}}}} ({extra[hit]})", doc[6]))
                keep.append(False)
                continue
            if not self.seen.add(doc[5]):
                self.duplicates += 1
                self._drop((doc[0], doc[2], 0, "duplicate", "same text as an article written before", doc[6]))
                keep.append(False)
                continue
            keep.append(True)
            if keys:
                self.called.update(keys)
            self.added.append(doc[5])
            for col, value in zip(cols, doc):
                col.append(value)
            self.chars += doc[4]
        for row in drops[next_drop:]:
            self._drop(row[1:])
        self.written += len(cols[0])
        self.root_closed = result.root_closed  # what the last chunk says counts
        if cols[0]:
            # the texts arrive as an Arrow string column's buffers: taken over as they are
            texts = pa.StringArray.from_buffers(len(keep), pa.py_buffer(result.offsets), pa.py_buffer(result.texts))
            if not all(keep):
                texts = texts.filter(pa.array(keep))
            arrays = [pa.array(c, type=t) for c, t in zip(cols, self.schema.types)] + [texts]
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
            self.batches.append(batch)
            self.buffered += batch.nbytes
        if self.buffered >= ROW_GROUP_BYTES:
            self.flush()

    def _learned(self, keys: list[str]) -> None:
        self.late.update(k for k in keys if k in self.called)

    def _drop(self, row: tuple) -> None:
        """Record a dropped page: (id, title, ns, reason, detail, characters of wikitext)."""
        self.dropped_rows.append(row)
        reason = row[3]
        if reason in self.largest:
            heap = self.largest[reason]
            item = (row[5], -(row[0] or 0), row[1], row[4])  # biggest first; the earlier page among equals
            if len(heap) < LARGEST_DROPPED:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
            if row[5] >= BIG_DROP_CHARS:
                self.big_count[reason] += 1
                if len(self.big[reason]) < BIG_DROP_WARNINGS:
                    self.big[reason].append((row[0], row[1], row[5], row[4]))
        if len(self.dropped_rows) >= 1 << 16:
            self._flush_dropped()

    def _flush_dropped(self) -> None:
        import pyarrow as pa

        if self.dropped_rows:
            columns = list(zip(*self.dropped_rows))
            schema = _dropped_schema()
            self.dropped_writer.write_table(pa.table([pa.array(c, type=t) for c, t in zip(columns, schema.types)],
                                                     schema=schema), row_group_size=1 << 30)
            self.dropped_rows = []

    def flush(self) -> None:
        """Write the buffered documents as one row group of the temporary Parquet file."""
        import pyarrow as pa

        if self.batches:
            self.writer.write_table(pa.Table.from_batches(self.batches, schema=self.schema), row_group_size=1 << 30)
        self.batches = []
        self.buffered = 0

    def abandon(self) -> None:
        """Remove everything this part wrote (a disk full, an interrupt, a part read again): no
        partial output stays, and the duplicate filter forgets its texts. Never raises: it runs
        while another error is on its way to the user."""
        for writer in (self.writer, self.dropped_writer):
            try:
                writer.close()
            except Exception:
                pass  # a full disk can fail the close too; the file goes anyway
        self.seen.forget(self.added)
        self.added = array("Q")
        for leftover in (self.tmp, self.dropped_tmp, *self.placed,
                         temp_path(self.part.manifest)):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass

    def _place(self, tmp: Path, final: Path) -> None:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        self.placed.append(final)  # in place, but not finished until the manifest is

    def finish(self, error: str | None = None) -> dict:
        """Put the dropped-pages file and the Parquet file in place, then the manifest; returns the
        manifest. Raises Restart instead when templates learned from this part were called by
        documents already written (their template page came after them): the part is read again,
        knowing them from its start, so that its output is what it would be had it known them."""
        if error is None and self.late and not self.read_again:
            names = ", ".join(f"{{{{{k}}}}}" for k in sorted(self.late)[:3])
            raise Restart(self.part, f"disambiguation templates learned late in the part ({names})",
                          sequential=False, read_again=True)
        self.flush()
        self.writer.close()
        self._flush_dropped()
        self.dropped_writer.close()
        self._place(self.dropped_tmp, self.part.dropped)
        self._place(self.tmp, self.part.parquet)
        if self.sha1_thread is not None:
            self.sha1_thread.join()
        if error is None and not self.root_closed:
            self._warn(f"{self.part.path} ends after a complete </page> without </mediawiki> (truncated?); "
                       f"its {self.counts['pages']:,} pages were read")
        for reason, pages in self.big.items():
            for page_id, title, chars, detail in pages:
                self._warn(f"{self.part.stem}: {title!r} (page {page_id}, {chars:,} characters of wikitext) was "
                           f"dropped as {reason}: {detail}")
            if self.big_count[reason] > len(pages):
                more = self.big_count[reason] - len(pages)
                self._warn(f"{self.part.stem}: {more:,} more pages of over {BIG_DROP_CHARS:,} characters were "
                           f"dropped as {reason}; see {self.part.dropped.name}")
        wiki_key = ""
        applied: dict[str, str] = {}
        defined: list[str] = []
        if self.templates is not None:
            wiki_key = self.site[0].key
            applied = dict(sorted(self.templates.extra.items()))
            defined = self.templates.learned_in(self.part.stem)
            self._warn_earlier_parts(wiki_key, defined)
        manifest = self._manifest(error, wiki_key, applied, defined)
        write_json(self.part.manifest, manifest)
        if error is None:
            self.wikis.finished(wiki_key, self.part.stem, set(applied))
        return manifest

    def _manifest(self, error: str | None, wiki_key: str, applied: dict[str, str], defined: list[str]) -> dict:
        from growgpt import __version__

        c = self.counts
        return {
            "format": MANIFEST_FORMAT,
            "source": str(self.part.path),
            "source_name": self.part.path.name,
            "source_size": self.part.size,
            "source_mtime_ns": self.part.mtime_ns,
            "source_sha1": self.sha1.hexdigest() if error is None else None,
            "multistream_index": str(self.part.index) if self.part.index else None,
            "parquet": self.part.parquet.name,
            "dropped": self.part.dropped.name,
            "complete": error is None,
            "error": error,
            "warnings": self.warnings,
            "pages_seen": c["pages"],
            "articles_written": self.written,
            "redirects": c["redirects"],
            "non_article_namespace": c["non_article"],
            "filtered": {"too_short": c["too_short"], "disambiguation": c["disambiguation"], "empty": c["empty"],
                         "duplicate": self.duplicates, "timeout": c["timeout"]},
            "largest_dropped": {reason: [{"id": -neg_id or None, "title": title, "source_chars": chars,
                                          "detail": detail}
                                         for chars, neg_id, title, detail in sorted(heap, reverse=True)]
                                for reason, heap in self.largest.items()},
            "characters_written": self.chars,
            "wiki": None if self.site is None else {
                "key": wiki_key, "language": self.site[0].language, "project": self.site[0].project},
            "disambiguation": {
                "filter": not self.options.get("keep_disambiguation", False),
                "curated_templates": 0 if self.templates is None else len(self.templates.curated),
                # learned from the dump (this part or parts finished before it), with where: the
                # next parts of the same wiki start from these
                "templates_applied": applied,
                "templates_defined_here": defined,
                "read_twice": self.read_again,
            },
            "seconds": round(time.perf_counter() - self.started, 3),
            "options": self.options,
            "growgpt_version": __version__,
        }

    def _warn(self, message: str) -> None:
        """Print a warning and keep it in the manifest."""
        warn(message)
        self.warnings.append(message)

    def _warn_earlier_parts(self, wiki_key: str, defined: list[str]) -> None:
        """Templates first learned here that finished parts of the same wiki did not know."""
        if not defined or not wiki_key:
            return
        unaware = sorted(stem for stem, applied in self.wikis.applied.get(wiki_key, {}).items()
                         if stem != self.part.stem and not set(defined) <= applied)
        if unaware:
            names = ", ".join(f"{{{{{k}}}}}" for k in defined[:5])
            more = f" and {len(defined) - 5} more" if len(defined) > 5 else ""
            parts = ", ".join(unaware[:5]) + (" ..." if len(unaware) > 5 else "")
            self._warn(f"{self.part.stem} defines disambiguation template(s) {names}{more}, which the finished "
                       f"part(s) {parts} did not know: any of their pages that call them was kept; delete their "
                       f".manifest.json and run extract again to redo them")
