"""bzip2 at the level of streams and blocks: decompression that names the compressed offset of
any damage, the bit-level search for block and end-of-stream magics, and the decompression of
runs of blocks cut out of a single-stream file, so that workers can read one in parallel.

Blocks start with a 48-bit magic that is not byte-aligned, so a boundary is found by a bit-level
search (`bytes.find` over the 8 alignments), and a run of blocks is shifted to a byte boundary and
wrapped as a stream without its end. Nothing relies on the stream CRCs (they need every block's):
libbz2 checks each block's own CRC, and a boundary found by chance inside a block (once in 2^48
bits) is caught because no whole block decompresses from it. stdlib bz2 is used, not
`indexed_bzip2`: the error handling needs a decompressor that fails cleanly (NOTES.md).

The lowest of the reading modules, it also holds what the others share: `Abort` (damage in a
file) and `warn` (a one-line warning on stderr).
"""

from __future__ import annotations

import bz2
import sys
from collections.abc import Iterator

from growgpt.errors import UserError

READ_BYTES = 32 << 10  # compressed bytes fed to bz2 at a time: an error is located within this

BZ2_MAGIC = b"BZh"
BLOCK_MAGIC = 0x314159265359  # start of every bzip2 block (bit-aligned, not byte-aligned)
FIRST_BLOCK = BLOCK_MAGIC.to_bytes(6, "big")  # a stream's first block: byte-aligned after "BZhN"
EOS_MAGIC = 0x177245385090  # end of a bzip2 stream, followed by its 32-bit CRC (bit-aligned too)
_COMPRESSED = {  # formats people download dumps in that extract does not read
    b"\x1f\x8b": "gzip", b"7z\xbc\xaf\x27\x1c": "7z", b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip",
}


def warn(message: str) -> None:
    """A warning of the wiki modules: one line on stderr."""
    print(f"growgpt: warning: {message}", file=sys.stderr, flush=True)


class Abort(Exception):
    """Damage in a file: the pages read before it are kept, the part is marked incomplete."""


def sniff_compression(path: str, head: bytes) -> bool:
    """True for bz2; raises for formats that are not read; False for anything else (plain XML)."""
    if not head:
        raise UserError(f"{path} is empty")
    if head.startswith(BZ2_MAGIC) and len(head) >= 4 and head[3:4].isdigit():
        return True
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise UserError(f"{path} is {name}-compressed; growgpt extract reads .xml.bz2 and plain .xml dumps: "
                            f"decompress it first")
    return False


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


_MAGICS = [(kind, _magic_patterns(m)) for kind, m in (("block", BLOCK_MAGIC), ("eos", EOS_MAGIC))]


def find_marks(data: bytes, lo: int, hi: int, kinds: tuple[str, ...] = ("block", "eos")) -> list[tuple[int, str]]:
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


def bits(data: bytes, start: int, end: int) -> int:
    """Bits [start, end) of `data` as an unsigned integer (big-endian bit order, as bzip2 writes)."""
    lo, hi = start // 8, (end + 7) // 8
    return (int.from_bytes(data[lo:hi], "big") >> (hi * 8 - end)) & ((1 << (end - start)) - 1)


def stream_starts_at(f, offset: int) -> bool:
    """A bz2 stream starts at byte `offset` of the open file: "BZh1".."BZh9", then a block or the
    end-of-stream marker, byte-aligned (a chance match is one in 2^72)."""
    f.seek(offset)
    head = f.read(10)
    return (len(head) == 10 and head[:3] == BZ2_MAGIC and 0x31 <= head[3] <= 0x39
            and head[4:] in (FIRST_BLOCK, EOS_MAGIC.to_bytes(6, "big")))


def _find_block_start(path: str, before: int, floor: int) -> int:
    """Byte offset of the last bzip2 block header starting at or before byte `before` (bit-level
    search for the 48-bit block magic), or `floor` (the stream's start) if none is found."""
    lo = max(floor, before - (2 << 20))  # a compressed block is < 1 MB
    with open(path, "rb") as f:
        f.seek(lo)
        data = f.read(before - lo + 8)
    starts = [lo + bit // 8 for bit, _ in find_marks(data, 0, before - lo + 1, ("block",))]
    return starts[-1] if starts else floor


def decompress(path: str, f, start: int, end: int, sha1=None, index_says: bool = False) -> Iterator[bytes]:
    """Decompressed bytes of the bz2 streams in bytes [start, end) of the open file `f`.

    Raises Abort naming the compressed offset of the damaged block, or of the truncation."""
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
            if not fed and len(data) >= 3 and not data.startswith(BZ2_MAGIC):
                if stream_start == start:
                    said = ", where its multistream index says one starts" if index_says else ""
                    raise Abort(f"{path}: no bz2 stream at compressed byte {stream_start:,}{said}")
                warn(f"{path}: ignoring {end - (pos - len(data)):,} bytes after the last bz2 stream")
                if sha1 is not None:  # the manifest's SHA-1 is of the whole file
                    while rest := f.read(1 << 20):
                        sha1.update(rest)
                return
            try:
                out = dec.decompress(data)
            except (OSError, ValueError) as e:
                # (a piece can hold several streams: the damaged one started at stream_start or later)
                block = _find_block_start(path, max(piece_start, stream_start), stream_start)
                raise Abort(f"corrupt bz2 data in {path}: the bzip2 block at compressed byte {block:,} is damaged "
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
        raise Abort(f"{path} is truncated: the bz2 stream starting at compressed byte {stream_start:,} "
                    f"ends at byte {pos:,} before its end marker")


def wrap_blocks(data: bytes, start: int, end: int) -> bytes:
    """The whole bzip2 blocks in bits [start, end) of `data` as the start of a bzip2 stream: a
    header, the blocks shifted to a byte boundary (big-int shifts, ~1 ms per block), then the first
    5 bytes of a next block's magic. No end-of-stream marker, whose CRC would need each block's:
    libbz2 checks each block's CRC and hands the block out once it is whole. The magic's start
    keeps input waiting while it does (CPython's bz2 stops asking for output once all input is
    consumed, so a block that ends the input would come out 32 kB at a time, see
    `decompress_blocks`). Level 9 fits blocks of any level."""
    nbits = end - start + 40
    pad = -nbits % 8
    value = (bits(data, start, end) << 40) | (BLOCK_MAGIC >> 8)
    return b"BZh9" + (value << pad).to_bytes((nbits + pad) // 8, "big")


def decompress_blocks(wrapped: bytes) -> bytes:
    """Everything `wrap_blocks` output decompresses to (raises OSError on damage)."""
    dec = bz2.BZ2Decompressor()
    out = dec.decompress(wrapped)
    while more := dec.decompress(b""):  # nothing, unless libbz2 held output back (see wrap_blocks)
        out += more
    return out


def decompress_runs(path: str, runs: tuple[tuple[int, int], ...]) -> bytes:
    """The XML of runs of whole bzip2 blocks (start bit, end bit) of the file `path`, read in one
    piece. Raises OSError, ValueError or EOFError where a run does not decompress, or gives
    nothing: it did not start at a block (a boundary found by chance inside one)."""
    first, last = runs[0][0], runs[-1][1]
    lo = first // 8
    with open(path, "rb") as f:
        f.seek(lo)
        data = f.read((last + 7) // 8 - lo)
    pieces = []
    for a, b in runs:
        xml = decompress_blocks(wrap_blocks(data, a - lo * 8, b - lo * 8))
        if not xml:
            raise ValueError(f"no whole bzip2 block in compressed bits {a:,}-{b:,}")
        pieces.append(xml)
    del data
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
