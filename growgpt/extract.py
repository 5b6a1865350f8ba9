"""MediaWiki XML dumps (.xml.bz2 or .xml) to Parquet files of clean article text.

`extract(inputs, out_dir)` turns each dump part `raw/NAME.xml-pA-pB.bz2` into
`out_dir/NAME-pA-pB.parquet` (columns id, revid, title, url, text; one row per article, in file
order), `out_dir/NAME-pA-pB.dropped.parquet` (every page that did not become a document: id,
title, ns, reason, detail, characters of wikitext; in file order; `growgpt dropped` lists them,
largest first) and `out_dir/NAME-pA-pB.manifest.json` (what was read, kept and dropped, and why).

Which pages become documents
----------------------------
Namespace-0 pages that are not redirects (a `<redirect>` element, or wikitext that is
`#REDIRECT [[...]]` or a localised form of it), cleaned by `growgpt.wikitext.wikitext_to_text`.
Then, each a reason in the dropped-pages file and a count in the manifest: disambiguation pages
(on exact evidence only, see `growgpt.disambiguation`; `keep_disambiguation` keeps them), pages
with nothing left after cleaning (its detail says when tables alone held text), pages shorter
than `min_chars` characters, exact duplicates (same text apart from whitespace) of an article
written before, in the same part or in another part of the same out_dir, and pages whose
cleaning took more than `page_timeout` CPU seconds (a safety net: the cleaner is linear). A page
over BIG_DROP_CHARS dropped as disambiguation or empty is printed as a warning. Parts are written
one after another in page-range order (`-pSTARTpEND`, then name), so the earlier part keeps the
article whatever the number of processes; and a part already finished by an earlier run is never
rewritten, so when parts are added to a corpus later (it grows in stages) the new parts lose the
duplicates, not the old ones. A run that is killed and run again writes exactly what one
uninterrupted run writes.

Disambiguation templates the dump teaches (Template pages holding `__DISAMBIG__`, and templates
redirecting to those) are put together in this process, which sees the parts in order: a part
uses what every part finished before it taught (their manifests list it, so a later run knows it
too) and what it teaches itself. When a part teaches a template that a document it already wrote
was calling (the template's page came later in the file), the part is read a second time knowing
it from the start, so its output does not depend on where in the file the template was. A
finished part is not redone for what a later part teaches; a warning names it instead.

Why DEFAULT_MIN_CHARS = 100
---------------------------
Measured on the samples, over the articles that pass every other filter (characters of clean text):

    elwikivoyage, whole wiki (1,297 articles, median 467 chars)
    under     50     100     150     200     300     500
    articles  8.0 %  20.9 %  27.4 %  32.0 %  40.2 %  51.6 %
    text      0.3 %   1.0 %   1.7 %   2.3 %   3.9 %   7.5 %
    enwiki 2016 part 1 (98 articles): none under 200, 1 under 500; the other real samples
    (bgwiki, frwiki, enwiki 2009 and 2014, table-markup; 15 articles): none under 500

Under 100 characters an article is one bare sentence ("Mali is a country of Africa in the Sahel
region."): a fifth of a small wiki's pages but 1 % of its text, near-templated, so they teach one
phrase many times. From 100 to 200 characters the pages still carry a fact or two (population,
where it is, the nearest towns) and cutting there would drop another 11 % of the pages for 1.3 %
of the text. So the cut is at 100; `--min-chars 0` keeps everything that is not empty.

How it reads, and why so
------------------------
* The XML parser is the stdlib's expat (pyexpat), driven directly: measured on the enwiki sample,
  it parses at ~330 MB/s against ~240 MB/s for `ElementTree.iterparse` and ~460 MB/s for lxml,
  while stdlib bz2 decompresses ~30 MB/s of XML and the cleaner does ~27 MB/s, per core (on a
  slower 2-core VM: ~11 and ~18 MB/s, and the parser's share the same). Parsing
  is a few per cent of the time whichever is used, so lxml is not worth a dependency; driving
  expat directly gives the guards below and exact byte offsets for errors. Tags are matched by
  local name, so every export schema (0.3 to 0.11) reads the same; schema 0.3 has no <ns>, so the
  namespace comes from the title's prefix and <siteinfo>'s namespace names.
* Safety: the parser never loads or expands anything. A document type declaration (where entities
  are declared: billion laughs, `<!ENTITY x SYSTEM "file:///etc/passwd">`) is refused with a
  UserError naming the file; real dumps never have one. Undeclared entities are XML errors.
* Encodings: bytes go to expat as they are when it reads them itself (UTF-8, ASCII, Latin-1).
  Anything else a BOM or the XML declaration names (UTF-16, as in the bgwiki sample, windows-1252,
  ...) is transcoded to UTF-8 on the fly first, because chunks are cut by searching bytes for
  `</page>`.
* Parallelism: with a multistream dump and its index (`...-multistream-index...` beside it), the
  file is split at bz2 stream offsets and each worker reads, decompresses and parses its own byte
  range. A single-stream bz2 file (what most people download) is split at bzip2 *block*
  boundaries instead: every ~900 kB of XML is a block that decompresses on its own, and blocks
  start with a 48-bit magic that is not byte-aligned. This process reads the file once (hashing
  it) and cuts it every ~512 kB: at the first block from there on, found by a bit-level search of
  the next few hundred kB (`bytes.find` over the 8 alignments). Streams are found by one
  byte-aligned search (a stream's first block follows its "BZhN" header), and each must end with
  its end-of-stream marker right before the next one, the last at the end of the file. Searching
  only where it cuts costs this process ~0.13 s for 29 MB instead of 0.46 s for finding every
  block, and that CPU is taken from the workers on 2 cores. Nothing is lost by not checking the
  stream CRCs (which need every block's): libbz2 checks each block's own CRC, and a boundary found
  by chance inside a block (once in 2^48 bits) is caught where a task starts at it, since no whole
  block decompresses from there. Workers decompress their runs of blocks (wrapped as a stream
  without its end) and parse the whole pages among them; the page or two cut by each task
  boundary come back as bytes and are joined and parsed here. Anything unusual (damage,
  truncation, bytes after the last stream, a false boundary) drops what was read of the part and
  reads it again sequentially, so errors, offsets and kept pages are exactly those of the
  sequential reader. That reader, used for plain XML, other encodings, small files and
  --processes 1, decompresses here (stdlib bz2) and cuts the XML at `</page>` into ~2 MB chunks
  that the workers parse and clean. Results come
  back in file order (at most 2 x processes + 2 chunks in flight) and are written by this
  process alone, so the output does not depend on the number of processes or the way the file
  was read (tested byte for byte). Workers are started with "spawn" (they import only this
  module and the cleaner, not pyarrow; and forking a process that runs pyarrow threads is
  unsafe), so a script calling `extract` needs the usual `if __name__ == "__main__":` guard.
  Where the time goes (bench/extract_speed.py, 104 MB of enwiki XML): ~3 CPU s bz2, ~4 CPU s
  cleaning, ~1 CPU s the rest; WikiExtractor 3.1.0 spends 15-19 CPU s on the same file. On a
  slower 2-core VM: ~9 CPU s bz2, ~7 parsing and cleaning, ~2 the rest, against ~49 CPU s for
  WikiExtractor (~41 with --no-templates). Every reader pays the same bz2; when this process
  decompressed single-stream files itself, that one core of bz2 capped them at 2.5-2.9x
  WikiExtractor on 2 cores; split by blocks they run as fast as multistream files.
* stdlib bz2 rather than `indexed_bzip2`: the latter decompresses up to 1.6x faster per core (no
  faster on the 2-core VM), but on a corrupt block it returned more bytes than the file holds
  before raising, and aborted the interpreter at exit; the error handling below needs a
  decompressor that fails cleanly. Its parallel mode, tried for single-stream files, was no
  faster on 2 cores than the block split here, which costs no more CPU than reading serially.
* Memory stays flat (measured on 104 and 207 MB of XML: ~115-170 MB in this process, ~40 MB per
  worker): pages are handled one at a time as expat reports them, chunks in flight are bounded,
  and Parquet is written in row groups of ~16 MB of text. A worker sends its chunk's texts as one
  UTF-8 buffer with offsets, the layout of an Arrow string column, which this process wraps
  without a copy: no Python str per article here (one holding a single non-Latin-1 character
  takes 2-4 bytes for every character), and no decoding and re-encoding, which would make this
  process, the one that cannot be parallelised, the limit on many cores. What grows with the
  input is the duplicate filter: 8 bytes per article written (a 64-bit BLAKE2 hash of the text
  without its whitespace; ~55 MB for all of English Wikipedia; the chance of any false duplicate
  among 7 million articles is about 1 in a million). Re-runs rebuild it by hashing the finished
  parts' texts as stored.
* Damage: every failure is a UserError naming the file; a corrupt or truncated bz2 file also gets
  the compressed byte offset of the bzip2 block that failed (found by a bit-level search for the
  block magic before the point where decompression failed). The pages before the damage are
  written, and the manifest says `"complete": false` with the error, so the next run redoes the
  part; the run stops there. A file that ends after a complete `</page>` but without
  `</mediawiki>` keeps all its pages, with a warning; one that ends inside a page is damaged.
* Output is written to temporary files and renamed into place, Parquet first and the manifest
  last: a part counts as finished only once its manifest is there and matches the source's size
  and SHA-1 (mtime too, to spare the SHA-1 on re-runs) and the options, so a killed run leaves
  nothing a re-run could take as finished, and a re-run removes what it left.
"""

from __future__ import annotations

import bz2
import codecs
import errno
from array import array
import hashlib
import heapq
import json
import os
import re
import signal
import sys
import threading
import time
import xml.parsers.expat as expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

from growgpt.errors import UserError
from growgpt.fsutil import fsync_dir as _fsync_dir, hash_file, temp_path

DEFAULT_MIN_CHARS = 100  # justified in the module docstring
DEFAULT_PAGE_TIMEOUT = 5.0  # CPU seconds a page's cleaning may take: see _PageTimeout
MAX_PAGE_TIMEOUT = 1e6  # setitimer overflows past ~1e9 s; 0 is the way to say "no limit"
MANIFEST_FORMAT = "growgpt-extract/2"  # /2: the dropped-pages file, exact disambiguation, timeouts
COLUMNS = ("id", "revid", "title", "url", "text")
DROPPED_COLUMNS = ("id", "title", "ns", "reason", "detail", "source_chars")  # PART.dropped.parquet
DROP_REASONS = ("namespace", "redirect", "disambiguation", "empty", "too_short", "duplicate", "timeout")
# A page this big (characters of wikitext) dropped as disambiguation or empty is a red flag worth a
# warning: real disambiguation pages are lists of a few KB; at most BIG_DROP_WARNINGS per part and
# reason are printed, the rest counted. The manifest keeps the LARGEST_DROPPED biggest of each.
BIG_DROP_CHARS = 20_000
BIG_DROP_WARNINGS = 10
LARGEST_DROPPED = 5
_LARGEST_OF = ("disambiguation", "empty")

# Work-unit sizes. ~2 MB of XML per chunk: big enough that per-chunk costs (re-parsing the
# <siteinfo> header, pickling) are noise, small enough that the chunks in flight stay a few MB.
CHUNK_XML_BYTES = 2 << 20
CHUNK_COMPRESSED_BYTES = 512 << 10  # multistream: ~4x that of XML
READ_BYTES = 32 << 10  # compressed bytes fed to bz2 at a time: an error is located within this
PLAIN_READ_BYTES = 1 << 20  # bytes of a plain XML file read at a time
SCAN_BYTES = 1 << 20  # compressed bytes read at a time when splitting at bzip2 blocks (8 MB: +15 % RSS)
BLOCKS_MIN_BYTES = 1 << 20  # smaller bz2 files are read sequentially, not split into blocks
ROW_GROUP_BYTES = 16 << 20  # Parquet row groups: ~16 MB of text each, the most buffered here

_BZ2_MAGIC = b"BZh"
_BLOCK_MAGIC = 0x314159265359  # start of every bzip2 block (bit-aligned, not byte-aligned)
_FIRST_BLOCK = _BLOCK_MAGIC.to_bytes(6, "big")  # a stream's first block: byte-aligned after "BZhN"
_EOS_MAGIC = 0x177245385090  # end of a bzip2 stream, followed by its 32-bit CRC (bit-aligned too)
_COMPRESSED = {  # formats people download dumps in that this module does not read
    b"\x1f\x8b": "gzip", b"7z\xbc\xaf\x27\x1c": "7z", b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip",
}
# Encodings expat decodes itself; anything else is transcoded to UTF-8 before parsing.
_EXPAT_NATIVE = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}

# `#REDIRECT [[Target]]` in the languages of the biggest wikis (MediaWiki's localised magic words;
# the English form is valid on every wiki). Only a fallback: dumps since 2008 mark redirects with
# a <redirect> element, and schema 0.3 dumps with an empty <redirect />.
_REDIRECT = re.compile(
    r"\s*+#(?:redirect|weiterleitung|redirection|redirección|redireccion|redirecionamento|"
    r"rinvia|rinvio|doorverwijzing|перенаправление|перенапр|перенаправлення|пренасочване|"
    r"преусмери|ανακατευθυνση|ανακατεύθυνση|patrz|przekieruj|tam|přesměruj|presmeruj|"
    r"omdirigering|ohjaus|uudelleenohjaus|yönlendirme|yönlendir|átirányítás|redirecteaza|"
    r"redirecționare|alih|đổi|preusmjeri|preusmeri|転送|リダイレクト|重定向|넘겨주기|تحويل|"
    r"הפניה|تغییرمسیر|เปลี่ยนทาง|पुनर्निर्देशन)\s*+(?::\s*+)?\[\[",  # possessive: linear on "#REDIRECT" + spaces
    re.I,
)


def is_redirect_text(wikitext: str) -> bool:
    """Wikitext that is `#REDIRECT [[...]]` (or a localised form): the fallback for dumps whose
    pages lack a <redirect> element. Linear in the text: the whitespace runs cannot backtrack."""
    return (wikitext[:1].isspace() or wikitext[:1] == "#") and _REDIRECT.match(wikitext) is not None


_PAGE_RANGE = re.compile(r"-p(\d+)p(\d+)")
_WIKIMEDIA_HOSTS = re.compile(
    r"(?:^|\.)(?:wikipedia|wikivoyage|wiktionary|wikibooks|wikinews|wikiquote|wikisource|"
    r"wikiversity|wikimedia|mediawiki|wikidata|wikifunctions)\.org$")


def _warn(message: str) -> None:
    print(f"growgpt: warning: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Documents and their hashes


_ASCII_SPACE = b" \t\n\r\x0b\x0c"


def text_hash(text: str | bytes) -> int:
    """64-bit hash of `text` (or its UTF-8 bytes) with its whitespace left out: the duplicate
    filter's key, so texts that differ only in spacing or line breaks are duplicates. Deleting the
    ASCII whitespace from the UTF-8 bytes (one C loop) is 4x faster than `" ".join(text.split())`,
    which makes an object per word. Two articles that differ only in where a space falls
    ("a b" / "ab") count as duplicates too: for texts of hundreds of characters, that is the same
    text."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data.translate(None, _ASCII_SPACE), digest_size=8).digest(), "little")


class _SeenHashes:
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
            self._merge()
        return True

    def forget(self, hashes: array) -> None:
        """Remove `hashes` (what a part being read again had added)."""
        if not hashes:
            return
        self._recent.difference_update(hashes)
        if self._sorted is not None and self._sorted.size:
            import numpy as np

            self._sorted = self._sorted[~np.isin(self._sorted, np.frombuffer(hashes, dtype=np.uint64))]

    def _merge(self) -> None:
        import numpy as np

        fresh = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        self._sorted = np.sort(fresh if self._sorted is None else np.concatenate([self._sorted, fresh]))
        self._recent = set()


# ----------------------------------------------------------------------------------------------
# Work units and their results (pickled between processes: plain data only)


@dataclass
class _Task:
    path: str
    header: bytes  # everything before the first <page>: XML declaration, root tag, <siteinfo>
    body: bytes | None = None  # whole pages (and maybe the closing root tag), already decompressed
    comp_range: tuple[int, int] | None = None  # or: multistream byte range the worker reads itself
    blocks: tuple[tuple[int, int], ...] | None = None  # or: bzip2 blocks (start, end bit) to decompress
    xml_offset: int = 0  # where `body` starts in the decompressed XML (for error messages)
    comp_end: int = 0  # compressed bytes of the file done once this task is (for progress)
    offsets_of: str = ""  # what byte offsets in messages count: "" (the file), "decompressed XML", ...
    min_chars: int = DEFAULT_MIN_CHARS
    keep_tables: bool = False
    keep_disambiguation: bool = False
    page_timeout: float = DEFAULT_PAGE_TIMEOUT
    clean: bool = True  # False: parse only (the benchmark's floor)
    damage: str | None = None  # the file is damaged right after this chunk's data


@dataclass
class _Result:
    # (id, revid, title, url, characters, hash, characters of wikitext, keys of the templates it calls)
    docs: list = field(default_factory=list)
    # the documents' texts as one UTF-8 buffer and the int32 offsets of their starts and ends: the
    # layout of an Arrow string column, which this process takes over without a copy (no decoding
    # into Python strs when unpickled, no encoding again for Arrow)
    texts: bytes = b""
    offsets: bytes = b""
    counts: dict = field(default_factory=dict)
    # pages dropped, in file order: (docs before it in this result, id, title, ns, reason, detail,
    # characters of wikitext)
    dropped: list = field(default_factory=list)
    # what the pages of the Template namespace teach: (key, page id) of disambiguation templates
    # and (key, target key) of template redirects
    templates: list = field(default_factory=list)
    template_redirects: list = field(default_factory=list)
    site: tuple | None = None  # detector_for's arguments: (Wiki, template namespace names, case-sensitive)
    root_closed: bool = False
    error: str | None = None  # damage found in this task's data; its pages before that are in docs
    comp_end: int = 0
    # a task of bzip2 blocks: its decompressed XML (xml_size bytes) is cut after the first and the
    # last </page>; `docs` are the pages between, and the bytes around them (`head`, `tail`) are
    # joined with the neighbouring tasks' by the main process
    head: bytes = b""
    tail: bytes = b""
    xml_size: int = 0
    cut: bool = False  # there was a </page> to cut at (else `head` is all of the XML)
    retry: str | None = None  # a block did not decompress: the file is read again sequentially


class _Abort(Exception):
    """Damage in a file: the pages read before it are kept, the part is marked incomplete."""


def _counts() -> dict:
    return {"pages": 0, "redirects": 0, "non_article": 0, "disambiguation": 0, "empty": 0, "too_short": 0,
            "timeout": 0}


# ----------------------------------------------------------------------------------------------
# The per-page time budget: a page whose cleaning takes more CPU time than this is dropped as
# "timeout" and the run goes on. Every pass of the cleaner is linear (bench/clean_worst_case.py:
# any input within 10x of normal text per MB, ~1 s for the largest page MediaWiki allows, 2 MB),
# so this is a safety net for what nobody foresaw, never a stalled worker. A CPU-time timer
# (ITIMER_PROF), not wall time, so a busy machine does not drop pages; its signal interrupts the
# regex engine too (CPython's re checks for signals). Where there is no setitimer (Windows), or
# extract runs outside the main thread, there is no budget.


class _PageTimeout(BaseException):
    """Raised by the timer's signal inside the cleaning of a page (BaseException: no `except
    Exception` on the way may swallow it)."""


_timer_armed = False


def _on_timer(_signum, _frame) -> None:
    if _timer_armed:  # a signal that arrives after the page was done is ignored
        raise _PageTimeout()


def _install_timer() -> object:
    """Route SIGPROF to the page budget in this process; returns the previous handler (None if
    the budget cannot work here)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGPROF, _on_timer)


def _restore_timer(previous: object) -> None:
    if previous is not None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _arm(seconds: float) -> None:
    global _timer_armed
    _timer_armed = True
    signal.setitimer(signal.ITIMER_PROF, seconds)


def _disarm() -> None:
    global _timer_armed
    _timer_armed = False  # first: a signal from here on is ignored
    signal.setitimer(signal.ITIMER_PROF, 0)


def _timer_works() -> bool:
    return hasattr(signal, "setitimer") and signal.getsignal(signal.SIGPROF) is _on_timer


# ----------------------------------------------------------------------------------------------
# bz2 with offsets


def _magic_patterns(magic: int) -> list[tuple[bytes, int, int, int, bytes]]:
    """For each of the 8 bit alignments of a 48-bit magic: (the bytes it fully covers, where they
    start in the pattern, the alignment, the unused bits of the last byte, the whole pattern)."""
    out = []
    for shift in range(8):  # the magic starts `shift` bits into a byte
        if shift == 0:  # byte-aligned: 6 whole bytes
            pattern = magic.to_bytes(6, "big")
            out.append((pattern, 0, 0, 0, pattern))
        else:  # 7 bytes, the first and last only partly the magic's
            pattern = (magic << (8 - shift)).to_bytes(7, "big")
            out.append((pattern[1:-1], 1, shift, 8 - shift, pattern))
    return out


_MAGICS = [(kind, _magic_patterns(m)) for kind, m in (("block", _BLOCK_MAGIC), ("eos", _EOS_MAGIC))]


def _find_marks(data: bytes, lo: int, hi: int, kinds: tuple[str, ...] = ("block", "eos")) -> list[tuple[int, str]]:
    """(bit offset in `data`, "block" | "eos") of every bzip2 block magic and end-of-stream magic
    (of `kinds`) whose first byte is in data[lo:hi], sorted. The 48-bit magics are not
    byte-aligned: each of the 8 alignments is searched for by its fully covered bytes (a C-speed
    `bytes.find`, bounded by `hi`), then the partly covered edge bytes are checked. Random data
    matches by chance once in 2^48 bit positions: callers check what they find (decompression)."""
    marks = []
    for kind, patterns in _MAGICS:
        if kind not in kinds:
            continue
        for core, core_at, shift, tail_bits, pattern in patterns:
            head_mask = 0xFF >> shift
            tail_mask = (0xFF << tail_bits) & 0xFF
            stop = hi + core_at + len(core) - 1  # a match must start before hi
            j = data.find(core, lo + core_at, stop)
            while j >= 0:
                i = j - core_at
                end = i + len(pattern)
                if (end <= len(data) and (not core_at or (data[i] & head_mask) == pattern[0])
                        and (not tail_bits or (data[end - 1] & tail_mask) == pattern[-1])):
                    marks.append((i * 8 + shift, kind))
                j = data.find(core, j + 1, stop)
    marks.sort()
    return marks


def _bits(data: bytes, start: int, end: int) -> int:
    """Bits [start, end) of `data` as an unsigned integer (big-endian bit order, as bzip2 writes)."""
    lo, hi = start // 8, (end + 7) // 8
    return (int.from_bytes(data[lo:hi], "big") >> (hi * 8 - end)) & ((1 << (end - start)) - 1)


def _find_block_start(path: str, before: int, floor: int) -> int:
    """Byte offset of the last bzip2 block header starting at or before byte `before` (bit-level
    search for the 48-bit block magic), or `floor` (the stream's start) if none is found."""
    lo = max(floor, before - (2 << 20))  # a compressed block is < 1 MB
    with open(path, "rb") as f:
        f.seek(lo)
        data = f.read(before - lo + 8)
    starts = [lo + bit // 8 for bit, _ in _find_marks(data, 0, before - lo + 1, ("block",))]
    return starts[-1] if starts else floor


def _decompress(path: str, f, start: int, end: int, sha1=None, index_says: bool = False) -> Iterator[bytes]:
    """Decompressed bytes of the bz2 streams in bytes [start, end) of the open file `f`.

    Raises _Abort naming the compressed offset of the damaged block, or of the truncation."""
    f.seek(start)
    pos = start  # compressed offset of the next byte to read
    stream_start = start
    dec = bz2.BZ2Decompressor()
    fed = False  # the current decompressor has been given data
    while pos < end:
        piece = f.read(min(READ_BYTES, end - pos))
        if not piece:
            break
        if sha1 is not None:
            sha1.update(piece)
        piece_start, pos = pos, pos + len(piece)
        data = piece
        while data:
            if not fed and len(data) >= 3 and not data.startswith(_BZ2_MAGIC):
                if stream_start == start:
                    said = ", where its multistream index says one starts" if index_says else ""
                    raise _Abort(f"{path}: no bz2 stream at compressed byte {stream_start:,}{said}")
                _warn(f"{path}: ignoring {end - (pos - len(data)):,} bytes after the last bz2 stream")
                if sha1 is not None:  # the manifest's SHA-1 is of the whole file
                    while rest := f.read(1 << 20):
                        sha1.update(rest)
                return
            try:
                out = dec.decompress(data)
            except (OSError, ValueError) as e:
                # (a piece can hold several streams: the damaged one started at stream_start or later)
                block = _find_block_start(path, max(piece_start, stream_start), stream_start)
                raise _Abort(f"corrupt bz2 data in {path}: the bzip2 block at compressed byte {block:,} is damaged "
                             f"(detected by byte {pos:,}: {e})") from None
            fed = True
            if out:
                yield out
            if dec.eof:
                data = dec.unused_data
                stream_start = pos - len(data)
                dec = bz2.BZ2Decompressor()
                fed = False
            else:
                data = b""
    if fed:
        raise _Abort(f"{path} is truncated: the bz2 stream starting at compressed byte {stream_start:,} "
                     f"ends at byte {pos:,} before its end marker")


# ----------------------------------------------------------------------------------------------
# Parsing (runs in the workers)


def _guard(parser) -> None:
    """Refuse DTDs: that is where entities are declared, and nothing in a dump needs one."""

    def refuse(*_args):
        raise _DoctypeError()

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)


class _DoctypeError(Exception):
    pass


def _doctype_message(path: str) -> str:
    return (f"{path} has a document type declaration (<!DOCTYPE ...>), which can declare entities that "
            f"read files or expand without bound; MediaWiki dumps never have one, so it is refused")


def _xml_error_message(path: str, e: expat.ExpatError, offset: int, offsets_of: str) -> str:
    where = f" of the {offsets_of}" if offsets_of else ""
    return f"{path} is not well-formed XML at byte {offset:,}{where}: {expat.ErrorString(e.code)}"


class _PageParser:
    """Feeds XML to expat and turns each <page> into a document or a count."""

    def __init__(self, task: _Task) -> None:
        if task.clean:
            from growgpt.wikitext import source_to_text, wikitext_source
        else:
            source_to_text = wikitext_source = None
        self.task = task
        self.clean = source_to_text  # of what `self.source` makes of the wikitext
        self.source = wikitext_source
        self.detect = task.clean and not task.keep_disambiguation
        self.budget = task.page_timeout if task.clean and task.page_timeout > 0 and _timer_works() else 0
        self.result = _Result(counts=_counts())
        self._texts: list[bytes] = []
        self._text_size = 0
        self._text_ends = array("i", [0])
        self.base = ""
        self.dbname = ""
        self.xml_lang = ""
        self.template_ns = ""  # the local name of namespace 10 ("Vorlage"), from <siteinfo>
        self.template_case = ""
        self._detector = None
        self._prefix: str | None = None
        self.namespaces: dict[str, int] = {}
        self.stack: list[str] = []
        self.buf: list[str] = []
        self._new_page()
        p = expat.ParserCreate()
        _guard(p)
        p.buffer_text = True
        p.buffer_size = 1 << 20  # a page's text arrives in few pieces
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self.buf.append
        self.parser = p

    def _new_page(self) -> None:
        self.title = ""
        self.ns: int | None = None
        self.page_id: int | None = None
        self.revid: int | None = None
        self.redirect = False
        self.redirect_title = ""
        self.text = ""
        self.ns_key = 0
        self.ns_case = ""

    def _start(self, name: str, attrs: dict) -> None:
        if ":" in name:
            name = name.rpartition(":")[2]
        self.stack.append(name)
        self.buf.clear()
        if name == "page":
            self._new_page()
        elif name == "redirect":
            self.redirect = True
            self.redirect_title = attrs.get("title", "")
        elif name == "namespace":
            try:
                self.ns_key = int(attrs.get("key", "0"))
            except ValueError:
                self.ns_key = 0
            self.ns_case = attrs.get("case", "")
        elif name == "mediawiki":
            self.xml_lang = attrs.get("xml:lang", "")

    def _end(self, _name: str) -> None:
        stack = self.stack
        name = stack.pop()
        parent = stack[-1] if stack else ""
        if name == "text":
            self.text = "".join(self.buf)
        elif name == "id":
            if parent == "page":
                self.page_id = _int("".join(self.buf))
            elif parent == "revision":
                self.revid = _int("".join(self.buf))  # not contributor/id
        elif name == "title":
            if parent == "page":
                self.title = "".join(self.buf)
        elif name == "ns":
            if parent == "page":
                self.ns = _int("".join(self.buf))
        elif name == "page":
            self._page()
        elif name == "base":
            self.base = "".join(self.buf).strip()
        elif name == "dbname":
            self.dbname = "".join(self.buf).strip()
        elif name == "namespace":
            label = "".join(self.buf).strip()
            if label:
                self.namespaces[label.replace("_", " ").lower()] = self.ns_key
                if self.ns_key == 10:
                    self.template_ns, self.template_case = label, self.ns_case

    def _namespace(self) -> int:
        if self.ns is not None:
            return self.ns
        # schema 0.3 has no <ns>: the namespace is the title's prefix, if <siteinfo> names it
        prefix, colon, _ = self.title.partition(":")
        if colon and prefix:
            return self.namespaces.get(prefix.replace("_", " ").strip().lower(), 0)
        return 0

    def detector(self):
        """The disambiguation evidence of this dump's wiki (known once <siteinfo> is read)."""
        if self._detector is None:
            from growgpt.disambiguation import Wiki, detector_for

            wiki = Wiki.from_siteinfo(self.dbname, self.base, self.xml_lang)
            site = (wiki, (self.template_ns,) if self.template_ns else (), self.template_case == "case-sensitive")
            self._detector = detector_for(*site)
            self.result.site = site
        return self._detector

    def _drop(self, ns: int | None, reason: str, detail: str = "") -> None:
        self.result.dropped.append((len(self.result.docs), self.page_id, self.title, ns, reason, detail,
                                    len(self.text)))

    def _page(self) -> None:
        counts = self.result.counts
        counts["pages"] += 1
        ns = self._namespace()
        text, title = self.text, self.title
        if ns != 0:
            counts["non_article"] += 1
            if self.clean is not None:
                self._drop(ns, "namespace")
                if ns == 10 and self.detect:
                    self._template_page()
            return
        if self.redirect or is_redirect_text(text):
            counts["redirects"] += 1
            if self.clean is not None:
                self._drop(ns, "redirect", self.redirect_title or _redirect_target(text))
            return
        if self.clean is None:  # measuring what everything but the cleaning costs
            self.result.docs.append((self.page_id, self.revid, title, "", 0, 0, 0, ()))
            self._text_ends.append(self._text_size)
            return
        if not self.budget:
            self._article(text, title)
            return
        _arm(self.budget)
        try:
            self._article(text, title)
            _disarm()
        except _PageTimeout:
            _disarm()
            counts["timeout"] += 1
            self._drop(0, "timeout", f"cleaning took over {self.budget:g} CPU seconds")

    def _article(self, text: str, title: str) -> None:
        """Decide on one article page and clean it: a document, or a drop with its reason."""
        counts = self.result.counts
        source = self.source(text)  # (shared: the disambiguation check reads it without comments too)
        keys = frozenset()
        if self.detect:
            detector = self.detector()
            keys = detector.template_keys(source, comments_removed=True)
            evidence = detector.evidence(source, title, keys, comments_removed=True)
            if evidence:
                counts["disambiguation"] += 1
                self._drop(0, "disambiguation", evidence)
                return
        clean = self.clean(source, title, keep_tables=self.task.keep_tables)
        if not clean.strip():
            counts["empty"] += 1
            detail = "nothing left after cleaning"
            if not self.task.keep_tables and "{|" in source and self.clean(source, title, keep_tables=True).strip():
                detail = "only tables (--keep-tables keeps their cells)"
            self._drop(0, "empty", detail)
            return
        if len(clean) < self.task.min_chars:
            counts["too_short"] += 1
            self._drop(0, "too_short", f"{len(clean)} characters")
            return
        data = clean.encode("utf-8", "replace")  # (a lone surrogate, never seen, becomes "?")
        self._texts.append(data)
        self._text_size += len(data)
        self._text_ends.append(self._text_size)
        self.result.docs.append((self.page_id, self.revid, title, self._url(), len(clean), text_hash(data), len(text),
                                 keys))

    def _template_page(self) -> None:
        """A page of the Template namespace: is it a disambiguation template, or a redirect to
        another template? (The main process puts these together, see LearnedTemplates.)"""
        detector = self.detector()
        key = detector.page_key(self.title)
        if key is None:
            return
        if self.redirect or is_redirect_text(self.text):
            target = detector.page_key(self.redirect_title or _redirect_target(self.text))
            if target is not None:
                self.result.template_redirects.append((key, target))
        elif detector.defines_disambiguation(self.text):
            self.result.templates.append((key, self.page_id))

    def _url(self) -> str:
        if self._prefix is None:
            self._prefix = _article_path(self.base)
        if not self._prefix:
            return f"?curid={self.page_id}"
        # MediaWiki's wfUrlencode: percent-encode, but leave these readable
        return self._prefix + quote(self.title.replace(" ", "_"), safe=";@$!*(),/~:")

    def feed(self, data: bytes, final: bool = False) -> None:
        self.parser.Parse(data, final)

    def close(self) -> None:
        # int32 offsets: a chunk's text is a few MB (MediaWiki caps a page at 2 MB)
        self.result.texts, self.result.offsets = b"".join(self._texts), self._text_ends.tobytes()
        self._texts = []
        # the parser holds bound methods of self: a reference cycle that would keep each chunk's
        # parser (with its 1 MB text buffer) and pages alive until the cyclic GC gets round to it,
        # which measured as +7 MB per chunk, up to ~100 MB, before a collection
        self.parser = None


_REDIRECT_TARGET = re.compile(r"\[\[([^\[\]|#\n]*)")


def _redirect_target(wikitext: str) -> str:
    """The title a `#REDIRECT [[Title]]` page points to ("" if none can be read)."""
    m = _REDIRECT_TARGET.search(wikitext, 0, 1000)
    return m.group(1).strip() if m else ""


def _article_path(base: str) -> str:
    """`https://en.wikipedia.org/wiki/` from <base> (the main page's URL); "" without one."""
    if not base:
        return ""
    i = base.find("/wiki/")
    prefix = base[: i + 6] if i >= 0 else base.rsplit("/", 1)[0] + "/"
    if prefix.startswith("http://") and _WIKIMEDIA_HOSTS.search(urlsplit(prefix).hostname or ""):
        prefix = "https://" + prefix[7:]  # pre-2015 dumps say http; the sites are https-only now
    return prefix


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None



def _run_task(task: _Task) -> _Result:
    """Parse one chunk of pages (for a multistream range, read and decompress it first)."""
    if task.comp_range is None:
        return _parse(task, task.body or b"", None, task.damage)
    damage = None
    pieces = []
    try:
        with open(task.path, "rb") as f:
            pieces.extend(_decompress(task.path, f, *task.comp_range, index_says=True))
    except _Abort as e:
        damage = str(e)
    except OSError as e:
        damage = f"cannot read {task.path}: {e.strerror or e}"
    body = b"".join(pieces)
    del pieces
    if damage is not None:  # keep the whole pages decompressed before the damage
        body = body[: body.rfind(b"</page>") + 7] if b"</page>" in body else b""
    return _parse(task, body, f"the bz2 stream(s) from compressed byte {task.comp_range[0]:,}", damage)


def _parse(task: _Task, body: bytes, where: str | None, damage: str | None) -> _Result:
    """The documents of `body` (whole pages; the last chunk of a file also has the root's end),
    parsed after the file's header. `where`: what body is, for messages, when offsets in it do not
    count from the start of the file's XML (task.xml_offset)."""
    pp = _PageParser(task)
    result = pp.result
    result.comp_end = task.comp_end
    try:
        pp.feed(task.header)
        pp.feed(body)
        depth = len(pp.stack)
    except _DoctypeError:
        result.error = _doctype_message(task.path)
        return result
    except expat.ExpatError as e:
        off = max(pp.parser.ErrorByteIndex - len(task.header), 0)
        if where is None:
            result.error = _xml_error_message(task.path, e, task.xml_offset + off, task.offsets_of)
        else:
            result.error = (f"{task.path} is not well-formed XML in {where} (byte {off:,} of their data): "
                            f"{expat.ErrorString(e.code)}")
        return result  # the pages before the error were whole and are kept
    finally:
        pp.close()
    result.root_closed = depth == 0
    if damage is not None:
        result.error = damage
    elif depth > 1:  # only possible in the last chunk: the file stops inside a page
        result.error = (f"{task.path} is truncated: it ends inside <{pp.stack[-1]}> at byte "
                        f"{task.xml_offset + len(body):,}{' of the ' + task.offsets_of if task.offsets_of else ''}")
    return result


def _wrap_blocks(data: bytes, start: int, end: int) -> bytes:
    """The whole bzip2 blocks in bits [start, end) of `data` as the start of a bzip2 stream: a
    header, the blocks shifted to a byte boundary (big-int shifts, ~1 ms per block), then the first
    5 bytes of a next block's magic. No end-of-stream marker, whose CRC would need each block's:
    libbz2 checks each block's CRC and hands the block out once it is whole. The magic's start
    keeps input waiting while it does (CPython's bz2 stops asking for output once all input is
    consumed, so a block that ends the input would come out 32 kB at a time, see
    `_decompress_blocks`). Level 9 fits blocks of any level."""
    nbits = end - start + 40
    pad = -nbits % 8
    value = (_bits(data, start, end) << 40) | (_BLOCK_MAGIC >> 8)
    return b"BZh9" + (value << pad).to_bytes((nbits + pad) // 8, "big")


def _decompress_blocks(wrapped: bytes) -> bytes:
    """Everything `_wrap_blocks` output decompresses to (raises OSError on damage)."""
    dec = bz2.BZ2Decompressor()
    out = dec.decompress(wrapped)
    while more := dec.decompress(b""):  # nothing, unless libbz2 held output back (see _wrap_blocks)
        out += more
    return out


def _run_block_task(task: _Task) -> _Result:
    """Decompress runs of bzip2 blocks of a single-stream file, then parse the whole pages among
    them. A run that gives nothing did not start at a block (a boundary found by chance inside
    one): the part is read again sequentially, as on any error here."""
    first, last = task.blocks[0][0], task.blocks[-1][1]
    lo = first // 8
    try:
        with open(task.path, "rb") as f:
            f.seek(lo)
            data = f.read((last + 7) // 8 - lo)
        pieces = []
        for a, b in task.blocks:
            xml = _decompress_blocks(_wrap_blocks(data, a - lo * 8, b - lo * 8))
            if not xml:
                raise ValueError(f"no whole bzip2 block in compressed bits {a:,}-{b:,}")
            pieces.append(xml)
    except (OSError, ValueError, EOFError) as e:
        return _Result(retry=f"{e}", comp_end=task.comp_end)
    del data
    xml = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    del pieces
    i = xml.find(b"</page>")
    if i < 0:  # inside one long page: all of it goes to the main process, which joins it on
        return _Result(counts=_counts(), head=xml, xml_size=len(xml), comp_end=task.comp_end)
    cut_head, cut_tail = i + 7, xml.rfind(b"</page>") + 7
    result = _parse(task, xml[cut_head:cut_tail], f"the bzip2 blocks from compressed byte {lo:,}", None)
    result.head, result.tail, result.xml_size, result.cut = xml[:cut_head], xml[cut_tail:], len(xml), True
    return result


# ----------------------------------------------------------------------------------------------
# Reading a part (runs in the main process)


class _HeaderCheck:
    """Fails fast on what is not a MediaWiki dump, before any work is handed out: not XML, a DTD,
    another root element. Fed the bytes before the first <page> as they are read."""

    def __init__(self, path: str, offsets_of: str) -> None:
        self.path = path
        self.offsets_of = offsets_of
        self.root: str | None = None
        self.version = ""
        self.offset = 0
        p = expat.ParserCreate()
        _guard(p)
        p.StartElementHandler = self._start
        self.parser = p

    def _start(self, name: str, attrs: dict) -> None:
        self.root = name
        self.version = attrs.get("version", "")
        self.parser.StartElementHandler = None  # only the root matters here
        if name.rpartition(":")[2] != "mediawiki":
            raise UserError(f"{self.path} is XML but not a MediaWiki dump (root element <{name}>, expected <mediawiki>)")

    def feed(self, data: bytes) -> None:
        try:
            self.parser.Parse(data, False)
        except _DoctypeError:
            raise UserError(_doctype_message(self.path)) from None
        except expat.ExpatError as e:
            if self.root is None:
                where = f" of the {self.offsets_of}" if self.offsets_of else ""
                raise UserError(f"{self.path} is not an XML file (not well-formed at byte {self.parser.ErrorByteIndex:,}"
                                f"{where}: {expat.ErrorString(e.code)})") from None
            raise UserError(_xml_error_message(self.path, e, self.parser.ErrorByteIndex, self.offsets_of)) from None

    def done(self) -> None:
        if self.root is None:
            raise UserError(f"{self.path} is not an XML file (no root element)")

    @classmethod
    def whole(cls, path: str, header: bytes, offsets_of: str) -> None:
        """Check a header read in one piece (a multistream file's first stream, the XML before a
        single-stream file's first <page>)."""
        check = cls(path, offsets_of)
        check.feed(header)
        check.done()


def _sniff_compression(path: str, head: bytes) -> bool:
    """True for bz2; raises for formats that are not read; False for anything else (plain XML)."""
    if not head:
        raise UserError(f"{path} is empty")
    if head.startswith(_BZ2_MAGIC) and len(head) >= 4 and head[3:4].isdigit():
        return True
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise UserError(f"{path} is {name}-compressed; growgpt extract reads .xml.bz2 and plain .xml dumps: "
                            f"decompress it first")
    return False


_DECL_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _encoding(path: str, first: bytes) -> str | None:
    """The codec to transcode from, or None when expat can read the bytes as they are."""
    if first.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if first.startswith(b"<\x00?\x00") or first.startswith(b"<\x00m\x00"):
        return "utf-16-le"
    if first.startswith(b"\x00<\x00?") or first.startswith(b"\x00<\x00m"):
        return "utf-16-be"
    m = _DECL_ENCODING.match(first[:1024])
    if not m:
        return None
    name = m.group(1).decode("ascii").lower()
    if name in _EXPAT_NATIVE:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        raise UserError(f"{path} declares an unknown encoding {name!r}") from None
    return name


def _transcode(path: str, chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Re-encode to UTF-8 (UTF-16 dumps exist: split points are found by byte search, and expat
    reads only UTF-8/ASCII/Latin-1 itself); the declaration is rewritten to say so."""
    decoder = codecs.getincrementaldecoder(encoding)()
    first = True
    for data in chunks:
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as e:
            raise _Abort(f"{path} is not valid {encoding}: {e.reason}") from None
        if first and text:
            text = text.lstrip("\ufeff")
            text = re.sub(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""", r'\1"UTF-8"', text, count=1)
            first = False
        if text:
            yield text.encode("utf-8", "surrogatepass")
    tail = decoder.decode(b"", final=True) if not first else ""
    if tail:
        yield tail.encode("utf-8", "surrogatepass")


def _sequential_tasks(part: "_Part", opts: dict, sha1) -> Iterator[_Task]:
    """Read a file in this process and cut its XML into chunks of whole pages."""
    path = str(part.path)
    try:
        f = open(part.path, "rb")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        compressed = _sniff_compression(path, f.read(8))
        f.seek(0)
        raw = _decompress(path, f, 0, part.size, sha1) if compressed else _plain(f, sha1)
        yield from _cut(part, path, compressed, raw, f, opts)


def _cut(part: "_Part", path: str, compressed: bool, raw: Iterator[bytes], f, opts: dict) -> Iterator[_Task]:
    """The tasks of a sequentially read part: its XML cut at `</page>` into ~CHUNK_XML_BYTES chunks."""
    buf = bytearray()
    header = None
    xml_offset = 0
    damage = None
    try:
        first = b""
        for data in raw:  # the first bytes decide the encoding
            first += data
            if len(first) >= 1024:
                break
        encoding = _encoding(path, first)

        def stream():
            yield first
            yield from raw

        chunks = _transcode(path, stream(), encoding) if encoding else stream()
        offsets_of = ("decompressed XML" if compressed else "XML") + (" re-encoded as UTF-8" if encoding else "")
        offsets_of = "" if offsets_of == "XML" else offsets_of
        check = _HeaderCheck(path, offsets_of)
        searched = 0  # buf[:searched] holds no <page> / no </page> worth cutting at
        for data in chunks:
            buf += data
            if header is None:
                i = buf.find(b"<page>", max(searched - 6, 0))
                check.feed(bytes(buf[searched:i if i >= 0 else len(buf)]))
                if i < 0:
                    searched = len(buf)
                    continue
                check.done()
                header = bytes(buf[:i])
                del buf[:i]
                xml_offset = i
                searched = 0
            while len(buf) >= CHUNK_XML_BYTES and len(buf) > searched:
                j = buf.rfind(b"</page>", max(searched - 7, 0))
                searched = len(buf)
                if j < 0:
                    break  # one huge page: keep reading until it ends
                cut = j + 7
                body = bytes(buf[:cut])
                del buf[:cut]
                searched = len(buf)  # what is left has no </page>: the last one was cut at
                yield _Task(path, header, body=body, xml_offset=xml_offset, comp_end=f.tell(), offsets_of=offsets_of,
                            **opts)
                xml_offset += cut
    except _Abort as e:
        if header is None:
            raise UserError(f"{e}; no page could be read before it") from None
        damage = str(e)
    if header is None:  # no pages at all: the whole document is "header"
        check.done()
        header, buf, xml_offset = bytes(buf), bytearray(), len(buf)
    if damage is not None:  # keep the whole pages read before the damage
        j = buf.rfind(b"</page>")
        del buf[j + 7 if j >= 0 else 0:]
    yield _Task(path, header, body=bytes(buf), xml_offset=xml_offset, comp_end=part.size, damage=damage,
                offsets_of=offsets_of, **opts)


def _plain(f, sha1) -> Iterator[bytes]:
    while True:
        data = f.read(PLAIN_READ_BYTES)
        if not data:
            return
        sha1.update(data)
        yield data


# ----------------------------------------------------------------------------------------------
# Multistream dumps: an index of bz2 stream offsets lets workers read their own byte ranges


def find_index(path: str | Path) -> Path | None:
    """The multistream index beside a multistream dump, if there is one:
    `X-pages-articles-multistream1.xml-p1p41242.bz2` -> `X-pages-articles-multistream-index1.txt-p1p41242.bz2`."""
    path = Path(path)
    name = path.name
    if "multistream" not in name or _is_index_name(name):
        return None
    guess = name.replace("multistream", "multistream-index", 1)
    for candidate in (guess, guess.replace(".xml", ".txt", 1)):
        p = path.with_name(candidate)
        if p.is_file():
            return p
    return None


def _is_index_name(name: str) -> bool:
    return "multistream-index" in name or "-index" in name and ".txt" in name


def _read_index(index: Path) -> list[int]:
    """The distinct stream offsets of an index (`offset:page_id:title` lines), in file order."""
    offsets: list[int] = []
    opener = bz2.open if index.read_bytes()[:3] == _BZ2_MAGIC else open
    try:
        with opener(index, "rb") as f:
            for line in f:
                head, colon, _ = line.partition(b":")
                if not colon:
                    if line.strip():
                        raise ValueError(f"line {line[:60]!r} is not offset:page_id:title")
                    continue
                off = int(head)
                if not offsets or off != offsets[-1]:
                    if offsets and off < offsets[-1]:
                        raise ValueError(f"offset {off} after {offsets[-1]}")
                    offsets.append(off)
    except (OSError, ValueError, EOFError) as e:
        _warn(f"multistream index {index} is unreadable ({e}); reading the dump sequentially")
        return []
    return offsets


def _multistream_tasks(part: "_Part", opts: dict) -> Iterator[_Task] | None:
    """Tasks reading the part's streams in parallel, or None (with a warning) if its index cannot
    be used, in which case the file is read sequentially."""
    path = str(part.path)
    offsets = _read_index(part.index)
    if not offsets:
        return None

    def misfit(why: str) -> None:
        _warn(f"multistream index {part.index} does not fit {path} ({why}); reading the file sequentially")

    if offsets[0] <= 0 or offsets[-1] >= part.size:
        misfit(f"offsets {offsets[0]:,}..{offsets[-1]:,}, file size {part.size:,}")
        return None
    with open(part.path, "rb") as f:
        if not _sniff_compression(path, f.read(8)):
            return None
        for off in (offsets[0], offsets[-1]):
            if not _stream_starts_at(f, off):
                misfit(f"no bz2 stream starts at byte {off:,}")
                return None
        try:
            header = b"".join(_decompress(path, f, 0, offsets[0]))
        except _Abort as e:  # the index is wrong (or the file damaged: the sequential reader says where)
            misfit(str(e))
            return None
    if _encoding(path, header[:1024]) or b"<page>" in header:
        _warn(f"multistream index {part.index}: the first stream of {path} is not just the header; reading the file "
              f"sequentially")
        return None
    _HeaderCheck.whole(path, header, "decompressed XML")

    def tasks():
        start = offsets[0]
        with open(part.path, "rb") as f:
            for off in offsets[1:]:
                if off - start >= CHUNK_COMPRESSED_BYTES:
                    if not _stream_starts_at(f, off):  # checked where a task is cut, before handing it out
                        why = f"no bz2 stream starts at byte {off:,}"
                        misfit(why)
                        raise _Restart(part, why)
                    yield _Task(path, header, comp_range=(start, off), comp_end=off, **opts)
                    start = off
        yield _Task(path, header, comp_range=(start, part.size), comp_end=part.size, **opts)

    return tasks()


def _stream_starts_at(f, offset: int) -> bool:
    """A bz2 stream starts at byte `offset` of the open file: "BZh1".."BZh9", then a block or the
    end-of-stream marker, byte-aligned (a chance match is one in 2^72)."""
    f.seek(offset)
    head = f.read(10)
    return (len(head) == 10 and head[:3] == _BZ2_MAGIC and 0x31 <= head[3] <= 0x39
            and head[4:] in (_FIRST_BLOCK, _EOS_MAGIC.to_bytes(6, "big")))


# ----------------------------------------------------------------------------------------------
# Single-stream dumps in parallel: split at bzip2 block boundaries


class _Restart(Exception):
    """A part is read again from its start. Sequentially (`sequential`) when reading it in
    parallel, by bzip2 blocks or by a multistream index, met something only the sequential reader
    handles exactly (damage, a truncation, bytes after the last stream, a block boundary found by
    chance inside a block, an index that does not fit the file); the same way again (`read_again`)
    when it taught disambiguation templates that documents written before were calling."""

    def __init__(self, part: "_Part", reason: str, sequential: bool = True, read_again: bool = False) -> None:
        super().__init__(reason)
        self.part = part
        self.sequential = sequential
        self.read_again = read_again


def _scan_tasks(part: "_Part", f, sha1) -> Iterator[tuple[tuple[tuple[int, int], ...], int]]:
    """The bzip2 blocks of each task, in file order, as runs of whole blocks (start bit, end bit)
    inside one stream, about CHUNK_COMPRESSED_BYTES of them a task; with each, the compressed
    bytes of the file done once it is (for progress).

    The file is read once, SCAN_BYTES at a time, and hashed on the way, but only searched bit by
    bit where a task ends: at the first block that starts CHUNK_COMPRESSED_BYTES or more after the
    task's start (the next few hundred kB, in growing windows). Stream starts cost one `bytes.find`
    of the whole file, because a stream's first block is byte-aligned right after its "BZhN"
    header. Each stream must end with its end-of-stream marker right before the next one's header,
    and the last one at the end of the file; anything else raises _Restart. A boundary found by
    chance inside a block (once in 2^48 bits) is caught by the worker that starts there: no whole
    block decompresses from it, and the part is read again sequentially."""
    buf = b""
    base = 0  # buf holds the file's bytes [base, base + len(buf))
    eof = False

    def need(end: int) -> int:
        """Read on until buf holds the file's bytes before `end`, or all; returns where buf ends."""
        nonlocal buf, eof
        while not eof and base + len(buf) < end:
            piece = f.read(SCAN_BYTES)
            sha1.update(piece)
            eof = not piece
            buf += piece
        return base + len(buf)

    def forget(before: int) -> None:
        """Drop the bytes before byte `before` (minus the 16 that a stream's end is looked for in)."""
        nonlocal buf, base
        if before - 16 > base:
            buf, base = buf[before - 16 - base:], before - 16

    def header_before(byte: int) -> bool:
        """A stream header ("BZh1".."BZh9") ends right before `byte`."""
        h = byte - 4 - base
        return h >= 0 and buf[h:h + 3] == _BZ2_MAGIC and 0x31 <= buf[h + 3] <= 0x39

    def stream_end(at: int) -> int:
        """Bit offset of the end-of-stream marker of the stream that ends right before byte `at`
        (the next header or the end of the file): the marker, its 32-bit CRC, then zero bits to
        the byte boundary."""
        lo = max(at - 16, base)
        for bit, _ in _find_marks(buf, lo - base, at - base, ("eos",)):
            if (bit + 80 + 7) // 8 == at - base and not _bits(buf, bit + 80, (at - base) * 8):
                return base * 8 + bit
        raise _Restart(part, f"no end of a bz2 stream right before compressed byte {at:,}")

    def boundary(searched: int, target: int) -> tuple[str, int]:
        """Where the run that has been searched up to byte `searched` ends: ("stream", byte) if
        the next stream's header starts before byte `target`, else ("cut", bit) at the first block
        that starts from `target` on, unless that is a stream's first block ("stream", byte) or
        the file ends first ("eof", byte)."""
        end = need(target + 6)
        stop = min(target, end) + 5 - base  # byte-aligned block magics starting before target
        j = buf.find(_FIRST_BLOCK, searched - base, stop)
        while j >= 0:
            if header_before(base + j):
                return "stream", base + j - 4
            j = buf.find(_FIRST_BLOCK, j + 1, stop)
        at, window = max(target, searched), 64 << 10
        while at < end:  # blocks are ~100-900 kB apart
            end = need(at + window + 8)
            hi = min(at + window, end)
            marks = _find_marks(buf, at - base, hi - base, ("block",))
            if marks:
                bit = base * 8 + marks[0][0]
                if bit % 8 == 0 and header_before(bit // 8):
                    return "stream", bit // 8 - 4
                return "cut", bit
            at, window = hi, window * 2
        return "eof", need(end + 1)

    header = 0  # byte offset of the stream being read
    runs: list[tuple[int, int]] = []
    task_start = 0
    while True:
        need(header + 10)
        if not header_before(header + 4) or buf[header + 4 - base: header + 10 - base] != _FIRST_BLOCK:
            raise _Restart(part, f"no bz2 stream (with a block) at compressed byte {header:,}")
        start = (header + 4) * 8  # the run's first block
        searched = header + 5  # byte-aligned block magics before this byte are handled
        if not runs:
            task_start = header
        while True:
            kind, at = boundary(searched, task_start + CHUNK_COMPRESSED_BYTES)
            if kind != "cut":
                break
            yield (*runs, (start, at)), at // 8
            runs, start = [], at
            task_start, searched = at // 8, at // 8 + 1
            forget(task_start)
        end = stream_end(at)
        if end <= start:
            raise _Restart(part, f"a bz2 stream with no block before compressed byte {at:,}")
        runs.append((start, end))
        forget(at)
        if kind == "eof":
            if at != part.size:
                raise _Restart(part, f"{part.path} changed while it was read")
            yield tuple(runs), at
            return
        if at >= task_start + CHUNK_COMPRESSED_BYTES:
            yield tuple(runs), at
            runs = []
        header = at


def _block_tasks(part: "_Part", opts: dict, sha1) -> tuple[bytes, Iterator[_Task]] | None:
    """The part's header (everything before its first <page>) and tasks of whole bzip2 blocks
    that the workers read, decompress and parse themselves; or None if the file is not a bz2
    file of UTF-8 XML (those are read sequentially)."""
    path = str(part.path)
    header = bytearray()
    with open(part.path, "rb") as f:
        if not _sniff_compression(path, f.read(8)):
            return None
        reader = _decompress(path, f, 0, part.size)
        try:
            for data in reader:
                header += data
                if b"<page>" in header or len(header) > CHUNK_XML_BYTES:
                    break
        except _Abort:
            return None  # the sequential reader says where
        finally:
            reader.close()
    i = header.find(b"<page>")
    if i < 0 or _encoding(path, bytes(header[:1024])):
        return None
    header = bytes(header[:i])
    _HeaderCheck.whole(path, header, "decompressed XML")

    def tasks():
        with open(part.path, "rb") as f:
            for runs, comp_end in _scan_tasks(part, f, sha1):
                yield _Task(path, header, blocks=runs, comp_end=comp_end, **opts)

    return header, tasks()


@dataclass
class _Stitch:
    """The main process's side of a part read by bzip2 blocks: the task results arrive in file
    order, each cut after its first and last </page>; the XML between one task's last </page> and
    the next one's first (a page or two, split by the block boundary) is joined and parsed here."""
    header: bytes
    part: "_Part"
    opts: dict
    carry: bytes = b""  # XML after the last </page> seen so far
    skip: int = 0  # bytes of `carry` that are the header (the first task's XML starts with it)
    carry_at: int = 0  # where `carry` starts in the decompressed XML
    xml_pos: int = 0  # where the next task's XML starts

    def __post_init__(self) -> None:
        self.skip = len(self.header)

    def take(self, result: _Result, root_closed: bool) -> list[_Result]:
        """What to add for the next block task's result, in order: the pages joined across the
        boundary before it (once its XML holds a </page>), then its own. `root_closed`: whether
        the root element is closed, as the results so far say (only the final fragment decides)."""
        if result.retry is not None:
            raise _Restart(self.part, f"a bzip2 block did not decompress ({result.retry})")
        out = []
        self.carry += result.head
        if result.cut:  # the carried XML now ends with whole pages: they come before this task's
            out.append(self.fragment(final=False))
            out[0].root_closed = root_closed
            self.carry, self.carry_at = result.tail, self.xml_pos + result.xml_size - len(result.tail)
        self.xml_pos += result.xml_size
        result.root_closed = root_closed
        out.append(result)
        return out

    def fragment(self, final: bool) -> _Result:
        """Parse the carried XML (`final`: what follows the last task's last </page>)."""
        task = _Task(str(self.part.path), self.header, xml_offset=self.carry_at + self.skip, offsets_of="decompressed XML",
                     **self.opts)
        result = _parse(task, self.carry[self.skip:], None, None)
        self.carry, self.skip = b"", 0
        return result


def _reading(part: "_Part", opts: dict, sha1, by_blocks: bool,
             sequential: bool = False) -> tuple[str, _Stitch | None, Iterator[_Task], bool]:
    """How a part is read: the kind of its tasks ("task" or "blocks"), the _Stitch that joins block
    tasks' results, the tasks, and whether the file must be hashed on the side (its tasks do not
    all pass through this process). Unless `sequential` (reading it otherwise failed), a
    multistream file with a usable index is split by its index; else, if `by_blocks` (there are
    workers) and it is a bz2 file of 1 MB or more, by bzip2 blocks; else it is read sequentially."""
    if sequential:
        return "task", None, _sequential_tasks(part, opts, sha1), False
    if part.index is not None:
        tasks = _multistream_tasks(part, opts)
        if tasks is not None:
            return "task", None, tasks, True
    if by_blocks and part.size >= BLOCKS_MIN_BYTES:
        blocks = _block_tasks(part, opts, sha1)
        if blocks is not None:
            return "blocks", _Stitch(blocks[0], part, opts), blocks[1], False
    return "task", None, _sequential_tasks(part, opts, sha1), False


# ----------------------------------------------------------------------------------------------
# Parts: planning, skipping finished ones, writing


@dataclass
class _Part:
    path: Path
    stem: str
    size: int
    mtime_ns: int
    index: Path | None
    out_dir: Path

    @property
    def parquet(self) -> Path:
        return self.out_dir / f"{self.stem}.parquet"

    @property
    def manifest(self) -> Path:
        return self.out_dir / f"{self.stem}.manifest.json"

    @property
    def dropped(self) -> Path:
        return self.out_dir / f"{self.stem}.dropped.parquet"

    @property
    def order(self) -> tuple:
        m = _PAGE_RANGE.search(self.path.name)
        return (int(m.group(1)) if m else 0, self.path.name)


def part_stem(name: str) -> str:
    """Output name of an input part: `enwiki-...-pages-articles1.xml-p1p41242.bz2` ->
    `enwiki-...-pages-articles1-p1p41242`."""
    stem = name[:-4] if name.endswith(".bz2") else name
    i = stem.rfind(".xml")
    return stem[:i] + stem[i + 4:] if i >= 0 else stem


def _plan(inputs: list[str], out_dir: Path) -> list[_Part]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and (q.name.endswith(".bz2") or q.name.endswith(".xml"))
                           and not _is_index_name(q.name))
            if not found:
                raise UserError(f"no .xml or .xml.bz2 dump files in folder {p}")
            files.extend(found)
        elif not p.exists():
            raise UserError(f"input file not found: {p}")
        elif not p.is_file():
            raise UserError(f"input is not a file: {p}")
        elif _is_index_name(p.name):
            continue  # `raw/*.bz2` also matches the multistream indexes: they are found by name
        else:
            files.append(p)
    parts: dict[str, _Part] = {}
    seen: set[Path] = set()
    for p in files:
        if p.resolve() in seen:
            continue
        seen.add(p.resolve())
        stem = part_stem(p.name)
        if stem in parts:
            raise UserError(f"inputs {parts[stem].path} and {p} would both be written to {out_dir / stem}.parquet; "
                            f"extract them to different folders")
        st = p.stat()
        parts[stem] = _Part(p, stem, st.st_size, st.st_mtime_ns, find_index(p), out_dir)
    return sorted(parts.values(), key=lambda part: part.order)


def _sha1(path: Path) -> str:
    return hash_file(path).hexdigest()


def _read_manifest(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT else None


def _finished(part: _Part, options: dict) -> dict | None:
    """The part's manifest if a previous run finished it from this very source with these options."""
    m = _read_manifest(part.manifest)
    if (not m or not m.get("complete") or m.get("options") != options or not part.parquet.is_file()
            or not part.dropped.is_file()):
        return None
    if m.get("source_size") != part.size:
        return None
    if m.get("source_mtime_ns") != part.mtime_ns and m.get("source_sha1") != _sha1(part.path):
        return None  # same size but other content (a re-download): redo
    return m


def _write_json(path: Path, obj: dict) -> None:
    tmp = temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale(part: _Part) -> None:
    for path in (part.parquet, part.manifest, part.dropped):
        for stale in part.out_dir.glob(path.name + ".tmp-*"):
            stale.unlink(missing_ok=True)  # left by a run that was killed mid-part


def _schema():
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("revid", pa.int64()), ("title", pa.string()), ("url", pa.string()),
                      ("text", pa.string())])


class _WikiTemplates:
    """What the run knows about each wiki's disambiguation templates beyond the curated table:
    learned from the finished parts of out_dir (their manifests list the templates they applied,
    with where each was learned) and from the parts read in this run, in part order. Parts learn
    from everything finished before them, in this run or an earlier one, and from themselves (see
    `_PartWriter.finish`); a killed and re-run extraction therefore learns exactly what an
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
        from growgpt.disambiguation import LearnedTemplates, detector_for

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


def _dropped_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("title", pa.string()), ("ns", pa.int32()), ("reason", pa.string()),
                      ("detail", pa.string()), ("source_chars", pa.int64())])


class _PartWriter:
    """Collects a part's documents in order, drops duplicates and pages that call disambiguation
    templates learned from the dump, and writes Parquet row groups to a temporary file that
    becomes the part's file only when the part is done; every dropped page goes to the part's
    `.dropped.parquet` the same way."""

    def __init__(self, part: _Part, seen: _SeenHashes, options: dict, wikis: _WikiTemplates,
                 read_again: bool = False) -> None:
        import pyarrow.parquet as pq

        self.part = part
        self.seen = seen
        self.options = options
        self.wikis = wikis
        self.read_again = read_again  # this is the second reading, for templates learned late
        self.started = time.perf_counter()
        self.counts = _counts()
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
        self.stitch: _Stitch | None = None  # read by bzip2 blocks
        self.site: tuple | None = None  # (Wiki, template namespace names, case), from the first result
        self.templates = None  # LearnedTemplates of the part's wiki
        self.called: set[str] = set()  # templates called by the documents written so far
        self.late: set[str] = set()  # templates learned here that documents written before were calling

    def add(self, result: _Result) -> None:
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
            self._flush()

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

    def _flush(self) -> None:
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
        manifest. Raises _Restart instead when templates learned from this part were called by
        documents already written (their template page came after them): the part is read again,
        knowing them from its start, so that its output is what it would be had it known them."""
        if error is None and self.late and not self.read_again:
            names = ", ".join(f"{{{{{k}}}}}" for k in sorted(self.late)[:3])
            raise _Restart(self.part, f"disambiguation templates learned late in the part ({names})",
                           sequential=False, read_again=True)
        self._flush()
        self.writer.close()
        self._flush_dropped()
        self.dropped_writer.close()
        self._place(self.dropped_tmp, self.part.dropped)
        self._place(self.tmp, self.part.parquet)
        if self.sha1_thread is not None:
            self.sha1_thread.join()
        if error is None and not self.root_closed:
            msg = (f"{self.part.path} ends after a complete </page> without </mediawiki> (truncated?); "
                   f"its {self.counts['pages']:,} pages were read")
            _warn(msg)
            self.warnings.append(msg)
        for reason, pages in self.big.items():
            for page_id, title, chars, detail in pages:
                msg = (f"{self.part.stem}: {title!r} (page {page_id}, {chars:,} characters of wikitext) was dropped as "
                       f"{reason}: {detail}")
                _warn(msg)
                self.warnings.append(msg)
            if self.big_count[reason] > len(pages):
                more = self.big_count[reason] - len(pages)
                msg = (f"{self.part.stem}: {more:,} more pages of over {BIG_DROP_CHARS:,} characters were dropped as "
                       f"{reason}; see {self.part.dropped.name}")
                _warn(msg)
                self.warnings.append(msg)
        wiki_key = ""
        applied: dict[str, str] = {}
        defined: list[str] = []
        if self.templates is not None:
            wiki_key = self.site[0].key
            applied = dict(sorted(self.templates.extra.items()))
            defined = self.templates.learned_in(self.part.stem)
            self._warn_earlier_parts(wiki_key, defined)
        from growgpt import __version__

        c = self.counts
        manifest = {
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
        _write_json(self.part.manifest, manifest)
        _fsync_dir(self.part.out_dir)
        if error is None:
            self.wikis.finished(wiki_key, self.part.stem, set(applied))
        return manifest

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
            msg = (f"{self.part.stem} defines disambiguation template(s) {names}{more}, which the finished part(s) "
                   f"{parts} did not know: any of their pages that call them was kept; delete their .manifest.json "
                   f"and run extract again to redo them")
            _warn(msg)
            self.warnings.append(msg)


def _load_hashes(parquet: Path, seen: _SeenHashes) -> None:
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
# The whole run


def _default_processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Inline:
    """Stands in for a future when there is one process: the task runs when its result is wanted,
    so at most one chunk is in memory."""

    def __init__(self, task: _Task) -> None:
        self.task = task

    def result(self) -> _Result:
        return _run_task(self.task)

    def cancel(self) -> bool:
        return True


def extract(inputs: list[str], out_dir: str, processes: int | None = None, min_chars: int = DEFAULT_MIN_CHARS,
            keep_tables: bool = False, progress: bool = True, keep_disambiguation: bool = False,
            page_timeout: float = DEFAULT_PAGE_TIMEOUT, *, _clean: bool = True) -> list[dict]:
    """Extract the articles of MediaWiki XML dump parts into `out_dir`, one Parquet file, one
    dropped-pages file and one manifest per part; returns the manifests in part order (finished
    parts from an earlier run are skipped and their manifests returned with `"skipped": true`).
    `page_timeout`: CPU seconds a page's cleaning may take before it is dropped (0: no limit)."""
    if min_chars < 0:
        raise UserError(f"--min-chars must be >= 0, not {min_chars}")
    if not 0 <= page_timeout <= MAX_PAGE_TIMEOUT:  # (also refuses NaN)
        raise UserError(f"--page-timeout must be 0 (no limit) to {MAX_PAGE_TIMEOUT:,.0f} seconds, not {page_timeout}")
    if processes is None:
        processes = _default_processes()
    if processes < 1:
        raise UserError(f"--processes must be >= 1, not {processes}")
    if not inputs:
        raise UserError("no input files given")
    out = Path(out_dir)
    parts = _plan(inputs, out)
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
    todo: list[_Part] = []
    for part in parts:
        m = _finished(part, options)
        if m is not None:
            manifests[part.stem] = dict(m, skipped=True)
        else:
            todo.append(part)
    if todo:
        for m in _run(todo, out, processes, options, progress):
            manifests[Path(m["parquet"]).name[: -len(".parquet")]] = m
    return [manifests[p.stem] for p in parts]


_WORK_KINDS = ("task", "blocks")  # queue items whose payload is a task's future


def _run(todo: list[_Part], out: Path, processes: int, options: dict, progress: bool) -> list[dict]:
    import collections

    # the duplicate filter and the learned templates start with every finished part of out_dir
    # that is not being redone
    seen = _SeenHashes()
    wikis = _WikiTemplates()
    redo = {p.stem for p in todo}
    for mf in sorted(out.glob("*.manifest.json")):
        stem = mf.name[: -len(".manifest.json")]
        m = _read_manifest(mf)
        if stem not in redo and m and m.get("complete") and (out / f"{stem}.parquet").is_file():
            _load_hashes(out / f"{stem}.parquet", seen)
            wikis.add_finished(stem, m)

    opts = {key: options[key] for key in ("min_chars", "keep_tables", "keep_disambiguation", "page_timeout")}
    opts["clean"] = options.get("clean", True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(p.size for p in todo), unit="B", unit_scale=True, desc="extract", file=sys.stderr,
                   dynamic_ncols=True)
    pool = None
    if processes > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: workers import only this module and the cleaner (not pyarrow), and a
        # fork of a process with pyarrow's threads is not safe
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_install_timer)
    window = 2 * processes + 2  # chunks in flight: enough to keep every worker busy, bounded memory
    queue: collections.deque = collections.deque()  # (kind, part, payload) in file order
    done: list[dict] = []
    writer: _PartWriter | None = None
    sequential: set[str] = set()  # parts whose reading by blocks or by index had to be given up
    read_again: set[str] = set()  # parts being read a second time for templates they taught late

    def produce(parts: list[_Part]):
        """Everything to do, in order: ('begin', part, (sha1, start time)), then for a part read
        by bzip2 blocks ('stitch', part, _Stitch) and ('blocks', part, task)s, else ('task', part,
        task)s; then ('end', part, None). Or, after which nothing more comes: ('fail', part,
        (message, keep)), or ('restart', part, _Restart) to read the part again sequentially."""
        for part in parts:
            sha1 = hashlib.sha1()
            yield ("begin", part, (sha1, time.perf_counter()))  # the part's time starts when its reading does
            try:
                kind, stitch, tasks, on_the_side = _reading(part, opts, sha1, pool is not None,
                                                            sequential=part.stem in sequential)
                if on_the_side:
                    yield ("hash-file", part, None)
                if stitch is not None:
                    yield ("stitch", part, stitch)
                for task in tasks:
                    yield (kind, part, task)
            except UserError as e:
                yield ("fail", part, (str(e), False))
                return
            except _Restart as e:
                yield ("restart", part, e)
                return
            yield ("end", part, None)

    def add(result: _Result) -> None:
        writer.add(result)
        if result.error is not None:
            if writer.by_index:  # a wrong index, or damage: the sequential reader tells which
                _warn(f"reading {writer.part.path} by its multistream index {writer.part.index} failed "
                      f"({result.error}); reading the file sequentially")
                raise _Restart(writer.part, result.error)
            if writer.stitch is not None:  # the sequential reader words it, and keeps the pages before
                raise _Restart(writer.part, result.error)
            raise _PartFailed(result.error, True)

    def consume(item) -> None:
        nonlocal writer
        kind, part, payload = item
        if kind == "begin":
            writer = _PartWriter(part, seen, options, wikis, read_again=part.stem in read_again)
            writer.sha1, writer.started = payload
        elif kind == "hash-file":  # (only a part read by its multistream index)
            writer.by_index = True

            def hash_whole_file(w=writer):
                w.sha1 = hash_file(part.path)
            writer.sha1_thread = threading.Thread(target=hash_whole_file, daemon=True)
            writer.sha1_thread.start()
        elif kind == "stitch":
            writer.stitch = payload
        elif kind in _WORK_KINDS:
            try:
                result = payload.result()
            except Exception as e:
                from concurrent.futures.process import BrokenProcessPool

                if isinstance(e, BrokenProcessPool):
                    raise UserError(f"a worker process died while extracting {part.path} (killed, or out of memory?); "
                                    f"finished parts are kept, run again to continue") from None
                raise
            for r in writer.stitch.take(result, writer.root_closed) if kind == "blocks" else [result]:
                add(r)
            if bar is not None:
                bar.update(result.comp_end - writer_progress.get(part.stem, 0))
                writer_progress[part.stem] = result.comp_end
        elif kind == "end":
            if writer.stitch is not None:
                add(writer.stitch.fragment(final=True))
            done.append(writer.finish())
            if bar is not None:
                bar.update(part.size - writer_progress.get(part.stem, 0))
                writer_progress[part.stem] = part.size
            writer = None
        elif kind == "fail":
            raise _PartFailed(*payload)
        elif kind == "restart":
            raise payload

    def cancel_queued() -> None:
        for kind, _, payload in queue:
            if kind in _WORK_KINDS:
                payload.cancel()
        queue.clear()

    writer_progress: dict[str, int] = {}
    previous_handler = _install_timer()  # the page budget for what this process cleans itself
    try:
        try:
            try:
                items = produce(todo)
                while True:
                    in_flight = 0
                    try:
                        for kind, part, payload in items:
                            if kind in _WORK_KINDS:
                                if pool is None:
                                    payload = _Inline(payload)
                                else:
                                    payload = pool.submit(_run_task if kind == "task" else _run_block_task, payload)
                                in_flight += 1
                            queue.append((kind, part, payload))
                            while in_flight >= window or (pool is None and in_flight):
                                item = queue.popleft()
                                in_flight -= item[0] in _WORK_KINDS
                                consume(item)
                        while queue:
                            item = queue.popleft()
                            in_flight -= item[0] in _WORK_KINDS
                            consume(item)
                        break
                    except _Restart as e:  # everything of this part is dropped and it is read again
                        cancel_queued()
                        if writer is not None:
                            writer.abandon()
                            writer = None
                        if bar is not None:
                            bar.update(-writer_progress.pop(e.part.stem, 0))
                        if e.sequential:
                            sequential.add(e.part.stem)
                        if e.read_again:
                            read_again.add(e.part.stem)
                        items = produce(todo[todo.index(e.part):])
            except _PartFailed as e:
                cancel_queued()
                if writer is None or not e.keep:
                    raise UserError(e.message) from None
                manifest = writer.finish(error=e.message)  # may itself meet a full disk: handled below
                writer = None
                raise UserError(f"{e.message}; the {manifest['articles_written']:,} articles before it were written "
                                f"to {out / manifest['parquet']}, marked incomplete (a re-run redoes this part)") from None
        except OSError as e:  # a disk full, a file that vanished: the user's to fix
            cancel_queued()
            failed = writer
            writer = None
            if failed is not None:
                failed.abandon()
            raise UserError(_os_error_message(e, failed, out)) from None
        except BaseException:
            if writer is not None:
                writer.abandon()
                writer = None
            raise
    finally:
        _restore_timer(previous_handler)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return done


def _os_error_message(e: OSError, writer: "_PartWriter | None", out: Path) -> str:
    reason = e.strerror or str(e)
    if writer is None:
        return f"cannot read or write {e.filename or out}: {reason}"
    part = writer.part
    if e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e) or "Disk quota" in str(e):
        return (f"disk full while writing {part.parquet} (from {part.path}): {reason}; its partial output was "
                f"removed and the parts finished before it are intact: free some space and run again")
    return (f"cannot read or write {e.filename or part.parquet} while extracting {part.path}: {reason}; its "
            f"partial output was removed and the parts finished before it are intact")


class _PartFailed(Exception):
    def __init__(self, message: str, keep: bool) -> None:
        super().__init__(message)
        self.message = message
        self.keep = keep


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
        counts = _dropped_counts(m)
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


def _dropped_counts(m: dict) -> dict[str, int]:
    """A manifest's counts of dropped pages by reason."""
    f = m.get("filtered", {})
    return {"namespace": m.get("non_article_namespace", 0), "redirect": m.get("redirects", 0),
            **{r: f.get(r, 0) for r in DROP_REASONS[2:]}}


def dropped_pages(path: str | Path, reason: str | None = None, limit: int | None = 20) -> tuple[list[dict], int]:
    """The pages extract dropped, largest first (by characters of wikitext): from one
    `PART.dropped.parquet` (or the part's .parquet / .manifest.json beside it) or every part of an
    extract folder. Returns (up to `limit` rows, number of rows that matched)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import pyarrow as pa

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
