"""MediaWiki XML dumps (.xml.bz2 or .xml) to Parquet files of clean article text.

`extract(inputs, out_dir)` turns each dump part `raw/NAME.xml-pA-pB.bz2` into
`out_dir/NAME-pA-pB.parquet` (columns id, revid, title, url, text; one row per article, in file
order), `out_dir/NAME-pA-pB.dropped.parquet` (every page that did not become a document, with its
reason; `growgpt dropped` lists them, largest first) and `out_dir/NAME-pA-pB.manifest.json` (what
was read, kept and dropped, and why). Parts are written one after another in page-range order by
this process alone, while worker processes read and clean them (`tasks`), so the output does not
depend on the number of processes or on how a file was read, and the earlier part keeps a
duplicate; a finished part is never rewritten, so parts added later lose the duplicates, and a
killed run, run again, writes exactly what one uninterrupted run writes. Disambiguation templates
a part teaches apply to it and to the parts after it; a part that taught one late (after pages
calling it) is read a second time. Every failure is a one-line UserError naming the file (for
bz2, the compressed offset of the damage); the pages before damage are written, marked
incomplete, and the run stops there.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from growgpt.errors import UserError
from growgpt.fsutil import hash_file
from growgpt.wiki.bz2blocks import warn
from growgpt.wiki.pages import DEFAULT_MIN_CHARS, DEFAULT_PAGE_TIMEOUT, MAX_PAGE_TIMEOUT, install_timer, restore_timer
from growgpt.wiki.partwriter import (
    DROP_REASONS,
    DROPPED_COLUMNS,
    PartWriter,
    SeenHashes,
    WikiTemplates,
    finished,
    load_hashes,
    read_manifest,
)
from growgpt.wiki.tasks import Inline, Part, Restart, Stitch, plan, reading, run_block_task, run_task


def default_processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def extract(inputs: list[str], out_dir: str, processes: int | None = None, min_chars: int = DEFAULT_MIN_CHARS,
            keep_tables: bool = False, progress: bool = True, keep_disambiguation: bool = False,
            page_timeout: float = DEFAULT_PAGE_TIMEOUT, *, _clean: bool = True) -> list[dict]:
    """Extract the articles of MediaWiki XML dump parts into `out_dir`, one Parquet file, one
    dropped-pages file and one manifest per part; returns the manifests in part order (finished
    parts from an earlier run are skipped and their manifests returned with `"skipped": true`).
    `page_timeout`: CPU seconds a page's cleaning may take before it is dropped (0: no limit).
    Workers are started with "spawn", so a script calling this needs the `if __name__ ==
    "__main__":` guard."""
    if min_chars < 0:
        raise UserError(f"--min-chars must be >= 0, not {min_chars}")
    if not 0 <= page_timeout <= MAX_PAGE_TIMEOUT:  # (also refuses NaN)
        raise UserError(f"--page-timeout must be 0 (no limit) to {MAX_PAGE_TIMEOUT:,.0f} seconds, not {page_timeout}")
    if processes is None:
        processes = default_processes()
    if processes < 1:
        raise UserError(f"--processes must be >= 1, not {processes}")
    if not inputs:
        raise UserError("no input files given")
    out = Path(out_dir)
    parts = plan(inputs, out)
    if not parts:
        raise UserError("no dump files among the inputs (only multistream index files)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    options = {"min_chars": min_chars, "keep_tables": keep_tables, "keep_disambiguation": keep_disambiguation,
               "page_timeout": page_timeout}
    if not _clean:
        options["clean"] = False
    manifests: dict[str, dict] = {}
    todo: list[Part] = []
    for part in parts:
        m = finished(part, options)
        if m is not None:
            manifests[part.stem] = dict(m, skipped=True)
        else:
            todo.append(part)
    if todo:
        for m in _Run(todo, out, processes, options, progress).run():
            manifests[Path(m["parquet"]).name[: -len(".parquet")]] = m
    return [manifests[p.stem] for p in parts]


# ----------------------------------------------------------------------------------------------
# The run loop: a producer of events in file order, and a consumer that writes them


@dataclass
class _Begin:
    part: Part
    sha1: object  # hashlib object, fed as the part is read
    started: float  # the part's time starts when its reading does


@dataclass
class _HashOnTheSide:  # a part read by its multistream index: its tasks do not pass through here
    part: Part


@dataclass
class _Stitching:  # a part read by bzip2 blocks: the results are joined by this Stitch
    part: Part
    stitch: Stitch


@dataclass
class _Work:
    part: Part
    blocks: bool  # a task of bzip2 blocks (run_block_task), else run_task
    task: object  # the Task, until it is handed out: then None, and `future` holds its result
    future: object = None


@dataclass
class _End:
    part: Part


@dataclass
class _Failed:  # the part cannot be read (nothing more of it comes)
    part: Part
    message: str


@dataclass
class _Restarted:  # the part is read again (nothing more of it comes)
    part: Part
    restart: Restart


class _Run:
    """One extraction of the parts `todo` into `out`: `produce` yields the events of every part in
    order, `run` hands their tasks to the workers (at most 2 x processes + 2 in flight) and
    `consume` takes the events back in order and writes each part. A part that must be read
    again (Restart) is dropped and produced again from its start."""

    def __init__(self, todo: list[Part], out: Path, processes: int, options: dict, progress: bool) -> None:
        self.todo = todo
        self.out = out
        self.processes = processes
        self.options = options
        self.progress = progress
        self.opts = {key: options[key] for key in ("min_chars", "keep_tables", "keep_disambiguation", "page_timeout")}
        self.opts["clean"] = options.get("clean", True)
        self.queue: collections.deque = collections.deque()  # events in file order
        self.done: list[dict] = []
        self.writer: PartWriter | None = None
        self.sequential: set[str] = set()  # parts whose reading by blocks or by index had to be given up
        self.read_again: set[str] = set()  # parts being read a second time for templates they taught late
        self.progress_at: dict[str, int] = {}  # compressed bytes of each part the progress bar counts
        self.pool = None
        self.bar = None
        # the duplicate filter and the learned templates start with every finished part of out_dir
        # that is not being redone
        self.seen = SeenHashes()
        self.wikis = WikiTemplates()
        redo = {p.stem for p in todo}
        for mf in sorted(out.glob("*.manifest.json")):
            stem = mf.name[: -len(".manifest.json")]
            m = read_manifest(mf)
            if stem not in redo and m and m.get("complete") and (out / f"{stem}.parquet").is_file():
                load_hashes(out / f"{stem}.parquet", self.seen)
                self.wikis.add_finished(stem, m)

    def run(self) -> list[dict]:
        """Extract every part; returns their manifests."""
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=sum(p.size for p in self.todo), unit="B", unit_scale=True, desc="extract",
                            file=sys.stderr, dynamic_ncols=True)
        if self.processes > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: workers import only the reading modules and the cleaner (not
            # pyarrow), and a fork of a process with pyarrow's threads is not safe
            self.pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=install_timer)
        previous_handler = install_timer()  # the page budget for what this process cleans itself
        try:
            self._loop()
        except OSError as e:  # a disk full, a file that vanished: the user's to fix
            self._cancel_queued()
            failed, self.writer = self.writer, None
            if failed is not None:
                failed.abandon()
            raise UserError(_os_error_message(e, failed, self.out)) from None
        except BaseException:
            if self.writer is not None:
                self.writer.abandon()
                self.writer = None
            raise
        finally:
            restore_timer(previous_handler)
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            if self.bar is not None:
                self.bar.close()
        return self.done

    def _loop(self) -> None:
        window = 2 * self.processes + 2  # chunks in flight: enough to keep every worker busy, bounded memory
        events = self.produce(self.todo)
        while True:
            in_flight = 0
            try:
                for event in events:
                    if isinstance(event, _Work):
                        if self.pool is None:
                            event.future = Inline(event.task)
                        else:
                            event.future = self.pool.submit(run_block_task if event.blocks else run_task, event.task)
                        event.task = None
                        in_flight += 1
                    self.queue.append(event)
                    while in_flight >= window or (self.pool is None and in_flight):
                        in_flight -= self._consume_next()
                while self.queue:
                    in_flight -= self._consume_next()
                return
            except Restart as e:  # everything of this part is dropped and it is read again
                self._cancel_queued()
                if self.writer is not None:
                    self.writer.abandon()
                    self.writer = None
                if self.bar is not None:
                    self.bar.update(-self.progress_at.pop(e.part.stem, 0))
                if e.sequential:
                    self.sequential.add(e.part.stem)
                if e.read_again:
                    self.read_again.add(e.part.stem)
                events = self.produce(self.todo[self.todo.index(e.part):])

    def produce(self, parts: list[Part]):
        """Every event of `parts`, in order: _Begin, then for a part read by bzip2 blocks a
        _Stitching and its _Work, else its _Work (after a _HashOnTheSide if read by its index); then
        _End. Or, after which nothing more comes: _Failed, or _Restarted to read the part again."""
        for part in parts:
            sha1 = hashlib.sha1()
            yield _Begin(part, sha1, time.perf_counter())
            try:
                kind, stitch, tasks, on_the_side = reading(part, self.opts, sha1, self.pool is not None,
                                                           sequential=part.stem in self.sequential)
                if on_the_side:
                    yield _HashOnTheSide(part)
                if stitch is not None:
                    yield _Stitching(part, stitch)
                for task in tasks:
                    yield _Work(part, kind == "blocks", task)
            except UserError as e:
                yield _Failed(part, str(e))
                return
            except Restart as e:
                yield _Restarted(part, e)
                return
            yield _End(part)

    def _consume_next(self) -> int:
        """Consume the oldest event; returns 1 if it was a task's (one fewer in flight), else 0."""
        event = self.queue.popleft()
        self.consume(event)
        return isinstance(event, _Work)

    def consume(self, event) -> None:
        """Take the next event in file order: write what it brings to the part's writer."""
        part = event.part
        if isinstance(event, _Begin):
            self.writer = PartWriter(part, self.seen, self.options, self.wikis,
                                     read_again=part.stem in self.read_again)
            self.writer.sha1, self.writer.started = event.sha1, event.started
        elif isinstance(event, _HashOnTheSide):
            writer = self.writer
            writer.by_index = True

            def hash_whole_file(w=writer):
                w.sha1 = hash_file(part.path)
            writer.sha1_thread = threading.Thread(target=hash_whole_file, daemon=True)
            writer.sha1_thread.start()
        elif isinstance(event, _Stitching):
            self.writer.stitch = event.stitch
        elif isinstance(event, _Work):
            try:
                result = event.future.result()
            except Exception as e:
                from concurrent.futures.process import BrokenProcessPool

                if isinstance(e, BrokenProcessPool):
                    raise UserError(f"a worker process died while extracting {part.path} (killed, or out of memory?); "
                                    f"finished parts are kept, run again to continue") from None
                raise
            stitch = self.writer.stitch
            for r in stitch.take(result, self.writer.root_closed) if event.blocks else [result]:
                self._add(r)
            self._advance(part, result.comp_end)
        elif isinstance(event, _End):
            if self.writer.stitch is not None:
                self._add(self.writer.stitch.fragment(final=True))
            self.done.append(self.writer.finish())
            self._advance(part, part.size)
            self.writer = None
        elif isinstance(event, _Failed):
            self._fail(event.message, keep=False)
        elif isinstance(event, _Restarted):
            raise event.restart

    def _add(self, result) -> None:
        writer = self.writer
        writer.add(result)
        if result.error is not None:
            if writer.by_index:  # a wrong index, or damage: the sequential reader tells which
                warn(f"reading {writer.part.path} by its multistream index {writer.part.index} failed "
                     f"({result.error}); reading the file sequentially")
                raise Restart(writer.part, result.error)
            if writer.stitch is not None:  # the sequential reader words it, and keeps the pages before
                raise Restart(writer.part, result.error)
            self._fail(result.error, keep=True)

    def _fail(self, message: str, keep: bool) -> None:
        """Stop the run on a part that cannot be read on: with `keep` (damage after some pages), the
        pages before are written and the part marked incomplete."""
        self._cancel_queued()
        if self.writer is None or not keep:
            raise UserError(message)
        manifest = self.writer.finish(error=message)  # may itself meet a full disk: an OSError for `run`
        self.writer = None
        raise UserError(f"{message}; the {manifest['articles_written']:,} articles before it were written "
                        f"to {self.out / manifest['parquet']}, marked incomplete (a re-run redoes this part)")

    def _advance(self, part: Part, comp_end: int) -> None:
        if self.bar is not None:
            self.bar.update(comp_end - self.progress_at.get(part.stem, 0))
            self.progress_at[part.stem] = comp_end

    def _cancel_queued(self) -> None:
        for event in self.queue:
            if isinstance(event, _Work):
                event.future.cancel()
        self.queue.clear()


def _os_error_message(e: OSError, writer: PartWriter | None, out: Path) -> str:
    reason = e.strerror or str(e)
    if writer is None:
        return f"cannot read or write {e.filename or out}: {reason}"
    part = writer.part
    if e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e) or "Disk quota" in str(e):
        return (f"disk full while writing {part.parquet} (from {part.path}): {reason}; its partial output was "
                f"removed and the parts finished before it are intact: free some space and run again")
    return (f"cannot read or write {e.filename or part.parquet} while extracting {part.path}: {reason}; its "
            f"partial output was removed and the parts finished before it are intact")


# ----------------------------------------------------------------------------------------------
# Reporting


def format_summary(manifests: list[dict], largest: int = 3, out_dir: str | None = None) -> str:
    """A few lines for the CLI: per part and in total, what was written, what was dropped and why,
    the largest pages dropped as disambiguation or empty (a big one is a red flag), and (given the
    output folder) the command that lists every dropped page."""
    lines = []
    tot = {"articles": 0, "chars": 0, "pages": 0}
    reasons: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
    for m in manifests:
        state = "skipped (already done)" if m.get("skipped") else ("INCOMPLETE" if not m.get("complete") else "")
        lines.append(f"{m['parquet']}: {m['articles_written']:,} articles, {m['characters_written']:,} chars from "
                     f"{m['pages_seen']:,} pages {state}".rstrip())
        counts = dropped_counts(m)
        lines.append("  dropped: " + ", ".join(f"{n:,} {_REASON_WORDS[r]}" for r, n in counts.items()))
        for reason, pages in (m.get("largest_dropped") or {}).items():
            if pages:
                shown = "; ".join(f"{p['title']!r} ({p['source_chars']:,} chars: {p['detail']})"
                                  for p in pages[:largest])
                lines.append(f"  largest dropped as {reason}: {shown}")
        tot["articles"] += m["articles_written"]
        tot["chars"] += m["characters_written"]
        tot["pages"] += m["pages_seen"]
        for r, n in counts.items():
            reasons[r] += n
    if len(manifests) > 1:
        lines.append(f"total: {tot['articles']:,} articles, {tot['chars']:,} chars from {tot['pages']:,} pages "
                     f"in {len(manifests)} parts; dropped: " + ", ".join(f"{n:,} {_REASON_WORDS[r]}"
                                                                        for r, n in reasons.items()))
    if out_dir is not None:
        lines.append(f"every dropped page, with its reason: growgpt dropped {out_dir} [--reason REASON]")
    return "\n".join(lines)


_REASON_WORDS = {"namespace": "other namespaces", "redirect": "redirects", "disambiguation": "disambiguation",
                 "empty": "empty", "too_short": "too short", "duplicate": "duplicates", "timeout": "timeouts"}


def dropped_counts(m: dict) -> dict[str, int]:
    """A manifest's counts of dropped pages by reason."""
    f = m.get("filtered", {})
    return {"namespace": m.get("non_article_namespace", 0), "redirect": m.get("redirects", 0),
            **{r: f.get(r, 0) for r in DROP_REASONS[2:]}}


def dropped_pages(path: str | Path, reason: str | None = None, limit: int | None = 20) -> tuple[list[dict], int]:
    """The pages extract dropped, largest first (by characters of wikitext): from one
    `PART.dropped.parquet` (or the part's .parquet / .manifest.json beside it) or every part of an
    extract folder. Returns (up to `limit` rows, number of rows that matched)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if reason is not None and reason not in DROP_REASONS:
        raise UserError(f"--reason must be one of {', '.join(DROP_REASONS)}, not {reason!r}")
    if limit is not None and limit < 0:
        raise UserError(f"--limit must be >= 0, not {limit}")
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.dropped.parquet"))
        if not files:
            raise UserError(f"no dropped-pages files (*.dropped.parquet) in {p}: not a folder written by growgpt "
                            f"extract (or written before they existed: run extract again)")
    else:
        for suffix in (".manifest.json", ".dropped.parquet", ".parquet"):
            if p.name.endswith(suffix):
                p = p.with_name(p.name[: -len(suffix)] + ".dropped.parquet")
                break
        if not p.is_file():
            raise UserError(f"dropped-pages file not found: {p}")
        files = [p]
    tables = []
    for f in files:
        try:
            t = pq.read_table(f, columns=list(DROPPED_COLUMNS))
        except (OSError, ValueError, pa.ArrowInvalid) as e:
            raise UserError(f"cannot read {f}: {e}") from None
        if reason is not None:
            t = t.filter(pc.equal(t["reason"], reason))
        tables.append(t.append_column("part", pa.array([f.name[: -len(".dropped.parquet")]] * t.num_rows,
                                                       type=pa.string())))
    table = pa.concat_tables(tables)
    matched = table.num_rows
    order = pc.sort_indices(table, sort_keys=[("source_chars", "descending")])
    if limit is not None:
        order = order[:limit]
    return table.take(order).to_pylist(), matched


def format_dropped(rows: list[dict], matched: int) -> str:
    lines = [f"{'chars':>10}  {'reason':<14}  {'id':>9}  title  (detail)  [part]"]
    for r in rows:
        detail = f"  ({r['detail']})" if r["detail"] else ""
        page_id = r["id"] if r["id"] is not None else "-"
        lines.append(f"{r['source_chars']:>10,}  {r['reason']:<14}  {page_id:>9}  {r['title']}{detail}  [{r['part']}]")
    lines.append(f"{len(rows):,} of {matched:,} dropped pages shown, largest first")
    return "\n".join(lines)
