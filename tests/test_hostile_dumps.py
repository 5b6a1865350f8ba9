"""growgpt.wiki.dumps (and its mirror client, growgpt.wiki.mirror) against a hostile mirror: loopback HTTP
servers that send too much, too slowly, the wrong sizes, malformed listings, or redirects elsewhere. Every
case must end, quickly, in one line `growgpt: error: ...` and exit 2, with nothing larger than listed in --to
and nothing written outside it.

Each misbehaving handler is bounded on its own (a byte count, a few seconds, or a request count after
which it answers 404), so the servers stop even against a client that would loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from growgpt.cli import main
from growgpt.errors import UserError
from growgpt.wiki import dumps
from growgpt.wiki import mirror as mirror_client

WIKI = "testwiki"
DATE = "20251101"
NAME = f"{WIKI}-{DATE}-pages-articles1.xml-p1p10.bz2"
DATA = random.Random(0).randbytes(65536)
STATUS = f"/{WIKI}/{DATE}/dumpstatus.json"
SHA1SUMS = f"/{WIKI}/{DATE}/{WIKI}-{DATE}-sha1sums.txt"
FILE = f"/{WIKI}/{DATE}/{NAME}"


def _status(files: dict | None = None, status: str = "done") -> bytes:
    if files is None:
        files = {NAME: {"size": len(DATA), "sha1": hashlib.sha1(DATA).hexdigest(),
                        "md5": hashlib.md5(DATA).hexdigest()}}
    return json.dumps({"jobs": {"articlesdump": {"status": status, "files": files}}}).encode()


def _put(root: Path, rel: str, data: bytes | None) -> None:
    """Write `data` at mirror path `rel`; None deletes what is there (a file or a folder)."""
    path = root / rel.lstrip("/")
    if data is None:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


MISBEHAVE_AT_MOST = 30  # then a misbehaving path answers 404, so that a client that loops still ends


class Mirror:
    """A loopback dump mirror serving `root` (with Range), unless `misbehave` has a handler for the
    request's URL path. Records every request as (method, path, Range header)."""

    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = root
        self.requests: list[tuple[str, str, str | None]] = []
        self.misbehave: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = self.path.split("?")[0]
                mirror.requests.append((self.command, self.path, self.headers.get("Range")))
                if path in mirror.misbehave:
                    if mirror.count(path, self.command) > MISBEHAVE_AT_MOST:
                        return self.send_error(404)
                    return mirror.misbehave[path](self)
                local = mirror.root / path.lstrip("/")
                if local.is_dir():
                    html = "".join(f'<a href="{p.name}/">{p.name}/</a>\n' for p in sorted(local.iterdir()))
                    return _reply(self, 200, html.encode())
                if not local.is_file():
                    return self.send_error(404)
                data = local.read_bytes()
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                start = int(m.group(1)) if m else 0
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
                _reply(self, 206 if start else 200, data[start:], headers)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.split("?")[0] == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _reply(h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict | None = None,
           length: str | None = "auto") -> None:
    h.send_response(code)
    if length is not None:
        h.send_header("Content-Length", str(len(body)) if length == "auto" else length)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        _stream(h, body)


def _stream(h: BaseHTTPRequestHandler, body: bytes, total: int | None = None, delay: float = 0.0,
            piece: int = 65536, cap_s: float = 10.0) -> None:
    """Write `body` repeated up to `total` bytes (default: once), `piece` bytes at a time with `delay`
    between; stop when the client hangs up or after `cap_s` seconds, and close the connection."""
    total = len(body) if total is None else total
    sent, began = 0, time.monotonic()
    try:
        while sent < total and time.monotonic() - began < cap_s:
            at = sent % max(len(body), 1)
            chunk = (body[at:] + body)[:min(piece, total - sent)]
            h.wfile.write(chunk)
            sent += len(chunk)
            if delay:
                time.sleep(delay)
    except OSError:
        pass  # the client hung up: what a client that stops reading does
    h.close_connection = True


def _headers_only(h: BaseHTTPRequestHandler, code: int, headers: dict) -> None:
    h.send_response(code)
    for k, v in headers.items():
        h.send_header(k, v)
    h.end_headers()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(mirror_client, "BACKOFF_S", 0.01)


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "mirror"
    _put(root, FILE, DATA)
    _put(root, STATUS, _status())
    _put(root, SHA1SUMS, f"{hashlib.sha1(DATA).hexdigest()}  {NAME}\n".encode())
    return root


@pytest.fixture
def mirror(root):
    m = Mirror(root)
    yield m
    m.close()


def _snapshot(tmp_path: Path, to: Path) -> dict[str, int]:
    return {str(p.relative_to(tmp_path)): p.stat().st_size for p in tmp_path.rglob("*")
            if p.is_file() and to not in p.parents}


def _cli_error(capsys, args: list[str], warnings_allowed: bool = False) -> str:
    """Run the CLI in-process; the one line it printed, after checking it is the only one and exit 2."""
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = err.strip().splitlines()
    if warnings_allowed:
        lines = [line for line in lines if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("growgpt: error: "), err
    return lines[0]


def _fetch_args(mirror: Mirror, to: Path, *extra: str) -> list[str]:
    return ["fetch", "--wiki", WIKI, "--date", DATE, "--parts", "1", "--to", str(to), "--mirror", mirror.url,
            "--quiet", *extra]


def _list_args(mirror: Mirror, date: str = DATE) -> list[str]:
    return ["dumps", "list", "--wiki", WIKI, "--date", date, "--mirror", mirror.url]


def _fetch_error(capsys, tmp_path: Path, mirror: Mirror, *extra: str, listed: int = len(DATA),
                 warnings_allowed: bool = False) -> str:
    """The one-line error of `growgpt fetch`, after checking that no file in --to is larger than
    listed and that nothing outside --to changed."""
    to = tmp_path / "raw"
    before = _snapshot(tmp_path, to)
    line = _cli_error(capsys, _fetch_args(mirror, to, *extra), warnings_allowed)
    for p in to.rglob("*") if to.exists() else ():
        assert p.stat().st_size <= listed, (p, p.stat().st_size)
    assert _snapshot(tmp_path, to) == before
    return line


# ---- A1: a file is read up to its listed size, never further --------------------------------------------

def test_body_longer_than_listed_stops_at_the_listed_size(root, mirror, capsys, tmp_path):
    _put(root, STATUS, _status({NAME: {"size": 1000, "sha1": hashlib.sha1(DATA[:1000]).hexdigest()}}))
    # 100 MB without Content-Length: the body ends when the server closes
    mirror.misbehave[FILE] = lambda h: (_headers_only(h, 200, {}), _stream(h, DATA, total=100_000_000))
    line = _fetch_error(capsys, tmp_path, mirror, listed=1000)
    assert NAME in line and "more than the listed 1000 bytes" in line and "deleted" in line
    assert not (tmp_path / "raw" / (NAME + ".partial")).exists()


@pytest.mark.parametrize("headers, says", [
    ({"Content-Length": "2000"}, "2000 bytes (Content-Length"),
    ({"Content-Length": "999"}, "999 bytes (Content-Length"),
])
def test_content_length_disagreeing_with_listing(root, mirror, capsys, tmp_path, headers, says):
    _put(root, STATUS, _status({NAME: {"size": 1000, "sha1": hashlib.sha1(DATA[:1000]).hexdigest()}}))
    length = int(headers["Content-Length"])
    mirror.misbehave[FILE] = lambda h: (_headers_only(h, 200, headers), _stream(h, DATA[:length]))
    line = _fetch_error(capsys, tmp_path, mirror, listed=1000)
    assert NAME in line and says in line and "the listing says 1000 bytes" in line


def test_content_range_disagreeing_with_listing(root, mirror, capsys, tmp_path):
    to = tmp_path / "raw"
    _put(to, NAME + ".partial", DATA[:100])
    mirror.misbehave[FILE] = lambda h: (_headers_only(h, 206, {"Content-Range": f"bytes 100-199/{len(DATA) * 2}"}),
                                        _stream(h, DATA[100:200]))
    line = _fetch_error(capsys, tmp_path, mirror)
    assert NAME in line and "Content-Range" in line and f"the listing says {len(DATA)} bytes" in line


def test_unknown_size_is_bounded_by_free_space(root, mirror, capsys, tmp_path, monkeypatch):
    _put(root, STATUS, None)  # listed from sha1sums.txt, and HEAD gives no size: the size is unknown
    mirror.misbehave[FILE] = lambda h: (
        h.send_error(405) if h.command == "HEAD" else (_headers_only(h, 200, {}), _stream(h, DATA, total=10 << 20)))
    monkeypatch.setattr(dumps, "free_bytes", lambda path: 20_000)
    line = _fetch_error(capsys, tmp_path, mirror, listed=20_000, warnings_allowed=True)
    assert NAME in line and "more than the 20000 bytes free" in line


# ---- A2: retries are bounded; a server that ignores Range is detected; --timeout -----------------------

def _ignores_range_and_drops(mirror: Mirror, after: int = 4096, stop_after_requests: int = 20):
    def handler(h):
        if mirror.count(FILE) > stop_after_requests:  # keeps the server bounded against a looping client
            return h.send_error(404)
        _headers_only(h, 200, {"Content-Length": str(len(DATA))})
        _stream(h, DATA[:after])
    return handler


def test_server_ignoring_range_and_dropping_is_refused(mirror, capsys, tmp_path):
    mirror.misbehave[FILE] = _ignores_range_and_drops(mirror)
    line = _fetch_error(capsys, tmp_path, mirror)
    assert "ignores Range requests" in line and NAME in line
    # 1: bytes 0-4095; 2: Range answered with 200, read again from 0 once; 3: 200 again, refused
    assert mirror.count(FILE) == 3
    assert [r for _, p, r in mirror.requests if p == FILE] == [None, "bytes=4096-", "bytes=4096-"]


def test_bytes_already_had_do_not_count_as_progress(mirror, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(mirror_client, "RETRIES", 0)
    mirror.misbehave[FILE] = _ignores_range_and_drops(mirror)
    line = _fetch_error(capsys, tmp_path, mirror)
    # the restart from byte 0 brought only bytes it already had: that uses up a budget of 0 retries
    assert "brought no new bytes" in line and mirror.count(FILE) == 2


def test_server_errors_use_up_the_retry_budget(mirror, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(mirror_client, "RETRIES", 2)
    mirror.misbehave[FILE] = lambda h: h.send_error(503 if mirror.count(FILE) <= 20 else 404)
    line = _fetch_error(capsys, tmp_path, mirror)
    assert "giving up on" in line and NAME in line and mirror.count(FILE) == 3


def test_fetch_timeout_ends_a_trickle(mirror, capsys, tmp_path):
    mirror.misbehave[FILE] = lambda h: (_headers_only(h, 200, {"Content-Length": str(len(DATA))}),
                                        _stream(h, DATA, piece=1, delay=0.02, cap_s=8))
    began = time.monotonic()
    line = _fetch_error(capsys, tmp_path, mirror, "--timeout", "1")
    assert "timeout of 1 s" in line and NAME in line
    assert time.monotonic() - began < 5  # the trickle alone would take 8 s


def test_timeout_must_be_positive(mirror, capsys, tmp_path):
    assert "timeout" in _fetch_error(capsys, tmp_path, mirror, "--timeout", "0")


# ---- A3: redirects stay on the mirror ---------------------------------------------------------------

@pytest.fixture
def other_host(tmp_path):
    try:
        socket.socket().bind(("127.0.0.2", 0))
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2 for a second host: {e}")
    (tmp_path / "other").mkdir()
    m = Mirror(tmp_path / "other", host="127.0.0.2")
    yield m
    m.close()


def _redirect(to: str, code: int = 302):
    return lambda h: _reply(h, code, b"", {"Location": to})


@pytest.mark.parametrize("path", [STATUS, FILE])
@pytest.mark.parametrize("code", [302, 307])
def test_redirect_to_another_host_is_refused(mirror, other_host, capsys, tmp_path, path, code):
    target = f"{other_host.url}{path}"
    mirror.misbehave[path] = _redirect(target, code)
    line = _fetch_error(capsys, tmp_path, mirror)
    assert "redirects to" in line and target in line
    assert other_host.requests == []


@pytest.mark.parametrize("target", ["file:///etc/passwd", "https://{host}{path}", "http://localhost:{port}{path}"])
def test_redirect_to_another_scheme_or_host_name_is_refused(mirror, capsys, tmp_path, target):
    host, port = mirror.url.split("//")[1], mirror.url.rsplit(":", 1)[1]
    target = target.format(host=host, port=port, path=STATUS)
    mirror.misbehave[STATUS] = _redirect(target)
    line = _cli_error(capsys, _list_args(mirror))
    assert "redirects to" in line and target in line


def test_redirects_within_the_mirror_are_followed_a_few_times(root, mirror, capsys, tmp_path):
    moved = f"/moved/{WIKI}/{DATE}/dumpstatus.json"
    _put(root, moved, _status())
    mirror.misbehave[STATUS] = _redirect(moved)
    main(_list_args(mirror))
    assert NAME in capsys.readouterr().out

    def loop(h):  # /loop/1 -> /loop/2 -> ...; 404 after 50, so the server stops on its own
        n = int(h.path.rsplit("/", 1)[-1]) if h.path.startswith("/loop/") else 0
        _reply(h, 302, b"", {"Location": f"/loop/{n + 1}"}) if n < 50 else h.send_error(404)
    mirror.misbehave[STATUS] = loop
    for n in range(60):
        mirror.misbehave[f"/loop/{n}"] = loop
    line = _cli_error(capsys, _list_args(mirror))
    assert f"more than {5} redirects" in line and STATUS in line
    assert sum(1 for _, p, _ in mirror.requests if p.startswith("/loop/")) == 5


# ---- A4: "verified" means verified ------------------------------------------------------------------

def test_cli_names_files_it_could_not_verify(root, mirror, capsys, tmp_path):
    _put(root, STATUS, _status({NAME: {"size": len(DATA)}}))
    to = tmp_path / "raw"
    main(_fetch_args(mirror, to))
    out = capsys.readouterr().out
    assert f"not verified (no checksum in the listing): {NAME}" in out
    assert "1 file(s) verified" not in out and "0 verified, 1 not verified" in out
    assert (to / NAME).read_bytes() == DATA
    paths = dumps.fetch(WIKI, DATE, "1", to, mirror=mirror.url, progress=False)
    assert paths == [to / NAME] and paths.verified_by == {to / NAME: None}


def test_cli_says_which_checksum_verified_a_file(mirror, capsys, tmp_path):
    main(_fetch_args(mirror, tmp_path / "raw"))
    out = capsys.readouterr().out
    assert f"verified (sha1): {NAME}" in out and "1 verified, 0 not verified" in out


def test_require_checksum_refuses_before_downloading(root, mirror, capsys, tmp_path):
    _put(root, STATUS, _status({NAME: {"size": len(DATA)}}))
    line = _fetch_error(capsys, tmp_path, mirror, "--require-checksum")
    assert NAME in line and "no sha1 or md5" in line
    assert mirror.count(FILE) == 0 and not (tmp_path / "raw").exists()
    with pytest.raises(UserError, match="no sha1 or md5"):
        dumps.fetch(WIKI, DATE, "1", tmp_path / "raw", mirror=mirror.url, progress=False, require_checksum=True)


# ---- A5: malformed metadata is a one-line error naming the URL and the field -------------------------

def _files(**entry) -> bytes:
    return _status({NAME: {"size": len(DATA), "sha1": hashlib.sha1(DATA).hexdigest(), **entry}})


_LONG_NAME = f"{WIKI}-{DATE}-pages-articles{'1' * 300}.xml-p1p10.bz2"
MALFORMED = [  # (id, mirror paths to write (None: delete), date, what the error must say)
    ("size-text", {STATUS: _files(size="abc")}, DATE, r"files\['.*'\]\.size is 'abc'"),
    ("size-negative", {STATUS: _files(size=-1)}, DATE, r"\.size is -1"),
    ("size-bool", {STATUS: _files(size=True)}, DATE, r"\.size is True"),
    ("size-float", {STATUS: _files(size=1.5)}, DATE, r"\.size is 1\.5"),
    ("sha1-number", {STATUS: _files(sha1=123)}, DATE, r"\.sha1 is 123, expected 40 hex"),
    ("sha1-not-hex", {STATUS: _files(sha1="z" * 40)}, DATE, r"\.sha1 is 'zzz.*expected 40 hex"),
    ("sha1-short", {STATUS: _files(sha1="a" * 39)}, DATE, r"\.sha1 .*expected 40 hex"),
    ("md5-long", {STATUS: _files(md5="a" * 40)}, DATE, r"\.md5 .*expected 32 hex"),
    ("entry-string", {STATUS: _status({NAME: "big"})}, DATE, r"files\['.*'\] is a string"),
    ("files-list", {STATUS: _status([NAME])}, DATE, r"jobs\.articlesdump\.files is a list"),
    ("top-list", {STATUS: b"[1, 2, 3]"}, DATE, r"top level is a list"),
    ("jobs-list", {STATUS: b'{"jobs": [1]}'}, DATE, r"field 'jobs' is a list"),
    ("job-string", {STATUS: b'{"jobs": {"articlesdump": "done"}}'}, DATE, r"jobs\.articlesdump is a string"),
    ("status-number", {STATUS: b'{"jobs": {"articlesdump": {"status": 1, "files": {}}}}'}, DATE,
     r"jobs\.articlesdump\.status is 1"),
    ("deep-nesting", {STATUS: b"[" * 100_000}, DATE, r"not valid JSON"),
    ("not-utf8", {STATUS: b"\xff\xfe\xfa{"}, DATE, r"not valid JSON"),
    ("name-too-long", {STATUS: _status({_LONG_NAME: {"size": 1}})}, DATE, r"not a plain file name"),
    ("sums-garbage", {STATUS: None, SHA1SUMS: b"this is not a checksum line\n"}, DATE, r"sha1sums\.txt: line 1"),
    ("sums-md5-length", {STATUS: None, SHA1SUMS: f"{'a' * 32}  {NAME}\n".encode()}, DATE, r"line 1 .*40 hex"),
    ("latest-empty", {f"/{WIKI}/{DATE}": None}, "latest", r"no dated dump folders"),
    ("latest-hint-malformed", {f"/{WIKI}/{DATE}": None, f"/{WIKI}/latest/dumpstatus.json":
                               b'{"jobs": {"articlesdump": {"files": [1, 2]}}}'}, "latest", r"no dated dump folders"),
    ("latest-dated-malformed", {STATUS: b"[1, 2, 3]"}, "latest", r"top level is a list"),
]


@pytest.mark.parametrize("writes, date, says", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_listing_is_one_line_naming_url_and_field(root, mirror, capsys, writes, date, says):
    for rel, data in writes.items():
        _put(root, rel, data)
    line = _cli_error(capsys, _list_args(mirror, date))
    assert mirror.url in line and re.search(says, line), line


@pytest.mark.parametrize("length", ["²", "12abc", "-5", "1_000"])
def test_malformed_head_content_length(root, mirror, capsys, length):
    _put(root, STATUS, None)  # listed from sha1sums.txt: sizes come from HEAD
    mirror.misbehave[FILE] = lambda h: _reply(h, 200, b"", length=length)
    line = _cli_error(capsys, _list_args(mirror))
    assert mirror.url in line and "Content-Length" in line


# ---- A6: listings and part ranges are bounded -----------------------------------------------------

@pytest.mark.parametrize("which", ["dumpstatus", "sha1sums", "folder-index"])
@pytest.mark.parametrize("with_length", [False, True])
def test_huge_listing_is_refused(root, mirror, capsys, which, with_length):
    size = mirror_client.LISTING_MAX_BYTES + (1 << 20)
    path = {"dumpstatus": STATUS, "sha1sums": SHA1SUMS, "folder-index": f"/{WIKI}/"}[which]
    if which == "sha1sums":
        _put(root, STATUS, None)
    headers = {"Content-Length": str(size)} if with_length else {}
    mirror.misbehave[path] = lambda h: (_headers_only(h, 200, headers), _stream(h, b" " * 65536, total=size))
    line = _cli_error(capsys, _list_args(mirror, "latest" if which == "folder-index" else DATE))
    assert f"{mirror.url}{path} is larger than {mirror_client.LISTING_MAX_BYTES:,} bytes" in line


@pytest.mark.parametrize("trickle", ["body", "headers"])
def test_slow_listing_hits_its_deadline(mirror, capsys, monkeypatch, trickle):
    monkeypatch.setattr(mirror_client, "LISTING_DEADLINE_S", 1.0)
    body = _status()

    def slow(h):  # a byte (or a header line) every 20 ms for at most 4 s, then 404 to later requests
        if mirror.count(STATUS) > 1:
            return h.send_error(404)
        if trickle == "body":
            _headers_only(h, 200, {"Content-Length": str(len(body))})
            return _stream(h, body, piece=1, delay=0.02, cap_s=4)
        h.wfile.write(b"HTTP/1.0 200 OK\r\n")
        _stream(h, b"X-Slow: 1\r\n", total=10**6, piece=11, delay=0.02, cap_s=4)
    mirror.misbehave[STATUS] = slow
    began = time.monotonic()
    line = _cli_error(capsys, _list_args(mirror))
    assert "within 1 s" in line and STATUS in line
    assert time.monotonic() - began < 3.5  # the trickle alone would take 4 s


def test_huge_part_range_is_checked_before_it_is_expanded(mirror, capsys, monkeypatch, tmp_path):
    real_range = range

    def small_range(*args):  # parse_parts must never build a huge range, not even as a set
        r = real_range(*args)
        assert len(r) < 10_000, f"range of {len(r)} numbers"
        return r
    monkeypatch.setattr(dumps, "range", small_range, raising=False)
    args = ["fetch", "--wiki", WIKI, "--date", DATE, "--to", str(tmp_path / "raw"), "--mirror", mirror.url, "--parts"]
    line = _cli_error(capsys, args + ["1-100000000"])
    assert "no part 2-100000000 in this dump; available parts: 1" in line
    line = _cli_error(capsys, args + ["9" * 5000])
    assert "expected all, N, N-M" in line
    assert dumps.parse_parts("1,1-1,1", [1, 2]) == [1]


# ---- D16: the .sha1ok stamp is written through a temporary name and a rename ---------------------------

def test_stamp_is_written_atomically(mirror, tmp_path, monkeypatch):
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src, dst):
        renamed.append((Path(src).name, Path(dst).name))
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    to = tmp_path / "raw"
    dumps.fetch(WIKI, DATE, "1", to, mirror=mirror.url, progress=False)
    stamp = to / (NAME + ".sha1ok")
    assert stamp.read_text().strip() == hashlib.sha1(DATA).hexdigest()
    assert any(dst == stamp.name and src != dst for src, dst in renamed), renamed
    # a re-run that finds the file without its stamp rehashes it and writes the stamp the same way
    stamp.unlink()
    renamed.clear()
    dumps.fetch(WIKI, DATE, "1", to, mirror=mirror.url, progress=False)
    assert stamp.read_text().strip() == hashlib.sha1(DATA).hexdigest()
    assert [dst for _, dst in renamed] == [stamp.name]
    assert sorted(p.name for p in to.iterdir()) == [NAME, stamp.name]  # no temporary left behind
