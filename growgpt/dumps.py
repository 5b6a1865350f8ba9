"""List and download the parts of a Wikipedia dump from a Wikimedia dump mirror.

`list_parts(wiki, date)` says what a dump holds: its parts (`pages-articlesN.xml-pApB.bz2`, one or
more files each, with page ranges), their sizes and checksums, and whether the dump job is done.
`fetch(wiki, date, "1-3", to_dir)` downloads parts into `to_dir`, resumably and verified.

Where the listing comes from
----------------------------
`{mirror}/{wiki}/{date}/dumpstatus.json`, which Wikimedia writes for every dump: per job
(`articlesdump`, `articlesmultistreamdump`) a status and every file's size, SHA-1 and MD5. Where it
is missing (some mirrors drop it) the dump's `{wiki}-{date}-sha1sums.txt` (else `-md5sums.txt`)
gives names and checksums, and sizes come from Content-Length (HEAD), or are unknown. File URLs
are always built as `{mirror}/{wiki}/{date}/{name}`: the `url` field of dumpstatus.json is a path
on dumps.wikimedia.org, which mirrors do not share, and building the URL ourselves means a listing
can only ever point inside the dump's folder. Names are checked before anything is built from them
(no `/`, `\\`, `..` or leading `.`, and the dump-file pattern of this wiki and date). "latest" is
the date named by `{mirror}/{wiki}/latest/dumpstatus.json`'s files when a mirror has one, else the
newest dated folder whose job is done (an unfinished dump is only taken when nothing else exists).
A mirror is an http(s) URL, a `file://` URL or a plain local folder laid out the same way.

How it downloads, and why so
----------------------------
* stdlib urllib, no requests dependency. A file is written to `NAME.partial`, and a run that finds
  one resumes it with `Range: bytes=N-`; a server that ignores Range (200 instead of 206) is read
  from byte 0 again. 5xx answers, timeouts, resets and connections that end before the file does
  are retried with exponential backoff (the count restarts whenever bytes arrived, so a long file
  over a flaky line still finishes); 404 and other 4xx stop at once with the URL.
* The SHA-1 (MD5 when the mirror gives nothing else) is computed while the bytes arrive, over the
  partial's bytes first when resuming, so a 20 GB part is not read twice. A mismatch deletes the
  partial, since resuming bad bytes cannot fix them. A good file is fsynced and renamed into place,
  and `NAME.sha1ok` records its checksum so that re-runs skip it without rehashing.
* Before downloading, the free space of `to_dir` must cover the bytes still to download plus what
  the later steps write from them. Measured on the samples in shared/data/wikidumps (enwiki 2016
  part 1, 1.70 MB bz2; elwikivoyage whole wiki, 1.66 MB bz2), per byte of bz2:
      XML 3.6 (en) / 6.2 (el); clean text 1.66 / 1.69 as UTF-8, 0.67 / 0.56 as extract's
      zstd Parquet; GPT-2 tokens as uint16 0.72 (4.6 chars per token) / 2.04 (Greek: ~1 char
      per token).
  So the estimate is TEXT_PER_COMPRESSED = 0.7 plus TOKENS_PER_COMPRESSED = 0.8 (Latin-script
  text); XML is streamed, never stored. Wikis in other scripts tokenise to ~2.5x as many bytes,
  so for them the check is a floor, not a promise.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from tqdm import tqdm

from growgpt.errors import UserError
from growgpt.fsutil import fsync_dir, hash_file

DEFAULT_MIRROR = "https://dumps.wikimedia.org"
TEXT_PER_COMPRESSED = 0.7  # extract's Parquet, per byte of bz2 (measured 0.56-0.67)
TOKENS_PER_COMPRESSED = 0.8  # uint16 GPT-2 token shards, per byte of bz2 (measured 0.72 on enwiki)
TIMEOUT_S = 60
READ_BYTES = 1 << 20
USER_AGENT = "growgpt/0.1 (Wikipedia dump fetcher; python-urllib)"

_JOBS = {False: "articlesdump", True: "articlesmultistreamdump"}
_WIKI = re.compile(r"[a-z][a-z0-9_]*\Z")
_DATE = re.compile(r"\d{8}\Z")


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


def _file_pattern(wiki: str, date: str, multistream: bool) -> re.Pattern:
    kind = r"-multistream(?P<index>-index)?" if multistream else ""
    ext = r"(?(index)txt|xml)" if multistream else "xml"
    return re.compile(rf"{re.escape(wiki)}-{re.escape(date)}-pages-articles{kind}(?P<n>\d*)\.{ext}"
                      r"(?:-p(?P<start>\d+)p(?P<end>\d+))?\.bz2\Z")


def check_name(name: str, wiki: str, date: str, multistream: bool = False) -> re.Match:
    """The name's match against the dump-file pattern; UserError for anything else a mirror sends."""
    if not name or "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise UserError(f"refusing remote file name {name!r}: not a plain file name")
    m = _file_pattern(wiki, date, multistream).match(name)
    if not m:
        raise UserError(f"refusing remote file name {name!r}: not a {wiki} {date} pages-articles dump file")
    return m


def _base_url(mirror: str) -> str:
    """The mirror as a URL: a plain folder becomes file://."""
    if "://" not in mirror:
        return Path(mirror).expanduser().resolve().as_uri()
    if urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise UserError(f"mirror {mirror!r}: only http(s)://, file:// or a local folder")
    return mirror.rstrip("/")


def _check_wiki_date(wiki: str, date: str) -> None:
    if not _WIKI.match(wiki):
        raise UserError(f"wiki {wiki!r}: expected a database name like enwiki or elwikivoyage")
    if date != "latest" and not _DATE.match(date):
        raise UserError(f"date {date!r}: expected YYYYMMDD or latest")


def _local_path(url: str) -> Path | None:
    return Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else None


def _open(url: str, start: int = 0, method: str = "GET"):
    """(response, resumed): an open file-like at `start` when resumed, else at 0. Raises OSError,
    HTTPError, or UserError for a missing file."""
    path = _local_path(url)
    if path is not None:
        if not path.is_file():
            raise UserError(f"not found: {url}")
        f = open(path, "rb")
        f.seek(start)
        return f, True
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers, method=method), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in (404, 410):
            raise UserError(f"not found (HTTP {e.code}): {url}") from None
        if e.code < 500 and e.code not in (408, 429):
            raise UserError(f"HTTP {e.code} {e.reason} from {url}") from None
        raise
    return resp, resp.status == 206


_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


def _retrying(what, url: str, retries: int, backoff: float):
    """what() with retries on transient network errors; `what` returns (result, made_progress)."""
    failures = 0
    while True:
        try:
            return what()
        except _TRANSIENT as e:
            progressed = getattr(e, "progressed", False)
            failures = 0 if progressed else failures + 1
            if failures > retries:
                raise UserError(f"giving up on {url} after {retries + 1} tries: {e}") from None
            time.sleep(backoff * 2 ** max(failures - 1, 0))


def _read(url: str, retries: int = 5, backoff: float = 0.5) -> bytes:
    def attempt():
        f, _ = _open(url)
        with f:
            return f.read()
    return _retrying(attempt, url, retries, backoff)


def _head_size(url: str) -> int | None:
    path = _local_path(url)
    if path is not None:
        return path.stat().st_size if path.is_file() else None
    try:
        resp, _ = _open(url, method="HEAD")
    except (UserError, *_TRANSIENT):
        return None
    with resp:
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None


def _dated_folders(base: str, wiki: str) -> list[str]:
    """Dated dump folders of `wiki` on the mirror, newest first."""
    url = f"{base}/{wiki}/"
    path = _local_path(url)
    if path is not None:
        if not path.is_dir():
            raise UserError(f"not found: {url}")
        names = os.listdir(path)
    else:
        names = re.findall(r'href="(\d{8})/?"', _read(url).decode("utf-8", "replace"))
    return sorted({n for n in names if _DATE.match(n)}, reverse=True)


def _resolve_latest(base: str, wiki: str, multistream: bool) -> tuple[str, dict | None]:
    """(date, its dumpstatus if already read) for date "latest"."""
    try:
        status = json.loads(_read(f"{base}/{wiki}/latest/dumpstatus.json"))
        for job in status.get("jobs", {}).values():
            for name in job.get("files", {}):
                m = re.match(rf"{re.escape(wiki)}-(\d{{8}})-", name)
                if m:
                    return m.group(1), None  # re-read from the dated folder: names carry the date
    except (UserError, ValueError, AttributeError):
        pass
    dates = _dated_folders(base, wiki)
    first = None
    for date in dates[:6]:  # a dump takes weeks; older than a few folders back means something is off
        try:
            status = json.loads(_read(f"{base}/{wiki}/{date}/dumpstatus.json"))
        except (UserError, ValueError):
            continue
        first = first or (date, status)
        if status.get("jobs", {}).get(_JOBS[multistream], {}).get("status") == "done":
            return date, status
    if first is None:
        raise UserError(f"no dump with a dumpstatus.json under {base}/{wiki}/")
    return first


def _from_sums(base: str, wiki: str, date: str) -> tuple[dict[str, dict], str] | None:
    """{name: {"sha1"|"md5": hex, "size": Content-Length}} from the dump's checksum files."""
    for algo in ("sha1", "md5"):
        url = f"{base}/{wiki}/{date}/{wiki}-{date}-{algo}sums.txt"
        try:
            text = _read(url).decode("utf-8", "replace")
        except UserError:
            continue
        files = {}
        for line in text.splitlines():
            digest, _, name = line.strip().partition(" ")
            files[name.strip().lstrip("*")] = {algo: digest.lower()}
        return files, url
    return None


def list_parts(wiki: str, date: str, mirror: str = DEFAULT_MIRROR, multistream: bool = False) -> DumpListing:
    """What dump `wiki`/`date` ("latest" allowed) holds on `mirror`; UserError if it is not there."""
    _check_wiki_date(wiki, date)
    base = _base_url(mirror)
    job_name = _JOBS[multistream]
    status = None
    if date == "latest":
        date, status = _resolve_latest(base, wiki, multistream)
    source = f"{base}/{wiki}/{date}/dumpstatus.json"
    warnings: list[str] = []
    if status is None:
        try:
            status = json.loads(_read(source))
        except ValueError as e:
            raise UserError(f"{source} is not valid JSON: {e}") from None
        except UserError:
            status = None
    if status is not None:
        jobs = {name: str(job.get("status")) for name, job in status.get("jobs", {}).items() if isinstance(job, dict)}
        if job_name not in jobs:
            raise UserError(f"{source} has no {job_name} job (jobs: {', '.join(sorted(jobs)) or 'none'})")
        files = status["jobs"][job_name].get("files") or {}
        if jobs[job_name] != "done":
            warnings.append(f"{wiki} {date}: job {job_name} is {jobs[job_name]!r}, not 'done'; "
                            "files may be missing or incomplete")
    else:
        sums = _from_sums(base, wiki, date)
        if sums is None:
            raise UserError(f"no dump at {source} (nor its sha1sums.txt/md5sums.txt): "
                            "check --wiki, --date and --mirror")
        files, source = sums
        pattern = _file_pattern(wiki, date, multistream)
        files = {name: info for name, info in files.items() if pattern.match(name)}
        for name, info in files.items():
            info["size"] = _head_size(f"{base}/{wiki}/{date}/{name}")
        jobs = {}
        warnings.append(f"{wiki} {date}: no dumpstatus.json; listed from {source.rsplit('/', 1)[-1]}")

    by_number: dict[int, list[DumpFile]] = {}
    for name, info in files.items():
        m = check_name(name, wiki, date, multistream)
        start, end = m.group("start"), m.group("end")
        size = info.get("size")
        by_number.setdefault(int(m.group("n") or 0), []).append(DumpFile(
            name, f"{base}/{wiki}/{date}/{name}", int(size) if size is not None else None,
            info.get("sha1"), info.get("md5"), int(start) if start else None, int(end) if end else None))
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
    """Part numbers from "all", "3", "1-3" or "1,4,7-9" (or a list), checked against `available`."""
    if isinstance(spec, str):
        text = spec.replace(" ", "")
        if text == "all":
            return sorted(available)
        numbers: set[int] = set()
        for item in text.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise UserError(f"parts {spec!r}: expected all, N, N-M or a comma list of those (e.g. 1-3,5)")
            numbers.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    else:
        numbers = set(spec)
    missing = sorted(numbers - set(available))
    if missing:
        raise UserError(f"no part {', '.join(map(str, missing))} in this dump; available parts: {_ranges(available)}")
    return sorted(numbers)


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    for n in sorted(numbers):
        if out and int(out[-1].split("-")[-1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def free_bytes(path: Path) -> int:
    """Free space on the filesystem of `path` (a module function so tests can replace it)."""
    return shutil.disk_usage(path).free


def _expected(f: DumpFile) -> tuple[str, str] | None:
    return ("sha1", f.sha1.lower()) if f.sha1 else (("md5", f.md5.lower()) if f.md5 else None)


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
                and stamp.read_text().strip() == expected[1]):
            return True
        if hash_file(final, expected[0]).hexdigest() == expected[1]:
            stamp.write_text(expected[1] + "\n")
            return True
        problem = f"its {expected[0]} is not {expected[1]}"
    else:
        problem = f"it has {size} bytes, not {f.size}"
    raise UserError(f"{final} exists but is not {f.name} as listed ({problem}); "
                    f"delete it, or rename it to {final.name}.partial to resume it")


class _Dropped(ConnectionError):
    """The connection ended before the whole file arrived."""


def _download(f: DumpFile, final: Path, progress: bool, retries: int, backoff: float) -> None:
    partial = final.with_name(final.name + ".partial")
    expected = _expected(f)
    algo = expected[0] if expected else "sha1"
    if f.size is not None and partial.exists() and partial.stat().st_size > f.size:
        partial.unlink()  # longer than the file: not a prefix of it
    bar = tqdm(total=f.size, unit="B", unit_scale=True, unit_divisor=1024, desc=f.name, disable=not progress,
               file=sys.stderr, leave=False)

    def attempt():
        have = partial.stat().st_size if partial.exists() else 0
        h = hash_file(partial, algo) if have else hashlib.new(algo)
        got = 0
        try:
            if f.size is not None and have == f.size:
                resp, resumed = None, True  # all there; only the checksum is left to check
            else:
                resp, resumed = _open(f.url, have)
            if not resumed:  # the server ignored Range: start again from byte 0
                have, h = 0, hashlib.new(algo)
            bar.reset(total=f.size)
            bar.update(have)
            with open(partial, "ab" if resumed else "wb") as out:
                while resp is not None:
                    chunk = resp.read(READ_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if resp is not None:
                resp.close()
            if f.size is not None and have + got < f.size:
                raise _Dropped(f"connection closed after {have + got} of {f.size} bytes")
        except _TRANSIENT as e:
            e.progressed = got > 0
            raise
        return h.hexdigest()

    try:
        digest = _retrying(attempt, f.url, retries, backoff)
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
    os.replace(partial, final)
    fsync_dir(final.parent)
    if expected is not None:
        final.with_name(final.name + ".sha1ok").write_text(expected[1] + "\n")


def fetch(wiki: str, date: str, parts: str | list[int], to_dir: str | Path, mirror: str = DEFAULT_MIRROR,
          multistream: bool = False, progress: bool = True, retries: int = 5, backoff: float = 0.5) -> list[Path]:
    """Download `parts` of dump `wiki`/`date` into `to_dir`; the paths of every requested file
    (multistream: with their index files), including those already there from earlier runs."""
    listing = list_parts(wiki, date, mirror, multistream)
    job = _JOBS[multistream]
    state = listing.jobs.get(job)
    if state is not None and state != "done":
        # A running job's files can still be growing or lack checksums: nothing could be verified.
        raise UserError(f"the {job} job of {wiki} {listing.date} is '{state}', not done: its files may be incomplete; "
                        "wait for it or fetch an earlier --date (`growgpt dumps list` shows the status)")
    for w in listing.warnings:
        print(f"warning: {w}", file=sys.stderr)
    numbers = parse_parts(parts, [p.number for p in listing.parts])
    out = Path(to_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out}: {e.strerror}") from None
    files = [f for n in numbers for f in listing.part(n).files]
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
        _download(f, out / f.name, progress, retries, backoff)
    return [out / f.name for f in files]
