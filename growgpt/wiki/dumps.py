"""List, download and verify the parts of a Wikipedia dump from a Wikimedia dump mirror.

`list_parts(wiki, date)` says what a dump holds: its parts (`pages-articlesN.xml-pApB.bz2`, one or more
files each, with page ranges), sizes, checksums and whether the dump job is done, from the dump's
dumpstatus.json (else its sha1sums/md5sums.txt, sizes from Content-Length), each field checked before
it is believed. `fetch(wiki, date, "1-3", to_dir)` downloads parts resumably (`NAME.partial`, Range),
each read up to its listed size with its SHA-1 (else MD5) computed as the bytes arrive, checks the free
space first, and says which checksum verified each file. File URLs are built from checked names as
`{mirror}/{wiki}/{date}/{name}`, never taken from the listing, so a listing can only point inside the
dump's folder. Reading from the mirror, bounded against one that misbehaves, is `growgpt.wiki.mirror`'s."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_bytes, commit, hash_file
from growgpt.wiki.mirror import (
    READ_BYTES,
    TRANSIENT,
    Dropped,
    Patience,
    Reply,
    Unavailable,
    head_size,
    local_path,
    make_patience,
    open_url,
    read_chunk,
    read_listing,
    retrying,
    show,
)

DEFAULT_MIRROR = "https://dumps.wikimedia.org"
TEXT_PER_COMPRESSED = 0.7  # extract's Parquet, per byte of bz2 (measured 0.56-0.67)
TOKENS_PER_COMPRESSED = 0.8  # uint16 GPT-2 token shards, per byte of bz2 (measured 0.72 on enwiki)
BYTE_TOKENS_PER_COMPRESSED = 3.4  # uint16 byte-tokenizer shards: 2 bytes per UTF-8 byte of text (1.66-1.69)
MAX_LISTED_FILES = 10_000  # enwiki's multistream job lists ~130; more means the listing is not a dump's

_JOBS = {False: "articlesdump", True: "articlesmultistreamdump"}
_WIKI = re.compile(r"[a-z][a-z0-9_]*\Z")
_DATE = re.compile(r"\d{8}\Z")
_HEX_DIGITS = {"sha1": 40, "md5": 32}
_MAX_NAME = 255  # the longest file name most filesystems take


@dataclass
class DumpFile:
    name: str
    url: str
    size: int | None  # bytes; None when the mirror does not say
    sha1: str | None
    md5: str | None
    start: int | None = None  # page-id range from the name (-pSTARTpEND); None for a whole wiki
    end: int | None = None

    @property
    def is_index(self) -> bool:
        return "-multistream-index" in self.name


@dataclass
class Part:
    number: int
    start: int | None
    end: int | None
    files: list[DumpFile]

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(sizes)


@dataclass
class DumpListing:
    wiki: str
    date: str
    mirror: str
    multistream: bool
    jobs: dict[str, str]  # job name -> status ("done", "in-progress", ...)
    parts: list[Part]
    source: str  # URL the listing was read from
    warnings: list[str] = field(default_factory=list)

    def part(self, number: int) -> Part:
        return next(p for p in self.parts if p.number == number)


class FetchedPaths(list):
    """What `fetch` returns: a plain list of the requested files' paths, plus `verified_by`, which
    maps each path to the checksum that verified it ("sha1" or "md5"), or to None where the listing
    gave no checksum and only the size (if listed) was checked."""

    def __init__(self, paths: list[Path], verified_by: dict[Path, str | None]):
        super().__init__(paths)
        self.verified_by = verified_by


def _json_kind(value: Any) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return "true/false"
    kinds = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _file_pattern(wiki: str, date: str, multistream: bool) -> re.Pattern:
    kind = r"-multistream(?P<index>-index)?" if multistream else ""
    ext = r"(?(index)txt|xml)" if multistream else "xml"
    return re.compile(rf"{re.escape(wiki)}-{re.escape(date)}-pages-articles{kind}(?P<n>\d*)\.{ext}"
                      r"(?:-p(?P<start>\d+)p(?P<end>\d+))?\.bz2\Z")


def check_name(name: str, wiki: str, date: str, multistream: bool = False) -> re.Match:
    """The name's match against the dump-file pattern; UserError for anything else a mirror sends."""
    if (not name or "/" in name or "\\" in name or ".." in name or name.startswith(".")
            or len(name) > _MAX_NAME):
        raise UserError(f"refusing remote file name {show(name)}: not a plain file name")
    m = _file_pattern(wiki, date, multistream).match(name)
    if not m:
        raise UserError(f"refusing remote file name {show(name)}: not a {wiki} {date} pages-articles dump file")
    return m


def base_url(mirror: str) -> str:
    """The mirror as a URL: a plain folder becomes file://."""
    if "://" not in mirror:
        return Path(mirror).expanduser().resolve().as_uri()
    if urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise UserError(f"mirror {mirror!r}: only http(s)://, file:// or a local folder")
    return mirror.rstrip("/")


def check_wiki_date(wiki: str, date: str) -> None:
    if not _WIKI.match(wiki):
        raise UserError(f"wiki {wiki!r}: expected a database name like enwiki or elwikivoyage")
    if date != "latest" and not _DATE.match(date):
        raise UserError(f"date {date!r}: expected YYYYMMDD or latest")


# ---- listings ------------------------------------------------------------------------------------

def _dated_folders(base: str, wiki: str, patience: Patience) -> list[str]:
    """Dated dump folders of `wiki` on the mirror, newest first."""
    url = f"{base}/{wiki}/"
    path = local_path(url)
    if path is not None:
        if not path.is_dir():
            raise UserError(f"not found: {url}")
        names = os.listdir(path)
    else:
        names = re.findall(r'href="(\d{8})/?"', read_listing(url, patience).decode("utf-8", "replace"))
    return sorted({n for n in names if _DATE.match(n)}, reverse=True)


def _json(raw: bytes, source: str):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[... nested deeper than Python goes
        raise UserError(f"{source} is not valid JSON: {show(str(e), 200)}") from None


def _jobs_of(status, source: str) -> dict:
    """The `jobs` object of a parsed dumpstatus.json, after checking the shapes on the way."""
    if not isinstance(status, dict):
        raise UserError(f"{source}: the top level is {_json_kind(status)}, expected an object with 'jobs'")
    jobs = status.get("jobs")
    if not isinstance(jobs, dict):
        raise UserError(f"{source}: field 'jobs' is {_json_kind(jobs)}, expected an object of dump jobs")
    return jobs


def _jobs_as_hint(raw: bytes) -> dict:
    """The `jobs` object of a dumpstatus.json read only for a hint; {} when anything about it is malformed."""
    try:
        return _jobs_of(json.loads(raw), "")
    except (ValueError, RecursionError, UserError):
        return {}


def _date_named_by(raw: bytes, wiki: str) -> str | None:
    """The dump date in the file names of a latest/dumpstatus.json; None when it names none (it is only a
    hint: whatever it names is read again, and checked, from the dated folder)."""
    for job in _jobs_as_hint(raw).values():
        files = job.get("files") if isinstance(job, dict) else None
        for name in files if isinstance(files, dict) else ():
            m = re.match(rf"{re.escape(wiki)}-(\d{{8}})-", name)
            if m:
                return m.group(1)
    return None


def _job_state(raw: bytes, job_name: str) -> str | None:
    """The status of `job_name` in a dumpstatus.json; None when anything about it is malformed."""
    job = _jobs_as_hint(raw).get(job_name)
    state = job.get("status") if isinstance(job, dict) else None
    return state if isinstance(state, str) else None


def _resolve_latest(base: str, wiki: str, multistream: bool, patience: Patience) -> tuple[str, bytes | None]:
    """(date, its dumpstatus.json if already read) for date "latest"."""
    try:
        date = _date_named_by(read_listing(f"{base}/{wiki}/latest/dumpstatus.json", patience), wiki)
        if date is not None:
            return date, None  # re-read from the dated folder: names carry the date
    except Unavailable:
        pass
    dates = _dated_folders(base, wiki, patience)
    if not dates:
        raise UserError(f"no dated dump folders (YYYYMMDD) under {base}/{wiki}/ to take the latest from")
    first = None
    for date in dates[:6]:  # a dump takes weeks; older than a few folders back means something is off
        try:
            raw = read_listing(f"{base}/{wiki}/{date}/dumpstatus.json", patience)
        except Unavailable:
            continue
        first = first or (date, raw)
        if _job_state(raw, _JOBS[multistream]) == "done":
            return date, raw
    if first is None:
        raise UserError(f"no dump with a dumpstatus.json under {base}/{wiki}/")
    return first  # nothing done: the newest, whose status list_parts reports (or whose errors it names)


@dataclass
class _Listed:
    size: int | None
    sha1: str | None
    md5: str | None


def _checksum(value, algo: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(rf"[0-9a-fA-F]{{{_HEX_DIGITS[algo]}}}", value):
        raise UserError(f"{where}.{algo} is {show(value)}, expected {_HEX_DIGITS[algo]} hex digits")
    return value.lower()


def _listed(info, where: str) -> _Listed:
    if not isinstance(info, dict):
        raise UserError(f"{where} is {_json_kind(info)}, expected an object with size, sha1 and md5")
    size = info.get("size")
    if size is not None and (type(size) is not int or size < 0):
        raise UserError(f"{where}.size is {show(size)}, expected a whole number of bytes")
    return _Listed(size, _checksum(info.get("sha1"), "sha1", where), _checksum(info.get("md5"), "md5", where))


def _from_status(raw: bytes, source: str, job_name: str) -> tuple[dict[str, str], dict[str, _Listed]]:
    """(job name -> status, file name -> what is listed) from a dumpstatus.json, shapes checked."""
    jobs = _jobs_of(_json(raw, source), source)
    states = {name: job["status"] for name, job in jobs.items()
              if isinstance(job, dict) and isinstance(job.get("status"), str)}
    if job_name not in jobs:
        raise UserError(f"{source} has no {job_name} job (jobs: {', '.join(sorted(jobs))[:200] or 'none'})")
    job = jobs[job_name]
    if not isinstance(job, dict):
        raise UserError(f"{source}: field jobs.{job_name} is {_json_kind(job)}, expected an object")
    if job_name not in states:
        raise UserError(f"{source}: field jobs.{job_name}.status is {show(job.get('status'))}, "
                        "expected a string such as 'done'")
    files = job.get("files")
    files = {} if files is None else files
    if not isinstance(files, dict):
        raise UserError(f"{source}: field jobs.{job_name}.files is {_json_kind(files)}, "
                        "expected an object of file name -> size and checksums")
    return states, {name: _listed(info, f"{source}: field jobs.{job_name}.files[{show(name)}]")
                    for name, info in files.items()}


def _from_sums(base: str, wiki: str, date: str, patience: Patience) -> tuple[dict[str, _Listed], str] | None:
    """{name: checksum, no size} from the dump's sha1sums.txt (else md5sums.txt); None if neither is there."""
    for algo in ("sha1", "md5"):
        url = f"{base}/{wiki}/{date}/{wiki}-{date}-{algo}sums.txt"
        try:
            text = read_listing(url, patience).decode("utf-8", "replace")
        except Unavailable:
            continue
        line_pattern = re.compile(rf"([0-9a-fA-F]{{{_HEX_DIGITS[algo]}}})[ \t]+\*?(\S+)")
        files = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            m = line_pattern.fullmatch(line.strip())
            if not m:
                raise UserError(f"{url}: line {number} is {show(line)}, expected '<{algo} as "
                                f"{_HEX_DIGITS[algo]} hex digits>  <file name>'")
            digest = m.group(1).lower()
            files[m.group(2)] = _Listed(None, digest if algo == "sha1" else None, digest if algo == "md5" else None)
        return files, url
    return None


def _check_count(listed: dict, source: str, job_name: str) -> None:
    if len(listed) > MAX_LISTED_FILES:
        raise UserError(f"{source} lists {len(listed):,} {job_name} files, more than any dump has "
                        f"({MAX_LISTED_FILES:,}); refusing it")


def list_parts(wiki: str, date: str, mirror: str = DEFAULT_MIRROR, multistream: bool = False,
               timeout: float | None = None) -> DumpListing:
    """What dump `wiki`/`date` ("latest" allowed) holds on `mirror`; UserError if it is not there.
    `timeout`: seconds for the whole listing (each listing document has LISTING_DEADLINE_S anyway)."""
    return _list_parts(wiki, date, mirror, multistream, make_patience(timeout, None, None))


def _list_parts(wiki: str, date: str, mirror: str, multistream: bool, patience: Patience) -> DumpListing:
    check_wiki_date(wiki, date)
    base = base_url(mirror)
    job_name = _JOBS[multistream]
    raw = None
    if date == "latest":
        date, raw = _resolve_latest(base, wiki, multistream, patience)
    source = f"{base}/{wiki}/{date}/dumpstatus.json"
    warnings: list[str] = []
    if raw is None:
        try:
            raw = read_listing(source, patience)
        except Unavailable:
            raw = None
    if raw is not None:
        jobs, listed = _from_status(raw, source, job_name)
        if jobs[job_name] != "done":
            warnings.append(f"{wiki} {date}: job {job_name} is {show(jobs[job_name])}, not 'done'; "
                            "files may be missing or incomplete")
    else:
        sums = _from_sums(base, wiki, date, patience)
        if sums is None:
            raise UserError(f"no dump at {source} (nor its sha1sums.txt/md5sums.txt): "
                            "check --wiki, --date and --mirror")
        listed, source = sums
        pattern = _file_pattern(wiki, date, multistream)
        listed = {name: entry for name, entry in listed.items() if pattern.match(name)}
        _check_count(listed, source, job_name)  # before one HEAD request per file
        for name, entry in listed.items():
            entry.size = head_size(f"{base}/{wiki}/{date}/{name}", patience)
        jobs = {}
        warnings.append(f"{wiki} {date}: no dumpstatus.json; listed from {source.rsplit('/', 1)[-1]}")
    _check_count(listed, source, job_name)

    by_number: dict[int, list[DumpFile]] = {}
    for name, entry in listed.items():
        try:
            m = check_name(name, wiki, date, multistream)
        except UserError as e:
            raise UserError(f"{source}: {e}") from None
        start, end = m.group("start"), m.group("end")
        by_number.setdefault(int(m.group("n") or 0), []).append(DumpFile(
            name, f"{base}/{wiki}/{date}/{name}", entry.size, entry.sha1, entry.md5,
            int(start) if start else None, int(end) if end else None))
    if len(by_number) > 1:
        by_number.pop(0, None)  # the unnumbered file beside numbered parts is them recombined
    if not by_number:
        raise UserError(f"{source} lists no {job_name} files for {wiki} {date}")
    parts = []
    for number, part_files in sorted(by_number.items()):
        part_files.sort(key=lambda f: (f.start or 0, f.is_index, f.name))
        starts = [f.start for f in part_files if f.start is not None]
        ends = [f.end for f in part_files if f.end is not None]
        parts.append(Part(number or 1, min(starts, default=None), max(ends, default=None), part_files))
    return DumpListing(wiki, date, mirror, multistream, jobs, parts, source, warnings)


def format_listing(listing: DumpListing) -> str:
    """A table, one row per file: part, page range, file, size (MB), sha1 (short)."""
    def mb(size):
        return "?" if size is None else f"{size / 1e6:,.1f}"
    total = sum(p.size or 0 for p in listing.parts)
    jobs = ", ".join(f"{k}: {v}" for k, v in sorted(listing.jobs.items()) if k in _JOBS.values())
    lines = [f"{listing.wiki} {listing.date}: {len(listing.parts)} parts, {total / 1e9:,.2f} GB"
             + (f" ({jobs})" if jobs else "")]
    lines += [f"warning: {w}" for w in listing.warnings]
    rows = [("part", "pages", "file", "size (MB)", "sha1")]
    for part in listing.parts:
        for f in part.files:
            pages = f"{f.start}-{f.end}" if f.start is not None else "all"
            digest = f.sha1[:10] if f.sha1 else (f"md5:{f.md5[:6]}" if f.md5 else "-")
            rows.append((str(part.number), pages, f.name, mb(f.size), digest))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        lines.append("  ".join([r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]),
                                r[3].rjust(widths[3]), r[4]]).rstrip())
    return "\n".join(lines)


def parse_parts(spec: str | list[int], available: list[int]) -> list[int]:
    """Part numbers from "all", "3", "1-3" or "1,4,7-9" (or a list), checked against `available`.
    Ranges are checked before they are expanded, so "1-100000000" costs nothing."""
    have = sorted(set(available))
    if isinstance(spec, str):
        text = spec.replace(" ", "")
        if text == "all":
            return have
        spans = []
        for item in text.split(","):
            m = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9}))?", item)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise UserError(f"parts {show(spec)}: expected all, N, N-M or a comma list of those (e.g. 1-3,5)")
            spans.append((int(m.group(1)), int(m.group(2) or m.group(1))))
    else:
        spans = [(n, n) for n in spec]
    missing = _gaps(spans, have)
    if missing:
        raise UserError(f"no part {', '.join(missing)} in this dump; available parts: {format_ranges(have)}")
    # every number in the spans is available now, so this is at most len(available) numbers
    return sorted({n for a, b in spans for n in have[bisect.bisect_left(have, a):bisect.bisect_right(have, b)]})


def _gaps(spans: list[tuple[int, int]], have: list[int]) -> list[str]:
    """The numbers of `spans` not in sorted `have`, as "N" or "A-B", without expanding any span."""
    gaps: list[tuple[int, int]] = []
    for a, b in spans:
        cursor = a
        for n in have[bisect.bisect_left(have, a):bisect.bisect_right(have, b)]:
            if n > cursor:
                gaps.append((cursor, n - 1))
            cursor = n + 1
        if cursor <= b:
            gaps.append((cursor, b))
    merged: list[list[int]] = []
    for a, b in sorted(gaps):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [str(a) if a == b else f"{a}-{b}" for a, b in merged]


def format_ranges(numbers: list[int]) -> str:
    out: list[str] = []
    for n in sorted(numbers):
        if out and int(out[-1].split("-")[-1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


# ---- downloading ---------------------------------------------------------------------------------

def free_bytes(path: Path) -> int:
    """Free space on the filesystem of `path` (a module function so tests can replace it)."""
    return shutil.disk_usage(path).free


def _expected(f: DumpFile) -> tuple[str, str] | None:
    return ("sha1", f.sha1.lower()) if f.sha1 else (("md5", f.md5.lower()) if f.md5 else None)


def _write_stamp(final: Path, digest: str) -> None:
    """NAME.sha1ok, through a temporary name and a rename: a crash never leaves half a stamp."""
    atomic_write_bytes(final.with_name(final.name + ".sha1ok"), (digest + "\n").encode())


def _is_complete(f: DumpFile, final: Path) -> bool:
    """Whether `final` already holds `f`; UserError if it holds something else."""
    if not final.exists():
        return False
    size = final.stat().st_size
    expected = _expected(f)
    if f.size is None or size == f.size:
        if expected is None:
            return True  # nothing to check it against but its size
        stamp = final.with_name(final.name + ".sha1ok")
        if (stamp.exists() and stamp.stat().st_mtime >= final.stat().st_mtime
                and stamp.read_bytes().strip() == expected[1].encode()):
            return True
        if hash_file(final, expected[0]).hexdigest() == expected[1]:
            _write_stamp(final, expected[1])
            return True
        problem = f"its {expected[0]} is not {expected[1]}"
    else:
        problem = f"it has {size} bytes, not {f.size}"
    raise UserError(f"{final} exists but is not {f.name} as listed ({problem}); "
                    f"delete it, or rename it to {final.name}.partial to resume it")


def _byte_limit(f: DumpFile, reply: Reply, start: int, partial: Path) -> tuple[int, str]:
    """(offset the file must not pass, what sets it): the listed size, else Content-Length, else the
    free disk space. UserError, with the partial deleted, when the server's sizes disagree with the listing."""
    def disagree(what: str):
        partial.unlink(missing_ok=True)
        return UserError(f"{f.name}: the server says {what}, the listing says {f.size} bytes: it is not the "
                         "listed file; the partial download was deleted")
    if f.size is not None:
        if reply.total is not None and reply.total != f.size:
            raise disagree(f"{reply.total} bytes (Content-Range)")
        if reply.length is not None and start + reply.length != f.size:
            raise disagree(f"{start + reply.length} bytes (Content-Length {reply.length} from byte {start})")
        return f.size, f"the listed {f.size} bytes"
    free = free_bytes(partial.parent)
    if reply.length is not None:
        if reply.length > free:
            raise UserError(f"not enough disk space on {partial.parent} for {f.name}: "
                            f"{reply.length / 1e9:.2f} GB to download, {free / 1e9:.2f} GB free")
        return start + reply.length, f"its Content-Length of {reply.length} bytes"
    return start + free, f"the {free} bytes free on {partial.parent}"


def _download(f: DumpFile, final: Path, progress: bool, patience: Patience) -> None:
    partial = final.with_name(final.name + ".partial")
    expected = _expected(f)
    algo = expected[0] if expected else "sha1"
    if f.size is not None and partial.exists() and partial.stat().st_size > f.size:
        partial.unlink()  # longer than the file: not a prefix of it
    # Bytes beyond `furthest` are new; only they reset the retry count. `restarts`: ranged requests the
    # server answered with the whole file, which we then read from byte 0 again.
    furthest = partial.stat().st_size if partial.exists() else 0
    restarts = 0
    bar = tqdm(total=f.size, unit="B", unit_scale=True, unit_divisor=1024, desc=f.name, disable=not progress,
               file=sys.stderr, leave=False)

    def attempt() -> str:
        nonlocal furthest, restarts
        have = partial.stat().st_size if partial.exists() else 0
        h = hash_file(partial, algo) if have else hashlib.new(algo)
        if f.size is not None and have == f.size and partial.exists():
            return h.hexdigest()  # all there; only the checksum is left to check
        with open_url(f.url, patience.deadline, have) as reply:
            if have and not reply.resumed:
                restarts += 1
                if restarts > 1:
                    raise UserError(f"the server ignores Range requests: it answered a resume of {f.url} from "
                                    f"byte {have} with the whole file again, and restarting from byte 0 did not "
                                    "finish it; try another --mirror")
                have, h = 0, hashlib.new(algo)
            if reply.first_byte is not None and reply.first_byte != have:
                raise UserError(f"{f.url}: asked for the bytes from {have} on, the server sent them from "
                                f"{reply.first_byte} on (Content-Range)")
            limit, limit_reason = _byte_limit(f, reply, have, partial)
            bar.reset(total=f.size)
            bar.update(have)
            offset = have
            try:
                with open(partial, "ab" if have else "wb") as out:
                    # ask for at most one byte past the limit: enough to know the server sends too much
                    while chunk := read_chunk(reply.body, min(READ_BYTES, limit + 1 - offset)):
                        if offset + len(chunk) > limit:
                            out.close()
                            partial.unlink(missing_ok=True)
                            raise UserError(f"{f.name}: the server sent more than {limit_reason}; stopped reading, "
                                            "and the partial download was deleted")
                        out.write(chunk)
                        h.update(chunk)
                        offset += len(chunk)
                        furthest = max(furthest, offset)
                        bar.update(len(chunk))
                        patience.deadline.check(f.url)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as e:
                if isinstance(e, TRANSIENT):
                    raise
                raise UserError(f"cannot write {partial}: {e.strerror or e}") from None
            if offset < limit and (f.size is not None or reply.length is not None):
                raise Dropped(f"connection closed after {offset} of {limit} bytes")
        return h.hexdigest()

    try:
        digest = retrying(attempt, f.url, patience, patience.deadline, lambda: furthest)
    finally:
        bar.close()
    size = partial.stat().st_size
    if expected is not None and digest != expected[1]:
        partial.unlink()
        raise UserError(f"checksum mismatch for {f.name}: expected {algo} {expected[1]}, got {digest}; "
                        "the partial download was deleted")
    if f.size is not None and size != f.size:
        partial.unlink()
        raise UserError(f"size mismatch for {f.name}: expected {f.size} bytes, got {size}; "
                        "the partial download was deleted")
    commit(partial, final)
    if expected is not None:
        _write_stamp(final, expected[1])


def fetch(wiki: str, date: str, parts: str | list[int], to_dir: str | Path, mirror: str = DEFAULT_MIRROR,
          multistream: bool = False, progress: bool = True, retries: int | None = None,
          backoff: float | None = None, timeout: float | None = None,
          require_checksum: bool = False) -> FetchedPaths:
    """Download `parts` of dump `wiki`/`date` into `to_dir`; the paths of every requested file
    (multistream: with their index files), including those already there from earlier runs, with
    `.verified_by` saying which checksum verified each (None: the listing has none).

    retries: failed attempts in a row without new bytes, per file (default RETRIES); backoff: the first
    wait between them in seconds (default BACKOFF_S); timeout: seconds for the whole fetch, listing
    included (default None: no overall deadline); require_checksum: refuse, before downloading
    anything, any requested file the listing gives no sha1 or md5 for."""
    patience = make_patience(timeout, retries, backoff)
    listing = _list_parts(wiki, date, mirror, multistream, patience)
    job = _JOBS[multistream]
    state = listing.jobs.get(job)
    if state is not None and state != "done":
        # A running job's files can still be growing or lack checksums: nothing could be verified.
        raise UserError(f"the {job} job of {wiki} {listing.date} is {show(state)}, not done: its files may be "
                        "incomplete; wait for it or fetch an earlier --date (`growgpt dumps list` shows the status)")
    for w in listing.warnings:
        print(f"warning: {w}", file=sys.stderr)
    numbers = parse_parts(parts, [p.number for p in listing.parts])
    files = [f for n in numbers for f in listing.part(n).files]
    if require_checksum:
        unchecked = [f.name for f in files if _expected(f) is None]
        if unchecked:
            more = f" (and {len(unchecked) - 1} more)" if len(unchecked) > 1 else ""
            raise UserError(f"refusing {unchecked[0]}{more}: {listing.source} gives no sha1 or md5 for it, and "
                            "checksums are required (--require-checksum); nothing was downloaded")
    out = Path(to_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out}: {e.strerror}") from None
    todo = [f for f in files if not _is_complete(f, out / f.name)]

    def partial_size(f):
        p = out / (f.name + ".partial")
        return p.stat().st_size if p.exists() else 0
    download = sum(max((f.size or 0) - partial_size(f), 0) for f in todo)
    later = sum((f.size or 0) for f in todo if not f.is_index) * (TEXT_PER_COMPRESSED + TOKENS_PER_COMPRESSED)
    need, free = download + int(later), free_bytes(out)
    if need > free:
        raise UserError(f"not enough disk space on {out}: need {need / 1e9:.2f} GB ({download / 1e9:.2f} GB "
                        f"to download + {later / 1e9:.2f} GB for extracted text and tokens), free {free / 1e9:.2f} GB")
    for f in todo:
        _download(f, out / f.name, progress, patience)
    verified_by = {}
    for f in files:
        expected = _expected(f)
        verified_by[out / f.name] = expected[0] if expected else None
    return FetchedPaths([out / f.name for f in files], verified_by)
