"""growgpt.wiki.dumps against a fake dump mirror: a folder laid out like dumps.wikimedia.org, read as a
local folder, as file:// and over HTTP from a local server that can misbehave on request."""

from __future__ import annotations

import bz2
import hashlib
import json
import random
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from growgpt.errors import UserError
from growgpt.wiki import dumps

WIKI = "testwiki"
DATE = "20251101"
# part number -> page ranges of its files (part 2 has two files, as enwiki's later parts have)
PARTS = {1: [(1, 10)], 2: [(11, 20), (21, 30)], 3: [(31, 40)]}


def _xml(start: int, end: int) -> bytes:
    rng = random.Random(start)
    words = ["river", "town", "music", "history", "album", "species", "county", "film", "war", "bridge"]
    pages = "".join(
        f"<page><title>Page {i}</title><ns>0</ns><id>{i}</id><revision><id>{i}0</id><text>"
        + " ".join(rng.choice(words) for _ in range(300)) + "</text></revision></page>\n"
        for i in range(start, end + 1))
    return f'<mediawiki xml:lang="en">\n{pages}</mediawiki>\n'.encode()


def _entry(folder: Path, name: str, data: bytes) -> dict:
    (folder / name).write_bytes(data)
    return {"size": len(data), "url": f"/{folder.parent.name}/{folder.name}/{name}",
            "sha1": hashlib.sha1(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


def make_dump(root: Path, wiki: str, date: str, status: str = "done", parts=PARTS, extra_names=()) -> Path:
    folder = root / wiki / date
    folder.mkdir(parents=True)
    plain, multi = {}, {}
    for n, ranges in parts.items():
        for a, b in ranges:
            suffix = f"{n}.xml-p{a}p{b}.bz2" if n else ".xml.bz2"
            data = bz2.compress(_xml(a, b))
            name = f"{wiki}-{date}-pages-articles{suffix}"
            plain[name] = _entry(folder, name, data)
            name = f"{wiki}-{date}-pages-articles-multistream{suffix}"
            multi[name] = _entry(folder, name, data)
            index = f"{wiki}-{date}-pages-articles-multistream-index{suffix.replace('.xml', '.txt')}"
            lines = b"".join(b"0:%d:Page %d\n" % (i, i) for i in range(a, b + 1))
            multi[index] = _entry(folder, index, bz2.compress(lines))
    for name in extra_names:
        plain[name] = {"size": 1, "url": "x", "sha1": "0" * 40, "md5": "0" * 32}
    jobs = {"articlesdump": {"status": status, "files": plain},
            "articlesmultistreamdump": {"status": "done", "files": multi},
            "metacurrentdump": {"status": "done", "files": {}}}
    (folder / "dumpstatus.json").write_text(json.dumps({"jobs": jobs, "version": "0.8"}))
    for algo in ("sha1", "md5"):
        lines = [f"{info[algo]}  {name}\n" for name, info in {**plain, **multi}.items()]
        (folder / f"{wiki}-{date}-{algo}sums.txt").write_text("".join(lines))
    return folder




class _Server:
    """An HTTP mirror of `root` that records requests and misbehaves once per file when told to."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str, str | None]] = []  # (method, file name, Range header)
        self.drop_once: set[str] = set()  # send half the bytes, then close the connection
        self.fail_once: set[str] = set()  # answer 500
        self.corrupt: set[str] = set()  # serve the right length of wrong bytes
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.do_GET(body=False)

            def do_GET(self, body=True):
                rel = self.path.lstrip("/")
                name = rel.rstrip("/").rsplit("/", 1)[-1]
                server.requests.append((self.command, name, self.headers.get("Range")))
                path = server.root / rel
                if name in server.fail_once:
                    server.fail_once.discard(name)
                    return self.send_error(500)
                if path.is_dir():
                    html = "".join(f'<a href="{p.name}/">{p.name}/</a>\n' for p in sorted(path.iterdir()))
                    return self._send(200, html.encode(), body)
                if not path.is_file():
                    return self.send_error(404)
                data = path.read_bytes()
                if name in server.corrupt:
                    data = bytes(b ^ 0xFF for b in data)
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                start = int(m.group(1)) if m and not server.ignore_range else 0
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
                if name in server.drop_once:
                    server.drop_once.discard(name)
                    self.send_response(206 if start else 200)
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:start + (len(data) - start) // 2])
                    self.close_connection = True
                    return
                self._send(206 if start else 200, data[start:], body, headers)

            def _send(self, code, data, body, headers=None):
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def gets(self, name: str) -> list[str | None]:
        return [r for m, n, r in self.requests if m == "GET" and n == name]


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "mirror"
    make_dump(root, WIKI, DATE)
    return root


@pytest.fixture
def server(root):
    s = _Server(root)
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _name(n: int, a: int, b: int) -> str:
    return f"{WIKI}-{DATE}-pages-articles{n}.xml-p{a}p{b}.bz2"


def _fetch(server, to, parts="1-3", **kw):
    return dumps.fetch(WIKI, DATE, parts, to, mirror=server.url, progress=False, backoff=0.001, **kw)


# ---- listing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_uri", [False, True])
def test_list_local_folder_and_file_url(root, as_uri):
    listing = dumps.list_parts(WIKI, DATE, mirror=root.as_uri() if as_uri else str(root))
    assert [p.number for p in listing.parts] == [1, 2, 3]
    two = listing.part(2)
    assert (two.start, two.end) == (11, 30)
    assert [(f.start, f.end) for f in two.files] == [(11, 20), (21, 30)]
    f = listing.part(1).files[0]
    data = (root / WIKI / DATE / f.name).read_bytes()
    assert f.name == _name(1, 1, 10) and f.size == len(data) and f.sha1 == hashlib.sha1(data).hexdigest()
    assert listing.jobs["articlesdump"] == "done" and listing.warnings == []
    table = dumps.format_listing(listing)
    assert "11-20" in table and _name(2, 21, 30) in table and f.sha1[:10] in table and "3 parts" in table


def test_list_over_http_and_multistream(server):
    listing = dumps.list_parts(WIKI, DATE, mirror=server.url, multistream=True)
    names = [f.name for f in listing.part(1).files]
    assert names == [f"{WIKI}-{DATE}-pages-articles-multistream1.xml-p1p10.bz2",
                     f"{WIKI}-{DATE}-pages-articles-multistream-index1.txt-p1p10.bz2"]
    assert listing.part(1).files[1].is_index and listing.part(1).files[0].url.startswith(server.url)


def test_single_file_wiki_is_part_one(tmp_path):
    make_dump(tmp_path, "smallwiki", DATE, parts={0: [(1, 5)]})
    # the whole-wiki file carries no page range in its name
    folder = tmp_path / "smallwiki" / DATE
    status = json.loads((folder / "dumpstatus.json").read_text())
    [(name, info)] = status["jobs"]["articlesdump"]["files"].items()
    assert name == f"smallwiki-{DATE}-pages-articles.xml.bz2"
    listing = dumps.list_parts("smallwiki", DATE, mirror=str(tmp_path))
    assert [(p.number, p.start, p.end, len(p.files)) for p in listing.parts] == [(1, None, None, 1)]
    assert "all" in dumps.format_listing(listing)


def test_job_not_done_warns(tmp_path):
    make_dump(tmp_path, WIKI, DATE, status="in-progress")
    listing = dumps.list_parts(WIKI, DATE, mirror=str(tmp_path))
    assert listing.jobs["articlesdump"] == "in-progress"
    with pytest.raises(UserError, match=r"articlesdump job of .* is 'in-progress', not done"):
        dumps.fetch(WIKI, DATE, "1", tmp_path / "raw", mirror=str(tmp_path), progress=False)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())
    assert len(listing.warnings) == 1 and "articlesdump" in listing.warnings[0]
    assert "warning:" in dumps.format_listing(listing)


def test_latest_is_newest_done_dump(root, server):
    make_dump(root, WIKI, "20251001")
    make_dump(root, WIKI, "20251201", status="in-progress")  # still running: not "latest"
    assert dumps.list_parts(WIKI, "latest", mirror=str(root)).date == DATE
    assert dumps.list_parts(WIKI, "latest", mirror=server.url).date == DATE
    # a latest/dumpstatus.json, where a mirror has one, names the date through its file names
    latest = root / WIKI / "latest"
    latest.mkdir()
    shutil.copy(root / WIKI / "20251001" / "dumpstatus.json", latest / "dumpstatus.json")
    assert dumps.list_parts(WIKI, "latest", mirror=server.url).date == "20251001"


def test_falls_back_to_sha1sums(root, server):
    (root / WIKI / DATE / "dumpstatus.json").unlink()
    listing = dumps.list_parts(WIKI, DATE, mirror=server.url)
    f = listing.part(2).files[1]
    data = (root / WIKI / DATE / f.name).read_bytes()
    assert f.size == len(data) and f.sha1 == hashlib.sha1(data).hexdigest()  # size from HEAD
    assert listing.jobs == {} and "sha1sums" in listing.warnings[0]
    (root / WIKI / DATE / f"{WIKI}-{DATE}-sha1sums.txt").unlink()
    f = dumps.list_parts(WIKI, DATE, mirror=str(root)).part(1).files[0]  # md5 only, size from stat
    data = (root / WIKI / DATE / f.name).read_bytes()
    assert (f.sha1, f.md5, f.size) == (None, hashlib.md5(data).hexdigest(), len(data))


def test_unknown_dump_names_url(root, server):
    with pytest.raises(UserError, match=re.escape(f"{server.url}/{WIKI}/20990101/dumpstatus.json")):
        dumps.list_parts(WIKI, "20990101", mirror=server.url)
    with pytest.raises(UserError, match="dumpstatus.json"):
        dumps.list_parts("nowiki", DATE, mirror=str(root))
    with pytest.raises(UserError, match="date"):
        dumps.list_parts(WIKI, "2025-11-01", mirror=str(root))


@pytest.mark.parametrize("name", ["../evil.bz2", "a/b.bz2", "a\\b.bz2", ".hidden.bz2",
                                  f"{WIKI}-{DATE}-pages-articles1.xml-p1p2.bz2/../../x", "otherwiki-x.bz2",
                                  f"{WIKI}-{DATE}-pages-meta-history1.xml-p1p2.bz2"])
def test_names_are_checked(name):
    with pytest.raises(UserError, match="refusing remote file name"):
        dumps.check_name(name, WIKI, DATE)


def test_listing_with_evil_name_is_refused(tmp_path):
    make_dump(tmp_path, WIKI, DATE, extra_names=["../evil.bz2"])
    with pytest.raises(UserError, match=re.escape("'../evil.bz2'")):
        dumps.list_parts(WIKI, DATE, mirror=str(tmp_path))


def test_part_specs():
    available = [1, 2, 3, 4, 5, 7, 8, 9, 10]
    assert dumps.parse_parts("1-3,5", available) == [1, 2, 3, 5]
    assert dumps.parse_parts("7-9, 1", available) == [1, 7, 8, 9]
    assert dumps.parse_parts("all", available) == available
    assert dumps.parse_parts([2, 2, 4], available) == [2, 4]
    for bad in ["", "1-", "3-1", "a", "1;2", "-2"]:
        with pytest.raises(UserError, match="expected all"):
            dumps.parse_parts(bad, available)
    with pytest.raises(UserError, match=r"no part 6, 12 .*available parts: 1-5,7-10"):
        dumps.parse_parts("6,12", available)


# ---- fetching ------------------------------------------------------------------------------------

def test_fetch_and_rerun_skips(root, server, tmp_path):
    to = tmp_path / "raw"
    paths = _fetch(server, to)
    assert [p.name for p in paths] == [_name(1, 1, 10), _name(2, 11, 20), _name(2, 21, 30), _name(3, 31, 40)]
    for p in paths:
        assert p.read_bytes() == (root / WIKI / DATE / p.name).read_bytes()
        assert not p.with_name(p.name + ".partial").exists()
    server.requests.clear()
    assert _fetch(server, to) == paths
    assert [r for r in server.requests if r[1].endswith(".bz2")] == []  # only the listing was read


def test_fetch_local_mirror_multistream(root, tmp_path):
    paths = dumps.fetch(WIKI, DATE, "2", tmp_path / "raw", mirror=str(root), multistream=True, progress=False)
    assert sorted(p.name for p in paths) == sorted(
        f"{WIKI}-{DATE}-pages-articles-multistream{k}2.{ext}-p{a}p{b}.bz2"
        for a, b in PARTS[2] for k, ext in (("", "xml"), ("-index", "txt")))
    assert all(p.read_bytes() == (root / WIKI / DATE / p.name).read_bytes() for p in paths)


def test_dropped_connection_resumes_with_range(root, server, tmp_path):
    name = _name(1, 1, 10)
    server.drop_once.add(name)
    [path] = _fetch(server, tmp_path / "raw", parts="1")
    assert path.read_bytes() == (root / WIKI / DATE / name).read_bytes()
    first, second = server.gets(name)
    assert first is None and re.fullmatch(r"bytes=\d+-", second) and second != "bytes=0-"


def test_existing_partial_is_resumed_or_restarted(root, server, tmp_path):
    name = _name(3, 31, 40)
    data = (root / WIKI / DATE / name).read_bytes()
    to = tmp_path / "raw"
    to.mkdir()
    (to / (name + ".partial")).write_bytes(data[:100])
    assert _fetch(server, to, parts="3")[0].read_bytes() == data
    assert server.gets(name) == ["bytes=100-"]
    # a server that ignores Range answers 200 with the whole file: start again from byte 0
    (to / name).unlink()
    (to / (name + ".partial")).write_bytes(data[:100])
    server.ignore_range = True
    assert _fetch(server, to, parts="3")[0].read_bytes() == data


def test_server_error_is_retried(root, server, tmp_path):
    name = _name(1, 1, 10)
    server.fail_once.add(name)
    [path] = _fetch(server, tmp_path / "raw", parts="1")
    assert path.read_bytes() == (root / WIKI / DATE / name).read_bytes()
    assert server.gets(name) == [None, None]


def test_checksum_mismatch_deletes_partial(server, tmp_path):
    name = _name(1, 1, 10)
    server.corrupt.add(name)
    to = tmp_path / "raw"
    with pytest.raises(UserError, match=f"checksum mismatch for {re.escape(name)}: expected sha1 .*deleted"):
        _fetch(server, to, parts="1")
    assert list(to.iterdir()) == []


def test_missing_file_names_url(root, server, tmp_path):
    name = _name(3, 31, 40)
    (root / WIKI / DATE / name).unlink()
    with pytest.raises(UserError, match=re.escape(f"(HTTP 404): {server.url}/{WIKI}/{DATE}/{name}")):
        _fetch(server, tmp_path / "raw", parts="3")
    assert server.gets(name) == [None]  # not retried


def test_unknown_part(server, tmp_path):
    with pytest.raises(UserError, match="no part 12 in this dump; available parts: 1-3"):
        _fetch(server, tmp_path / "raw", parts="2,12")


def test_disk_check_refuses_with_numbers(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dumps, "free_bytes", lambda path: 1000)
    with pytest.raises(UserError, match=r"not enough disk space on .*raw: need \d+\.\d+ GB .* free 0\.00 GB"):
        _fetch(server, tmp_path / "raw")
    assert [r for r in server.requests if r[1].endswith(".bz2")] == []


def test_present_file_with_wrong_bytes_is_refused(root, server, tmp_path):
    name = _name(1, 1, 10)
    to = tmp_path / "raw"
    to.mkdir()
    (to / name).write_bytes(b"x" * (root / WIKI / DATE / name).stat().st_size)
    with pytest.raises(UserError, match="exists but is not"):
        _fetch(server, to, parts="1")
