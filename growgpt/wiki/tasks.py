"""How a dump part is read: cut into tasks of whole pages that worker processes parse and clean,
and the workers themselves.

Three readers, one output. A multistream dump with its index (`...-multistream-index...` beside
it) is split at bz2 stream offsets: each worker reads, decompresses and parses its own byte range.
A single-stream bz2 file of 1 MB or more is split at bzip2 *block* boundaries, searched for bit
by bit only where a task is cut (every ~512 kB), while this process reads and hashes the file
once; workers decompress their runs of blocks and parse the whole pages among them, and the page
or two cut by each task boundary are joined and parsed here (`Stitch`). Everything else (plain
XML, other encodings, small files, one process) is read here sequentially and cut at `</page>`
into ~2 MB chunks. Anything unusual met by the parallel readers (damage, truncation, bytes after
the last stream, a false block boundary, an index that does not fit) raises `Restart`, and the
part is read again sequentially, so errors, offsets and kept pages are exactly the sequential
reader's. Workers import only this module, `pages`, `bz2blocks` and the cleaner, not pyarrow.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from growgpt.errors import UserError
from growgpt.wiki.bz2blocks import (
    BZ2_MAGIC,
    FIRST_BLOCK,
    Abort,
    bits,
    decompress,
    decompress_runs,
    find_marks,
    sniff_compression,
    stream_starts_at,
    warn,
)
from growgpt.wiki.pages import HeaderCheck, Result, Task, new_counts, parse, transcode, xml_encoding

# Work-unit sizes. ~2 MB of XML per chunk: big enough that per-chunk costs (re-parsing the
# <siteinfo> header, pickling) are noise, small enough that the chunks in flight stay a few MB.
CHUNK_XML_BYTES = 2 << 20
CHUNK_COMPRESSED_BYTES = 512 << 10  # multistream: ~4x that of XML
PLAIN_READ_BYTES = 1 << 20  # bytes of a plain XML file read at a time
SCAN_BYTES = 1 << 20  # compressed bytes read at a time when splitting at bzip2 blocks (8 MB: +15 % RSS)
BLOCKS_MIN_BYTES = 1 << 20  # smaller bz2 files are read sequentially, not split into blocks

_PAGE_RANGE = re.compile(r"-p(\d+)p(\d+)")


# ----------------------------------------------------------------------------------------------
# Parts


@dataclass
class Part:
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


def plan(inputs: list[str], out_dir: Path) -> list[Part]:
    """The parts to extract from `inputs` (files and folders), in page-range order."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.name.endswith((".bz2", ".xml"))
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
    parts: dict[str, Part] = {}
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
        parts[stem] = Part(p, stem, st.st_size, st.st_mtime_ns, find_index(p), out_dir)
    return sorted(parts.values(), key=lambda part: part.order)


class Restart(Exception):
    """A part is read again from its start. Sequentially (`sequential`) when reading it in
    parallel, by bzip2 blocks or by a multistream index, met something only the sequential reader
    handles exactly (damage, a truncation, bytes after the last stream, a block boundary found by
    chance inside a block, an index that does not fit the file); the same way again (`read_again`)
    when it taught disambiguation templates that documents written before were calling."""

    def __init__(self, part: Part, reason: str, sequential: bool = True, read_again: bool = False) -> None:
        super().__init__(reason)
        self.part = part
        self.sequential = sequential
        self.read_again = read_again


# ----------------------------------------------------------------------------------------------
# Workers


def run_task(task: Task) -> Result:
    """Parse one chunk of pages (for a multistream range, read and decompress it first)."""
    if task.comp_range is None:
        return parse(task, task.body or b"", None, task.damage)
    damage = None
    pieces = []
    try:
        with open(task.path, "rb") as f:
            pieces.extend(decompress(task.path, f, *task.comp_range, index_says=True))
    except Abort as e:
        damage = str(e)
    except OSError as e:
        damage = f"cannot read {task.path}: {e.strerror or e}"
    body = b"".join(pieces)
    del pieces
    if damage is not None:  # keep the whole pages decompressed before the damage
        body = body[: body.rfind(b"</page>") + 7] if b"</page>" in body else b""
    return parse(task, body, f"the bz2 stream(s) from compressed byte {task.comp_range[0]:,}", damage)


def run_block_task(task: Task) -> Result:
    """Decompress runs of bzip2 blocks of a single-stream file, then parse the whole pages among
    them. A run that gives nothing did not start at a block (a boundary found by chance inside
    one): the part is read again sequentially, as on any error here."""
    try:
        xml = decompress_runs(task.path, task.blocks)
    except (OSError, ValueError, EOFError) as e:
        return Result(retry=f"{e}", comp_end=task.comp_end)
    i = xml.find(b"</page>")
    if i < 0:  # inside one long page: all of it goes to the main process, which joins it on
        return Result(counts=new_counts(), head=xml, xml_size=len(xml), comp_end=task.comp_end)
    cut_head, cut_tail = i + 7, xml.rfind(b"</page>") + 7
    lo = task.blocks[0][0] // 8
    result = parse(task, xml[cut_head:cut_tail], f"the bzip2 blocks from compressed byte {lo:,}", None)
    result.head, result.tail, result.xml_size, result.cut = xml[:cut_head], xml[cut_tail:], len(xml), True
    return result


class Inline:
    """Stands in for a future when there is one process: the task runs when its result is wanted,
    so at most one chunk is in memory."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def result(self) -> Result:
        return run_task(self.task)

    def cancel(self) -> bool:
        return True


# ----------------------------------------------------------------------------------------------
# Reading in this process, cut into chunks of whole pages


def sequential_tasks(part: Part, opts: dict, sha1) -> Iterator[Task]:
    """Read a file in this process and cut its XML into chunks of whole pages."""
    path = str(part.path)
    try:
        f = open(part.path, "rb")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        compressed = sniff_compression(path, f.read(8))
        f.seek(0)
        raw = decompress(path, f, 0, part.size, sha1) if compressed else _plain(f, sha1)
        yield from _cut(part, path, compressed, raw, f, opts)


def _cut(part: Part, path: str, compressed: bool, raw: Iterator[bytes], f, opts: dict) -> Iterator[Task]:
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
        encoding = xml_encoding(path, first)

        def stream():
            yield first
            yield from raw

        chunks = transcode(path, stream(), encoding) if encoding else stream()
        offsets_of = ("decompressed XML" if compressed else "XML") + (" re-encoded as UTF-8" if encoding else "")
        offsets_of = "" if offsets_of == "XML" else offsets_of
        check = HeaderCheck(path, offsets_of)
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
                yield Task(path, header, body=body, xml_offset=xml_offset, comp_end=f.tell(), offsets_of=offsets_of,
                           **opts)
                xml_offset += cut
    except Abort as e:
        if header is None:
            raise UserError(f"{e}; no page could be read before it") from None
        damage = str(e)
    if header is None:  # no pages at all: the whole document is "header"
        check.done()
        header, buf, xml_offset = bytes(buf), bytearray(), len(buf)
    if damage is not None:  # keep the whole pages read before the damage
        j = buf.rfind(b"</page>")
        del buf[j + 7 if j >= 0 else 0:]
    yield Task(path, header, body=bytes(buf), xml_offset=xml_offset, comp_end=part.size, damage=damage,
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


def read_index(index: Path) -> list[int]:
    """The distinct stream offsets of an index (`offset:page_id:title` lines), in file order."""
    offsets: list[int] = []
    with open(index, "rb") as f:  # (only its first bytes: an index can be hundreds of MB)
        opener = bz2.open if f.read(3) == BZ2_MAGIC else open
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
        warn(f"multistream index {index} is unreadable ({e}); reading the dump sequentially")
        return []
    return offsets


def multistream_tasks(part: Part, opts: dict) -> Iterator[Task] | None:
    """Tasks reading the part's streams in parallel, or None (with a warning) if its index cannot
    be used, in which case the file is read sequentially."""
    path = str(part.path)
    offsets = read_index(part.index)
    if not offsets:
        return None

    def misfit(why: str) -> None:
        warn(f"multistream index {part.index} does not fit {path} ({why}); reading the file sequentially")

    if offsets[0] <= 0 or offsets[-1] >= part.size:
        misfit(f"offsets {offsets[0]:,}..{offsets[-1]:,}, file size {part.size:,}")
        return None
    with open(part.path, "rb") as f:
        if not sniff_compression(path, f.read(8)):
            return None
        for off in (offsets[0], offsets[-1]):
            if not stream_starts_at(f, off):
                misfit(f"no bz2 stream starts at byte {off:,}")
                return None
        try:
            header = b"".join(decompress(path, f, 0, offsets[0]))
        except Abort as e:  # the index is wrong (or the file damaged: the sequential reader says where)
            misfit(str(e))
            return None
    if xml_encoding(path, header[:1024]) or b"<page>" in header:
        warn(f"multistream index {part.index}: the first stream of {path} is not just the header; reading the file "
             f"sequentially")
        return None
    HeaderCheck.whole(path, header, "decompressed XML")

    def tasks():
        start = offsets[0]
        with open(part.path, "rb") as f:
            for off in offsets[1:]:
                if off - start >= CHUNK_COMPRESSED_BYTES:
                    if not stream_starts_at(f, off):  # checked where a task is cut, before handing it out
                        why = f"no bz2 stream starts at byte {off:,}"
                        misfit(why)
                        raise Restart(part, why)
                    yield Task(path, header, comp_range=(start, off), comp_end=off, **opts)
                    start = off
        yield Task(path, header, comp_range=(start, part.size), comp_end=part.size, **opts)

    return tasks()


# ----------------------------------------------------------------------------------------------
# Single-stream dumps in parallel: split at bzip2 block boundaries


def scan_tasks(part: Part, f, sha1) -> Iterator[tuple[tuple[tuple[int, int], ...], int]]:
    """The bzip2 blocks of each task, in file order, as runs of whole blocks (start bit, end bit)
    inside one stream, about CHUNK_COMPRESSED_BYTES of them a task; with each, the compressed
    bytes of the file done once it is (for progress).

    The file is read once, SCAN_BYTES at a time, and hashed on the way, but only searched bit by
    bit where a task ends: at the first block that starts CHUNK_COMPRESSED_BYTES or more after the
    task's start (the next few hundred kB, in growing windows). Stream starts cost one `bytes.find`
    of the whole file, because a stream's first block is byte-aligned right after its "BZhN"
    header. Each stream must end with its end-of-stream marker right before the next one's header,
    and the last one at the end of the file; anything else raises Restart. A boundary found by
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
        return h >= 0 and buf[h:h + 3] == BZ2_MAGIC and 0x31 <= buf[h + 3] <= 0x39

    def stream_end(at: int) -> int:
        """Bit offset of the end-of-stream marker of the stream that ends right before byte `at`
        (the next header or the end of the file): the marker, its 32-bit CRC, then zero bits to
        the byte boundary."""
        lo = max(at - 16, base)
        for bit, _ in find_marks(buf, lo - base, at - base, ("eos",)):
            if (bit + 80 + 7) // 8 == at - base and not bits(buf, bit + 80, (at - base) * 8):
                return base * 8 + bit
        raise Restart(part, f"no end of a bz2 stream right before compressed byte {at:,}")

    def boundary(searched: int, target: int) -> tuple[str, int]:
        """Where the run that has been searched up to byte `searched` ends: ("stream", byte) if
        the next stream's header starts before byte `target`, else ("cut", bit) at the first block
        that starts from `target` on, unless that is a stream's first block ("stream", byte) or
        the file ends first ("eof", byte)."""
        end = need(target + 6)
        stop = min(target, end) + 5 - base  # byte-aligned block magics starting before target
        j = buf.find(FIRST_BLOCK, searched - base, stop)
        while j >= 0:
            if header_before(base + j):
                return "stream", base + j - 4
            j = buf.find(FIRST_BLOCK, j + 1, stop)
        at, window = max(target, searched), 64 << 10
        while at < end:  # blocks are ~100-900 kB apart
            end = need(at + window + 8)
            hi = min(at + window, end)
            marks = find_marks(buf, at - base, hi - base, ("block",))
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
        if not header_before(header + 4) or buf[header + 4 - base: header + 10 - base] != FIRST_BLOCK:
            raise Restart(part, f"no bz2 stream (with a block) at compressed byte {header:,}")
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
            raise Restart(part, f"a bz2 stream with no block before compressed byte {at:,}")
        runs.append((start, end))
        forget(at)
        if kind == "eof":
            if at != part.size:
                raise Restart(part, f"{part.path} changed while it was read")
            yield tuple(runs), at
            return
        if at >= task_start + CHUNK_COMPRESSED_BYTES:
            yield tuple(runs), at
            runs = []
        header = at


def block_tasks(part: Part, opts: dict, sha1) -> tuple[bytes, Iterator[Task]] | None:
    """The part's header (everything before its first <page>) and tasks of whole bzip2 blocks
    that the workers read, decompress and parse themselves; or None if the file is not a bz2
    file of UTF-8 XML (those are read sequentially)."""
    path = str(part.path)
    header = bytearray()
    with open(part.path, "rb") as f:
        if not sniff_compression(path, f.read(8)):
            return None
        reader = decompress(path, f, 0, part.size)
        try:
            for data in reader:
                header += data
                if b"<page>" in header or len(header) > CHUNK_XML_BYTES:
                    break
        except Abort:
            return None  # the sequential reader says where
        finally:
            reader.close()
    i = header.find(b"<page>")
    if i < 0 or xml_encoding(path, bytes(header[:1024])):
        return None
    header = bytes(header[:i])
    HeaderCheck.whole(path, header, "decompressed XML")

    def tasks():
        with open(part.path, "rb") as f:
            for runs, comp_end in scan_tasks(part, f, sha1):
                yield Task(path, header, blocks=runs, comp_end=comp_end, **opts)

    return header, tasks()


@dataclass
class Stitch:
    """The main process's side of a part read by bzip2 blocks: the task results arrive in file
    order, each cut after its first and last </page>; the XML between one task's last </page> and
    the next one's first (a page or two, split by the block boundary) is joined and parsed here."""
    header: bytes
    part: Part
    opts: dict
    carry: bytes = b""  # XML after the last </page> seen so far
    skip: int = 0  # bytes of `carry` that are the header (the first task's XML starts with it)
    carry_at: int = 0  # where `carry` starts in the decompressed XML
    xml_pos: int = 0  # where the next task's XML starts

    def __post_init__(self) -> None:
        self.skip = len(self.header)

    def take(self, result: Result, root_closed: bool) -> list[Result]:
        """What to add for the next block task's result, in order: the pages joined across the
        boundary before it (once its XML holds a </page>), then its own. `root_closed`: whether
        the root element is closed, as the results so far say (only the final fragment decides)."""
        if result.retry is not None:
            raise Restart(self.part, f"a bzip2 block did not decompress ({result.retry})")
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

    def fragment(self, final: bool) -> Result:
        """Parse the carried XML (`final`: what follows the last task's last </page>)."""
        task = Task(str(self.part.path), self.header, xml_offset=self.carry_at + self.skip,
                    offsets_of="decompressed XML", **self.opts)
        result = parse(task, self.carry[self.skip:], None, None)
        self.carry, self.skip = b"", 0
        return result


def reading(part: Part, opts: dict, sha1, by_blocks: bool,
            sequential: bool = False) -> tuple[str, Stitch | None, Iterator[Task], bool]:
    """How a part is read: the kind of its tasks ("task": run_task; "blocks": run_block_task, whose
    results the Stitch joins), the Stitch, the tasks, and whether the file must be hashed on the
    side (its tasks do not all pass through this process). Unless `sequential` (reading it
    otherwise failed), a multistream file with a usable index is split by its index; else, if
    `by_blocks` (there are workers) and it is a bz2 file of 1 MB or more, by bzip2 blocks; else it
    is read sequentially."""
    if sequential:
        return "task", None, sequential_tasks(part, opts, sha1), False
    if part.index is not None:
        tasks = multistream_tasks(part, opts)
        if tasks is not None:
            return "task", None, tasks, True
    if by_blocks and part.size >= BLOCKS_MIN_BYTES:
        blocks = block_tasks(part, opts, sha1)
        if blocks is not None:
            return "blocks", Stitch(blocks[0], part, opts), blocks[1], False
    return "task", None, sequential_tasks(part, opts, sha1), False
