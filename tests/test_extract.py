"""`growgpt.wiki.extract`: MediaWiki dumps to Parquet, on real samples and on generated dumps.

Real samples: gensim's enwiki excerpts (../shared/data/wikidumps/gensim, or gensim's own copy,
which every dev install has) always; every sample of ../shared/data/wikidumps where it is there.
What the other samples are for (page-range parts, a multistream file and its index, old export
schemas, a local MediaWiki) is generated here from them, as Wikimedia's tools would write it
(tests/wikidump.py). Counts are checked against SOURCES.md (written by whoever collected the
samples, from their own parse) or, without it, a plain count over the XML; parallel paths against
sequential ones; and damaged or hostile inputs against the promise that every failure is one
UserError naming the file (and for bz2 the compressed offset), with the pages before the damage
kept.
"""

from __future__ import annotations

import bz2
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from growgpt.errors import UserError
from growgpt.fsutil import hash_file
from growgpt.wiki import bz2blocks, partwriter, tasks
from growgpt.wiki.extract import default_processes, dropped_counts, extract, format_summary
from growgpt.wiki.pages import PageParser, Task, text_hash
from growgpt.wiki.tasks import part_stem

from conftest import SHARED_DUMPS, dump_sample
from wikidump import PROSE, multistream, random_prose, split_parts, wiki_dump

ENWIKI = "gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
TABLES = "gensim/enwiki-table-markup.xml.bz2"
BGWIKI = "gensim/bgwiki-latest-pages-articles-shortened.xml.bz2"
GENSIM = (ENWIKI, TABLES, BGWIKI)
TINYWIKI = "dumpster-dive/tinywiki-latest-pages-articles.xml"

# SOURCES.md counts redirects by their <redirect> element; tinywiki's hand-made "Redirect page" is
# `#REDIRECT [[The Beatles]]` without one, and growgpt (like MediaWiki) counts it as a redirect.
TEXT_REDIRECTS = {TINYWIKI: 1}


def sources() -> dict[str, tuple[int, int, int]]:
    """{file: (pages, namespace-0 pages, namespace-0 redirects)} from SOURCES.md's table."""
    out = {}
    for line in (SHARED_DUMPS / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        name = re.match(r"\|\s*`([^`]+)`", line)
        counts = re.search(r"\|\s*(\d+) \((\d+) / (\d+)\)\s*\|", line)
        if name and counts:
            out[name.group(1)] = tuple(int(x) for x in counts.groups())
    return out


def counted(path: Path) -> tuple[int, int, int]:
    """(pages, namespace-0 pages, namespace-0 redirects) of a dump with <ns> elements, by a plain
    regex count over its XML: SOURCES.md's columns, known without it."""
    data = path.read_bytes()
    data = bz2.decompress(data) if data[:3] == b"BZh" else data
    xml = data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8")
    pages = re.findall(r"<page>(.*?)</page>", xml, re.S)
    ns0 = [p for p in pages if "<ns>0</ns>" in p]
    return len(pages), len(ns0), sum("<redirect" in p for p in ns0)


def table(out_dir: Path, manifest: dict) -> pa.Table:
    return pq.read_table(out_dir / manifest["parquet"])


def dropped(out_dir: Path, manifest: dict) -> pa.Table:
    return pq.read_table(out_dir / manifest["dropped"])


def articles_file(out_dir: Path) -> Path:
    """The one part's Parquet file of articles in out_dir (not its dropped-pages file)."""
    [path] = [p for p in out_dir.glob("*.parquet") if not p.name.endswith(".dropped.parquet")]
    return path


def without_timing(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in ("seconds", "skipped")}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """extracted(path): the dump extracted on its own (own out_dir: no cross-file duplicates), once
    per module: (manifest, articles, dropped pages)."""
    root = tmp_path_factory.mktemp("extracted")
    done: dict[Path, tuple[dict, pa.Table, pa.Table]] = {}

    def get(path: Path) -> tuple[dict, pa.Table, pa.Table]:
        if path not in done:
            out = root / str(len(done))
            [m] = extract([str(path)], str(out), processes=1, progress=False)
            done[path] = (m, table(out, m), dropped(out, m))
        return done[path]

    return get


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> list[Path]:
    """The enwiki sample cut into 6 page-range parts (each a whole XML document), as Wikimedia's
    split_bz2.py cuts a dump: pages-articles.xml-pFIRSTpLAST.bz2, in page order."""
    xml = bz2.decompress(dump_sample(ENWIKI).read_bytes())
    folder = tmp_path_factory.mktemp("split-parts")
    parts = []
    for name, data in split_parts(xml, 6):
        parts.append(folder / name)
        parts[-1].write_bytes(data)
    return parts


def multistream_pages() -> list[tuple]:
    """17 pages (one not an article), ~1,700 characters each: in streams of 5, each stream is a
    few kB compressed and the whole file well under bz2blocks.READ_BYTES, like Wikimedia's own
    sample (elwikivoyage p2566p2583)."""
    rng = random.Random(17)
    pages = [(pid, f"Place {pid}", random_prose(rng, 250)) for pid in range(2566, 2583)]
    pages[6] = (2572, "Category:Places", "Places. [[Category:Travel]]", 14)
    return pages


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(multistream file, its index, the same XML as one single stream), as Wikimedia's
    recompressxml writes them: a stream of the header, 4 of pages (5 a stream), one of the footer."""
    folder = tmp_path_factory.mktemp("multistream")
    xml = wiki_dump(multistream_pages(), dbname="elwikivoyage", lang="el").encode()
    data, index = multistream(xml, 5)
    kinds = (".multistream", ".multistream-index", "")
    paths = tuple(folder / f"pages-articles-p2566p2582{kind}.xml.bz2" for kind in kinds)
    for path, content in zip(paths, (data, index, bz2.compress(xml))):
        path.write_bytes(content)
    return paths


def index_offsets(index: Path) -> list[int]:
    """The distinct stream offsets of a multistream index, in order."""
    lines = bz2.decompress(index.read_bytes()).decode().splitlines()
    return sorted({int(line.split(":", 1)[0]) for line in lines})


OLD_ARTICLES = [(10, "Computer accessibility", "'''Computer accessibility''' is about people and computers. " * 12),
                (11, "Accessibility", "'''Accessibility''' is the design of products for everyone. " * 8)]


@pytest.fixture(scope="module")
def schemas(tmp_path_factory) -> dict[str, Path]:
    """Dumps in what else real dumps vary by: {"0.3": a 2009 dump (export-0.3: no <ns>, namespaces
    from the titles' prefixes, an empty <redirect />, an http:// base), "0.9": export-0.9 with one
    redirect, "0.11 local": a local MediaWiki's Greek Wikivoyage (its own article path)}."""
    folder = tmp_path_factory.mktemp("schemas")
    dumps = {
        "0.3": wiki_dump([(1, "AccessibleComputing", "#REDIRECT [[Computer accessibility]]", 0, "-"), *OLD_ARTICLES,
                          (12, "Category:Accessibility", "Pages about accessibility.", 14),
                          (13, "Template:Access", "A box about access.", 10)],
                         base="http://en.wikipedia.org/wiki/Main_Page", schema="0.3"),
        "0.9": wiki_dump([(1, "AccessibleComputing", "#REDIRECT [[Computer accessibility]]", 0,
                           "Computer accessibility"), *OLD_ARTICLES], schema="0.9"),
        "0.11 local": wiki_dump([(2566, "Αθήνα", "Η '''Αθήνα''' είναι η πρωτεύουσα της Ελλάδας. " * 6),
                                 (2567, "Πρότυπο:Αποσαφήνιση", "__DISAMBIG__", 10)], dbname="elwikivoyage", lang="el",
                                base="http://localhost/elwv/index.php/Κύρια_Σελίδα", template_ns="Πρότυπο"),
    }
    paths = {}
    for schema, xml in dumps.items():
        paths[schema] = folder / f"{schema.replace(' ', '-')}.xml.bz2"
        paths[schema].write_bytes(bz2.compress(xml.encode()))
    return paths


# ----------------------------------------------------------------------------------------------
# Real samples


def test_article_counts_match_sources(extracted):
    if (SHARED_DUMPS / "SOURCES.md").is_file():
        counts = {SHARED_DUMPS / name: c for name, c in sources().items()}
        assert len(counts) >= 15, "SOURCES.md's table was not parsed"
    else:  # a clean clone: gensim's copies, counted here
        counts = {dump_sample(name): counted(dump_sample(name)) for name in GENSIM}
    for path, (pages, ns0, redirects) in counts.items():
        name = path.relative_to(SHARED_DUMPS).as_posix() if path.is_relative_to(SHARED_DUMPS) else path.name
        m, t, d = extracted(path)
        redirects += TEXT_REDIRECTS.get(name, 0)
        assert m["complete"] and m["error"] is None, name
        assert m["pages_seen"] == pages, name
        assert m["non_article_namespace"] == pages - ns0, name
        assert m["redirects"] == redirects, name
        assert m["articles_written"] + sum(m["filtered"].values()) == ns0 - redirects, name
        assert t.num_rows == m["articles_written"] > 0, name
        assert m["characters_written"] == sum(len(s) for s in t.column("text").to_pylist()), name
        assert t.schema.names == ["id", "revid", "title", "url", "text"]
        assert str(t.schema.field("id").type) == str(t.schema.field("revid").type) == "int64"
        # every page is either written or listed as dropped, with the reason the manifest counts
        assert t.num_rows + d.num_rows == pages, name
        reasons = d.column("reason").to_pylist()
        assert {r: reasons.count(r) for r in partwriter.DROP_REASONS} == dropped_counts(m), name


def test_split_parts_together_equal_the_whole_file(extracted, split, tmp_path):
    parts = sorted(split, reverse=True)  # argument order must not matter
    assert len(parts) == 6
    manifests = extract([str(p) for p in parts], str(tmp_path), processes=2, progress=False)
    starts = [int(re.search(r"-p(\d+)p", m["parquet"]).group(1)) for m in manifests]
    assert starts == sorted(starts), "parts are returned (and deduplicated) in page-range order"
    whole_m, whole, whole_dropped = extracted(dump_sample(ENWIKI))
    together = pa.concat_tables([table(tmp_path, m) for m in manifests])
    assert together.equals(whole)
    assert sum(m["pages_seen"] for m in manifests) == whole_m["pages_seen"]
    # the same pages dropped for the same reasons (where a template was learned differs in "detail")
    columns = ["id", "title", "ns", "reason", "source_chars"]
    together = pa.concat_tables([dropped(tmp_path, m).select(columns) for m in manifests])
    assert together.equals(whole_dropped.select(columns))


def test_multistream_in_parallel_equals_its_single_stream_twin(extracted, multi, tmp_path, monkeypatch):
    multi_file, index, single = multi
    monkeypatch.setattr(tasks, "CHUNK_COMPRESSED_BYTES", 1)  # one task per bz2 stream
    part = tasks.plan([str(multi_file)], tmp_path)[0]
    assert part.index == index
    assert len(list(tasks.multistream_tasks(part, {}))) == 4  # 4 page streams; header and footer around
    # `raw/*.bz2` matches the index too: it is recognised and not taken for a dump
    [m] = extract([str(multi_file), str(index)], str(tmp_path), processes=2, progress=False)
    assert m["multistream_index"] == str(index)
    assert table(tmp_path, m).equals(extracted(single)[1])
    assert dropped(tmp_path, m).equals(extracted(single)[2])
    assert m["source_sha1"] == hash_file(multi_file).hexdigest()  # hashed on the side while workers read ranges
    [again] = extract([str(multi_file)], str(tmp_path), processes=2, progress=False)
    assert again["skipped"]
    with pytest.raises(UserError, match="only multistream index"):
        extract([str(index)], str(tmp_path / "other"), progress=False)


def test_processes_1_and_2_give_identical_output(extracted, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "CHUNK_XML_BYTES", 64 << 10)  # ~90 chunks over two workers
    [m] = extract([str(dump_sample(ENWIKI))], str(tmp_path), processes=2, progress=False)
    m1, t1, d1 = extracted(dump_sample(ENWIKI))
    assert table(tmp_path, m).equals(t1) and dropped(tmp_path, m).equals(d1)
    assert without_timing(m) | {"source": None} == without_timing(m1) | {"source": None}


@pytest.mark.parametrize("name, schema", [("0.3", "0.3"), ("0.9", "0.9"), (ENWIKI, "0.10"), ("0.11 local", "0.11"),
                                          (BGWIKI, "0.10 UTF-16"), (TABLES, "0.10, no <siteinfo>")])
def test_schema_versions_encodings_and_urls(extracted, schemas, name, schema):
    m, t, d = extracted(schemas[name] if name in schemas else dump_sample(name))
    rows = t.to_pylist()
    assert rows and all(r["text"].strip() and r["title"] and r["id"] > 0 and r["revid"] > 0 for r in rows), schema
    assert not any("<page>" in r["text"] or "\x00" in r["text"] for r in rows)
    urls = {r["title"]: r["url"] for r in rows}
    if name == ENWIKI:
        assert urls["Anarchism"] == "https://en.wikipedia.org/wiki/Anarchism"
        assert urls["Albedo"] == "https://en.wikipedia.org/wiki/Albedo"
    if name == "0.3":  # 2009 dump: http:// base; no <ns>, so namespaces come from titles
        assert all(u.startswith("https://en.wikipedia.org/wiki/") for u in urls.values())
        assert m["redirects"] == 1 and m["non_article_namespace"] == 2 and m["articles_written"] == 2
        assert [(r["id"], r["ns"], r["reason"], r["detail"]) for r in d.to_pylist()] == \
            [(1, 0, "redirect", "Computer accessibility"), (12, 14, "namespace", ""), (13, 10, "namespace", "")]
    if name == BGWIKI:
        assert re.search("[а-яА-Я]{20}", rows[0]["text"].replace(" ", ""))
    if name == "0.11 local":  # a local MediaWiki: its own article path, titles percent-encoded as UTF-8
        url = urls["Αθήνα"]
        assert url == "http://localhost/elwv/index.php/%CE%91%CE%B8%CE%AE%CE%BD%CE%B1"
    if name == TABLES:  # no <siteinfo>, so no <base>
        assert {r["url"] for r in rows} == {f"?curid={r['id']}" for r in rows}


@pytest.mark.parametrize("encoding, declared", [("windows-1252", True), ("iso-8859-1", True), ("utf-16-be", False),
                                                ("utf-8-sig", False)])
def test_encodings_named_by_declaration_or_bom(tmp_path, encoding, declared):
    text = "Caf\u00e9 " + PROSE
    if encoding == "windows-1252":
        text = "Caf\u00e9 cr\u00e8me, na\u00efve fa\u00e7ade \u2014 " + PROSE
    if encoding == "iso-8859-1":
        text = text.replace("\u2014", "-")
    xml = wiki_dump([(1, "Caf\u00e9", text)])
    if declared:
        xml = f'<?xml version="1.0" encoding="{encoding}"?>\n' + xml
    src = tmp_path / f"{encoding}.xml"
    src.write_bytes(xml.encode(encoding))
    [m] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    [row] = table(tmp_path / "out", m).to_pylist()
    assert row["title"] == "Caf\u00e9" and row["text"].startswith("Caf\u00e9")
    assert row["url"] == "https://en.wikipedia.org/wiki/Caf%C3%A9"


def test_revid_is_the_revision_id_not_the_contributor_id(extracted):
    _, t, _ = extracted(dump_sample(TABLES))
    first = t.slice(0, 1).to_pylist()[0]
    assert (first["id"], first["revid"]) == (217916, 807605030)  # contributor id there is 13157623


# ----------------------------------------------------------------------------------------------
# Re-runs and interruptions


def test_rerun_skips_a_finished_part(tmp_path):
    src = tmp_path / "raw" / Path(ENWIKI).name
    src.parent.mkdir()
    shutil.copy(dump_sample(ENWIKI), src)
    out = tmp_path / "text"
    [m] = extract([str(src)], str(out), processes=1, progress=False)
    parquet = out / m["parquet"]
    stamp = parquet.stat().st_mtime_ns
    [again] = extract([str(src)], str(out), processes=1, progress=False)
    assert again["skipped"] and without_timing(again) == without_timing(m)
    os.utime(src, ns=(stamp + 10**9, stamp + 10**9))  # touched, same bytes: the SHA-1 says so
    [again] = extract([str(src)], str(out), processes=1, progress=False)
    assert again["skipped"] and parquet.stat().st_mtime_ns == stamp
    [redone] = extract([str(src)], str(out), processes=1, progress=False, min_chars=5000)  # other options
    assert not redone.get("skipped") and redone["filtered"]["too_short"] > 0
    assert redone["source_sha1"] == m["source_sha1"] == hash_file(src).hexdigest()


KILLER = """
import os, signal, sys
import growgpt.wiki.extract as ex
import growgpt.wiki.partwriter as partwriter

kill_in, kill_at = sys.argv[1], sys.argv[2]
add, write_json = partwriter.PartWriter.add, partwriter.write_json

def killing_add(self, result):
    add(self, result)
    if kill_at == "rows" and self.part.stem.endswith(kill_in):
        self.flush()  # some rows in the temporary Parquet file, then: SIGKILL
        os.kill(os.getpid(), signal.SIGKILL)

def killing_write_json(path, obj):
    if kill_at == "manifest" and path.name.startswith("pages-articles-" + kill_in):
        os.kill(os.getpid(), signal.SIGKILL)  # the Parquet file is in place, its manifest is not
    write_json(path, obj)

partwriter.PartWriter.add, partwriter.write_json = killing_add, killing_write_json
if __name__ == "__main__":
    ex.extract(sys.argv[4:], sys.argv[3], processes=1, progress=False)
"""


def test_interrupted_extraction_rerun_gives_identical_output(split, tmp_path):
    parts = sorted(str(p) for p in split)
    stems = [part_stem(p.name) for p in split]  # in page order
    ref, out = tmp_path / "ref", tmp_path / "out"
    reference = extract(parts, str(ref), processes=1, progress=False)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    for kill_in, kill_at in ((stems[2], "rows"), (stems[3], "manifest")):
        kill_in = kill_in.removeprefix("pages-articles-")
        r = subprocess.run([sys.executable, str(script), kill_in, kill_at, str(out), *parts], capture_output=True)
        assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-2000:]
        if kill_at == "rows":
            assert list(out.glob(f"{stems[2]}.parquet.tmp-*"))
            assert not (out / f"{stems[2]}.manifest.json").exists()
            assert (out / f"{stems[1]}.manifest.json").exists()
        else:
            assert (out / f"{stems[3]}.parquet").exists()
            assert not (out / f"{stems[3]}.manifest.json").exists()
    manifests = extract(parts, str(out), processes=2, progress=False)
    assert [bool(m.get("skipped")) for m in manifests] == [True, True, True, False, False, False]
    assert not list(out.glob("*.tmp-*"))
    ids = []
    for m, r in zip(manifests, reference):
        assert table(out, m).equals(table(ref, r)), m["parquet"]
        assert without_timing(m) | {"source": None} == without_timing(r) | {"source": None}
        ids += table(out, m).column("id").to_pylist()
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------------------------
# Duplicates


OTHER = "A completely different article about [[Cheese]], which is made from milk in many countries. " * 3


def test_duplicates_within_and_across_parts_earlier_part_wins(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    a = raw / "testwiki-pages-articles.xml-p1p10"
    b = raw / "testwiki-pages-articles.xml-p11p20"
    a.write_text(wiki_dump([(1, "Fox", PROSE), (2, "Fox again", PROSE.replace(" ", "  \n ")), (3, "Cheese", OTHER)]))
    b.write_text(wiki_dump([(11, "Fox copy", PROSE), (12, "Only here", OTHER + " And more.")]))
    for procs, order in ((1, [a, b]), (2, [b, a])):
        out = tmp_path / f"out{procs}"
        ma, mb = extract([str(p) for p in order], str(out), processes=procs, progress=False)
        assert (ma["articles_written"], ma["filtered"]["duplicate"]) == (2, 1)
        assert (mb["articles_written"], mb["filtered"]["duplicate"]) == (1, 1)
        assert table(out, ma).column("id").to_pylist() == [1, 3]
        assert table(out, mb).column("id").to_pylist() == [12]
    # a finished part keeps its documents: a part extracted later into the same folder loses them
    out = tmp_path / "staged"
    extract([str(b)], str(out), processes=1, progress=False)
    [ma] = extract([str(a)], str(out), processes=1, progress=False)
    assert table(out, ma).column("id").to_pylist() == [3] and ma["filtered"]["duplicate"] == 2


def test_duplicate_key_ignores_whitespace_and_matches_the_stored_bytes():
    text = "Caf\u00e9 \u2014 \u4e2d\u6587 text.\n\nSecond  paragraph."
    spaced = " Caf\u00e9\t\u2014\u4e2d\u6587 text. Second paragraph."
    assert text_hash(text) == text_hash(text.encode()) == text_hash(spaced)
    assert text_hash(text) != text_hash(text.replace("Second", "Third"))
    # a worker's texts arrive as one UTF-8 buffer + int32 offsets (an Arrow string column's layout)
    pages = [(1, "A", PROSE), (2, "B", "Tiny."), (3, "\u00c9", OTHER + " \u4e2d")]
    task = Task("x.xml", b"", body=wiki_dump(pages).encode())
    result = tasks.run_task(task)
    texts = pa.StringArray.from_buffers(len(result.docs), pa.py_buffer(result.offsets), pa.py_buffer(result.texts))
    texts.validate(full=True)
    assert [d[0] for d in result.docs] == [1, 3] and texts.to_pylist()[1].endswith("\u4e2d")
    assert [d[4] for d in result.docs] == [len(t) for t in texts.to_pylist()]
    assert [d[5] for d in result.docs] == [text_hash(t) for t in texts.to_pylist()]


def test_filters_are_counted(tmp_path):
    src = tmp_path / "f.xml"
    src.write_text(wiki_dump([(1, "Fine", PROSE), (2, "Stub", "Tiny."),
                         (3, "Mercury (disambiguation)", "'''Mercury''' may be:\n* [[Mercury (planet)]]"),
                         (4, "Only a list", "* [[a]]\n* [[b]]\n[[Category:Lists]]"), (5, "Gone", "#REDIRECT [[Fine]]"),
                         (6, "Weitergeleitet", "#WEITERLEITUNG [[Fine]]"), (7, "Colon", " #redirect: [[Fine]]"),
                         (8, "Numbered", "# Tam is the first item of a numbered list.\n" + OTHER)]))
    [m] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    assert m["articles_written"] == 2 and m["redirects"] == 3
    assert m["filtered"]["disambiguation"] == 1
    assert m["filtered"]["too_short"] + m["filtered"]["empty"] == 2  # the stub, and the list (empty or short)


# ----------------------------------------------------------------------------------------------
# What is dropped, and why


AUDIT_PAGES = [
    (1, "Fox", PROSE),
    (2, "Stub", "Tiny."),
    (3, "Mercury (disambiguation)", "'''Mercury''' may be:\n* [[Mercury (planet)]]\n{{disambiguation}}"),
    (4, "Only templates", "{{Navbox|a|b}}\n[[Category:Lists]]"),
    (5, "Gone", "#REDIRECT [[Fox]]", 0, "Fox"),
    (6, "Category:Foxes", "Foxes.", 14),
    (7, "Fox copy", PROSE),
    (8, "Table of foxes", '{| class="wikitable"\n! Fox !! Weight\n|-\n| Red fox || 5 kg\n|}\n' * 20),
    (9, "Cheese", OTHER),
]


def test_every_dropped_page_is_listed_with_its_reason(tmp_path):
    src = tmp_path / "enwiki-pages-articles.xml"
    src.write_text(wiki_dump(AUDIT_PAGES), encoding="utf-8")
    [m] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    assert table(tmp_path / "out", m).column("id").to_pylist() == [1, 9]
    rows = dropped(tmp_path / "out", m)
    assert rows.schema.names == list(partwriter.DROPPED_COLUMNS)
    expected = {  # id: (ns, reason, detail); in file order
        2: (0, "too_short", "5 characters"),
        3: (0, "disambiguation", "template {{Disambiguation}}"),
        4: (0, "empty", "nothing left after cleaning"),
        5: (0, "redirect", "Fox"),
        6: (14, "namespace", ""),
        7: (0, "duplicate", "same text as an article written before"),
        8: (0, "empty", "only tables (--keep-tables keeps their cells)"),
    }
    texts = {pid: text for pid, _, text, *_ in AUDIT_PAGES}
    titles = {pid: title for pid, title, *_ in AUDIT_PAGES}
    assert [(r["id"], r["ns"], r["reason"], r["detail"]) for r in rows.to_pylist()] == \
        [(pid, *what) for pid, what in expected.items()]
    assert rows.column("title").to_pylist() == [titles[pid] for pid in expected]
    assert rows.column("source_chars").to_pylist() == [len(texts[pid]) for pid in expected]
    reasons = rows.column("reason").to_pylist()
    assert {r: reasons.count(r) for r in partwriter.DROP_REASONS} == dropped_counts(m)
    assert m["largest_dropped"]["empty"][0] == {"id": 8, "title": "Table of foxes", "source_chars": len(texts[8]),
                                                "detail": "only tables (--keep-tables keeps their cells)"}
    # the same with two processes; and a re-run skips the part but keeps its list
    [m2] = extract([str(src)], str(tmp_path / "out2"), processes=2, progress=False)
    assert dropped(tmp_path / "out2", m2).equals(rows)
    [again] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    assert again["skipped"] and dropped(tmp_path / "out", again).equals(rows)
    # a part whose list is missing is not finished
    (tmp_path / "out" / m["dropped"]).unlink()
    [redone] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    assert not redone.get("skipped") and dropped(tmp_path / "out", redone).equals(rows)


def test_big_pages_dropped_as_disambiguation_or_empty_are_warned_about(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(partwriter, "BIG_DROP_WARNINGS", 2)
    big_dab = ("'''Mercury''' may refer to:\n" + "".join(f"* [[Mercury {i}]], a thing\n" for i in range(1000))
               + "{{Dab}}")
    tables = [(10 + i, f"Table {i}", "{|\n| cell || cell\n|}\n" * 2000) for i in range(3)]
    pages = [(1, "Mercury", big_dab), (2, "Fox", PROSE), *tables]
    src = tmp_path / "enwiki-pages-articles.xml"
    src.write_text(wiki_dump(pages), encoding="utf-8")
    [m] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    err = capsys.readouterr().err
    assert len(big_dab) > partwriter.BIG_DROP_CHARS
    assert (f"'Mercury' (page 1, {len(big_dab):,} characters of wikitext) was dropped as disambiguation: "
            f"template {{{{Dab}}}}") in err
    assert "'Table 0'" in err and "'Table 1'" in err and "'Table 2'" not in err  # two a reason, then a count
    assert "1 more pages of over 20,000 characters were dropped as empty" in err
    assert len(m["warnings"]) == 4 and m["articles_written"] == 1
    summary = format_summary([m])
    assert "largest dropped as disambiguation: 'Mercury'" in summary and "largest dropped as empty: 'Table" in summary


def test_dropped_command_lists_the_largest_first(tmp_path, capsys):
    from growgpt.cli import main

    src = tmp_path / "enwiki-pages-articles.xml"
    src.write_text(wiki_dump(AUDIT_PAGES), encoding="utf-8")
    main(["extract", str(src), "--out", str(tmp_path / "out"), "--processes", "1", "--quiet"])
    out = capsys.readouterr().out
    assert "1 disambiguation, 2 empty, 1 too short, 1 duplicates" in out and "growgpt dropped" in out
    main(["dropped", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    sizes = [int(line.split()[0].replace(",", "")) for line in lines[1:-1]]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 7 and lines[-1].startswith("7 of 7")
    main(["dropped", str(tmp_path / "out" / "enwiki-pages-articles.parquet"), "--reason", "empty", "--limit", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "Table of foxes" in lines[1] and lines[-1].startswith("1 of 2")
    with pytest.raises(SystemExit) as e:
        main(["dropped", str(tmp_path / "nowhere.dropped.parquet")])
    assert e.value.code == 2 and "dropped-pages file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["dropped", str(tmp_path / "out"), "--limit", "-5"])  # a slice from the end, before
    assert e.value.code == 2 and "--limit must be >= 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# A page that takes too long is cut off; the run goes on


@pytest.mark.parametrize("processes", [1, 2])
def test_a_page_over_its_time_budget_is_dropped_and_the_run_goes_on(tmp_path, processes):
    # ~2 MB of links (the largest page MediaWiki allows): ~0.2 s of cleaning here, 20x the budget
    slow = "[[Fox|a fox]] and [[Dog]]. " * 80_000
    pages = [(1, "Fox", PROSE), (2, "Slow", slow), (3, "Cheese", OTHER)]
    src = tmp_path / "enwiki-pages-articles.xml"
    src.write_text(wiki_dump(pages), encoding="utf-8")
    before = signal.getsignal(signal.SIGPROF)
    [m] = extract([str(src)], str(tmp_path / "out"), processes=processes, progress=False, page_timeout=0.01)
    assert table(tmp_path / "out", m).column("id").to_pylist() == [1, 3]
    assert m["filtered"]["timeout"] == 1 and m["options"]["page_timeout"] == 0.01
    [row] = dropped(tmp_path / "out", m).to_pylist()
    assert (row["id"], row["title"], row["reason"]) == (2, "Slow", "timeout") and "0.01 CPU seconds" in row["detail"]
    assert signal.getsignal(signal.SIGPROF) is before  # this process's handler is given back
    [m0] = extract([str(src)], str(tmp_path / "none"), processes=processes, progress=False, page_timeout=0)
    assert m0["articles_written"] == 3  # 0: no budget


def test_the_budget_interrupts_a_runaway_regex(tmp_path, monkeypatch):
    article = PageParser.article

    def catastrophic(self, text, title):  # what an unforeseen super-linear pattern would do
        if title == "Runaway":
            re.match(r"(a+)+b", "a" * 64)  # 2^64 steps: never returns on its own
        return article(self, text, title)

    monkeypatch.setattr(PageParser, "article", catastrophic)
    src = tmp_path / "enwiki-pages-articles.xml"
    src.write_text(wiki_dump([(1, "Runaway", PROSE), (2, "Cheese", OTHER)]), encoding="utf-8")
    [m] = extract([str(src)], str(tmp_path / "out"), processes=1, progress=False, page_timeout=0.2)
    assert m["filtered"]["timeout"] == 1 and table(tmp_path / "out", m).column("id").to_pylist() == [2]
    for absurd in (float("nan"), -1.0, float("inf"), 1e12):  # 1e12 s overflowed setitimer in every worker
        with pytest.raises(UserError, match="--page-timeout"):
            extract([str(src)], str(tmp_path / "x"), page_timeout=absurd)


# ----------------------------------------------------------------------------------------------
# Damaged and hostile input


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message
    return message


def test_file_ending_after_a_page_without_closing_tag_keeps_its_pages(tmp_path, capsys):
    xml = bz2.decompress(dump_sample(TABLES).read_bytes())
    cut = xml[: xml.rindex(b"</page>") + len(b"</page>")]
    for name, data in (("cut.xml", cut), ("cut.xml.bz2", bz2.compress(cut))):
        (tmp_path / name).write_bytes(data)
        [m] = extract([str(tmp_path / name)], str(tmp_path / name.replace(".", "_")), processes=1, progress=False)
        assert m["complete"] and m["articles_written"] == 5
        assert m["warnings"] and "without </mediawiki>" in m["warnings"][0]
        assert "without </mediawiki>" in capsys.readouterr().err


def test_file_ending_inside_a_page_is_an_error_and_keeps_the_pages_before(tmp_path):
    xml = bz2.decompress(dump_sample(TABLES).read_bytes())
    src = tmp_path / "cut.xml"
    src.write_bytes(xml[: xml.rindex(b"<page>") + 200])
    with pytest.raises(UserError) as e:
        extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
    assert str(src) in one_line(e) and "truncated" in str(e.value)
    m = json.loads((tmp_path / "out" / "cut.manifest.json").read_text())
    assert not m["complete"] and m["articles_written"] == 4 and "truncated" in m["error"]


@pytest.mark.parametrize("processes", [1, 2])
def test_corrupt_bz2_names_file_and_offset_and_keeps_earlier_pages(extracted, tmp_path, processes):
    data = bytearray(dump_sample(ENWIKI).read_bytes())
    damage = 850_000
    data[damage:damage + 64] = bytes(64)
    src = tmp_path / "corrupt.xml.bz2"
    src.write_bytes(data)
    with pytest.raises(UserError) as e:
        extract([str(src)], str(tmp_path / "out"), processes=processes, progress=False)
    message = one_line(e)
    assert str(src) in message and "corrupt bz2" in message
    offset = int(re.search(r"compressed byte ([\d,]+)", message).group(1).replace(",", ""))
    assert damage - (1 << 20) < offset <= damage  # the start of the damaged bzip2 block (< 1 MB)
    m = json.loads((tmp_path / "out" / "corrupt.manifest.json").read_text())
    assert not m["complete"] and "corrupt bz2" in m["error"] and m["articles_written"] > 0
    assert f"{m['articles_written']} articles before it" in message
    kept = pq.read_table(tmp_path / "out" / "corrupt.parquet")
    assert kept.equals(extracted(dump_sample(ENWIKI))[1].slice(0, kept.num_rows))
    with pytest.raises(UserError):  # not taken for finished on a re-run
        extract([str(src)], str(tmp_path / "out"), processes=processes, progress=False)


def test_corrupt_stream_in_multistream_dump(extracted, multi, tmp_path, monkeypatch):
    multi_file, multi_index, single = multi
    monkeypatch.setattr(tasks, "CHUNK_COMPRESSED_BYTES", 1)
    src = tmp_path / multi_file.name
    shutil.copy(multi_index, tmp_path / multi_index.name)
    third = index_offsets(multi_index)[2]
    data = bytearray(multi_file.read_bytes())
    assert len(data) < bz2blocks.READ_BYTES and index_offsets(multi_index)[3] > third + 1032
    data[third + 1000:third + 1032] = bytes(32)  # inside the third page stream
    src.write_bytes(data)
    with pytest.raises(UserError) as e:
        extract([str(src)], str(tmp_path / "out"), processes=2, progress=False)
    assert str(src) in one_line(e) and f"compressed byte {third:,}" in str(e.value)
    kept = pq.read_table(tmp_path / "out" / "pages-articles-p2566p2582.multistream.parquet")
    assert kept.num_rows > 0 and kept.equals(extracted(single)[1].slice(0, kept.num_rows))
    index = [line.split(":", 2) for line in bz2.decompress(multi_index.read_bytes()).decode().splitlines()]
    before = {int(pid) for off, pid, _ in index if int(off) < third}  # the pages of the first two streams
    whole = extracted(single)[1].column("id").to_pylist()
    assert kept.column("id").to_pylist() == [i for i in whole if i in before]


def rewritten_index(multi: tuple[Path, Path, Path], tmp_path: Path, change) -> Path:
    """The multistream sample (intact) beside its index with `change(offset) -> offset` applied."""
    multi_file, multi_index, _ = multi
    src = tmp_path / multi_file.name
    shutil.copy(multi_file, src)
    lines = bz2.decompress(multi_index.read_bytes()).decode().splitlines()
    lines = [f"{change(int(off))}:{rest}" for off, rest in (line.split(":", 1) for line in lines)]
    (tmp_path / multi_index.name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return src


@pytest.mark.parametrize("shift", [3, -3, 1])
def test_an_index_whose_first_offset_is_off_falls_back_to_reading_in_order(extracted, multi, tmp_path, capsys, shift):
    first = index_offsets(multi[1])[0]
    src = rewritten_index(multi, tmp_path, lambda off: off + shift if off == first else off)
    [m] = extract([str(src)], str(tmp_path / "out"), processes=2, progress=False)
    err = capsys.readouterr().err
    assert f"does not fit {src}" in err and "reading the file sequentially" in err
    assert m["complete"] and table(tmp_path / "out", m).equals(extracted(multi[2])[1])
    assert dropped(tmp_path / "out", m).equals(extracted(multi[2])[2])


def test_an_index_wrong_in_the_middle_falls_back_to_reading_in_order(extracted, multi, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tasks, "CHUNK_COMPRESSED_BYTES", 1)  # a task per stream: every offset is a cut
    third = index_offsets(multi[1])[2]
    src = rewritten_index(multi, tmp_path, lambda off: third + 5 if off == third else off)  # the third page stream
    [m] = extract([str(src)], str(tmp_path / "out"), processes=2, progress=False)
    err = capsys.readouterr().err
    assert f"no bz2 stream starts at byte {third + 5:,}" in err and "reading the file sequentially" in err
    assert m["complete"] and table(tmp_path / "out", m).equals(extracted(multi[2])[1])


def test_non_xml_and_unsupported_inputs(tmp_path):
    cases = {
        "notes.xml": b"just some text, not XML at all\n",
        "text.xml.bz2": bz2.compress(b"hello world " * 1000),
        "dump.xml.gz": b"\x1f\x8b\x08\x00" + bytes(100),
        "empty.xml": b"",
        "feed.xml": b'<?xml version="1.0"?><rss><channel/></rss>',
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError) as e:
            extract([str(tmp_path / name)], str(tmp_path / "out"), processes=1, progress=False)
        assert str(tmp_path / name) in one_line(e), name
        assert not (tmp_path / "out" / f"{part_stem(name)}.parquet").exists(), name


def test_missing_file(tmp_path):
    with pytest.raises(UserError) as e:
        extract([str(tmp_path / "nope.xml.bz2")], str(tmp_path / "out"), progress=False)
    assert "nope.xml.bz2" in one_line(e) and "not found" in str(e.value)


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE mediawiki [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE mediawiki [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
"""


def test_entities_are_never_expanded(tmp_path):
    body = wiki_dump([(1, "Lol", PROSE + " &lol4; &xxe; " + PROSE)])
    body = body.replace("&amp;lol4;", "&lol4;").replace("&amp;xxe;", "&xxe;")
    cases = {"laughs.xml": LAUGHS + body, "xxe.xml": XXE + body, "undeclared.xml": body,
             "xxe.xml.bz2": bz2.compress((XXE + body).encode())}
    for name, text in cases.items():
        src = tmp_path / name
        src.write_bytes(text.encode() if isinstance(text, str) else text)
        with pytest.raises(UserError) as e:
            extract([str(src)], str(tmp_path / "out"), processes=1, progress=False)
        message = one_line(e)
        assert str(src) in message
        expected = "undefined entity" if name == "undeclared.xml" else "document type declaration"
        assert expected in message, message
    for f in (tmp_path / "out").glob("*"):
        assert b"root:" not in f.read_bytes() and b"lollol" not in f.read_bytes()


@pytest.mark.parametrize("fail_at", ["rows", "manifest"])
def test_disk_full_removes_partial_output_and_keeps_finished_parts(split, tmp_path, monkeypatch, fail_at):
    parts = sorted(str(p) for p in split)
    stems = [part_stem(p.name) for p in split]  # in page order
    out = tmp_path / "out"
    writes = {"n": 0}

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # parts are small: each is one row group, written when it finishes; the third part's write fails
    if fail_at == "rows":
        write_table = pq.ParquetWriter.write_table

        def failing_write_table(self, table, *args, **kwargs):
            writes["n"] += "text" in table.schema.names  # the articles, not the dropped-pages file
            return full() if writes["n"] == 3 else write_table(self, table, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetWriter, "write_table", failing_write_table)
    else:  # the Parquet file is already renamed into place when its manifest cannot be written
        write_json = partwriter.write_json

        def failing_write_json(path, obj):
            writes["n"] += 1
            return full() if writes["n"] == 3 else write_json(path, obj)

        monkeypatch.setattr(partwriter, "write_json", failing_write_json)
    with pytest.raises(UserError) as e:
        extract(parts, str(out), processes=2 if fail_at == "rows" else 1, progress=False)
    message = one_line(e)
    assert "disk full" in message and f"{stems[2]}.parquet" in message
    assert str(split[2]) in message  # the input file too
    finished = stems[:2]
    kinds = ("manifest.json", "parquet", "dropped.parquet")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{x}" for s in finished for x in kinds)
    monkeypatch.undo()
    manifests = extract(parts, str(out), processes=1, progress=False)
    assert [bool(m.get("skipped")) for m in manifests] == [True, True, False, False, False, False]
    assert all(m["complete"] for m in manifests)


def test_processes_default_to_the_cores_available(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert default_processes() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert default_processes() == (os.cpu_count() or 1)


def test_format_summary(extracted, schemas):
    manifests = [extracted(path)[0] for path in (schemas["0.9"], dump_sample(TABLES))]
    text = format_summary(manifests)
    lines = text.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("total: ")  # a line of kept, a line of dropped per part
    assert f"{manifests[0]['articles_written']:,} articles" in lines[0] and "1 redirects" in lines[1]
    assert "INCOMPLETE" in format_summary([dict(manifests[0], complete=False)])
    assert "skipped" in format_summary([dict(manifests[0], skipped=True)])


# ----------------------------------------------------------------------------------------------
# Single-stream bz2 read in parallel by bzip2 blocks: the same output as the sequential reader,
# and on anything unusual the same errors, because the part is then read again sequentially


def block_dump(seed: int = 0, pages: int = 260, long_page: int = 120) -> bytes:
    """~1.3 MB of XML: varied pages of random words, one of them ~300 KB (it spans several
    100 kB bzip2 blocks), some redirects and duplicates; compressed at level 1, ~14 blocks."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    out = []
    for pid in range(1, pages + 1):
        n = 60_000 if pid == long_page else rng.randint(20, 1200)
        text = " ".join(rng.choice(words) if rng.random() > 0.05 else f"[[{rng.choice(words)}]]" for _ in range(n))
        text = "'''Bold''' " + text
        if pid % 37 == 0:
            text = "#REDIRECT [[Somewhere]]"
        elif pid % 41 == 0:
            text = out[-1][2]  # a duplicate of the page before
        out.append((pid, f"Page {pid} {rng.choice(words)}", text))
    return wiki_dump(out).encode()


def blockwise(monkeypatch, task_bytes: int = 1) -> dict:
    """Read every bz2 file by blocks (not only those >= 1 MB), tasks of blocks until `task_bytes`
    compressed bytes (1: a block a task); counts the tasks handed out."""
    monkeypatch.setattr(tasks, "BLOCKS_MIN_BYTES", 0)
    monkeypatch.setattr(tasks, "CHUNK_COMPRESSED_BYTES", task_bytes)
    seen = {"tasks": 0, "parts": 0}
    block_tasks = tasks.block_tasks

    def counting(part, opts, sha1):
        got = block_tasks(part, opts, sha1)
        if got is None:
            return None
        seen["parts"] += 1

        def counted():
            for t in got[1]:
                seen["tasks"] += 1
                yield t
        return got[0], counted()

    monkeypatch.setattr(tasks, "block_tasks", counting)
    return seen


def both_ways(src: Path, tmp_path: Path, monkeypatch, task_bytes: int = 1):
    """(manifest, table) or the UserError's message, sequentially and by blocks, and the counts."""
    got, dropped_pages = [], []
    for procs in (1, 2):
        out = tmp_path / f"out-{src.name}-{procs}"
        seen = blockwise(monkeypatch, task_bytes) if procs == 2 else None
        try:
            [m] = extract([str(src)], str(out), processes=procs, progress=False)
            got.append((without_timing(m), table(out, m)))
        except UserError as e:
            manifest = json.loads(next(out.glob("*.manifest.json")).read_text())
            got.append((str(e).replace(str(out), "OUT"), without_timing(manifest), pq.read_table(articles_file(out))))
        dropped_pages.append(pq.read_table(next(out.glob("*.dropped.parquet"))))
        monkeypatch.undo()
    assert dropped_pages[0].equals(dropped_pages[1])  # the same pages dropped, in the same order
    return got[0], got[1], seen


@pytest.mark.parametrize("task_bytes", [1, 150_000])
def test_blocks_in_parallel_equal_the_sequential_reader(tmp_path, monkeypatch, task_bytes):
    xml = block_dump()
    src = tmp_path / "big.xml.bz2"
    src.write_bytes(bz2.compress(xml, compresslevel=1))
    (m1, t1), (m2, t2), seen = both_ways(src, tmp_path, monkeypatch, task_bytes)
    n_blocks = len([k for _, k in bz2blocks.find_marks(src.read_bytes(), 0, src.stat().st_size) if k == "block"])
    assert n_blocks >= 12 and seen["parts"] == 1
    assert seen["tasks"] == n_blocks if task_bytes == 1 else 3 < seen["tasks"] < n_blocks / 2
    assert t2.equals(t1) and m2 == m1
    assert m1["source_sha1"] == hash_file(src).hexdigest() and m1["filtered"]["duplicate"] > 0 and m1["redirects"] > 0
    assert 60_000 < max(len(t) for t in t1.column("text").to_pylist())  # the long page went through whole


def test_blocks_of_several_streams_equal_the_sequential_reader(tmp_path, monkeypatch):
    xml = block_dump(seed=1)
    cuts = [0, 1000, 400_000, 400_001, 777_777, len(xml)]  # streams split anywhere, even inside a tag
    src = tmp_path / "streams.xml.bz2"
    src.write_bytes(b"".join(bz2.compress(xml[a:b], compresslevel=1) for a, b in zip(cuts, cuts[1:])))
    (m1, t1), (m2, t2), seen = both_ways(src, tmp_path, monkeypatch)
    assert seen["tasks"] > 12 and t2.equals(t1) and m2 == m1 and m1["articles_written"] > 200


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "not well-formed", "ends inside", "junk after",
                                    "cut after a page"])
def test_blocks_meeting_damage_give_the_sequential_readers_error_and_pages(tmp_path, monkeypatch, capsys, damage):
    xml = block_dump(seed=2)
    if damage == "cut after a page":
        xml = xml[: xml.rindex(b"</page>") + 7]
    elif damage == "ends inside":  # the bz2 stream is whole, the XML in it is not
        xml = xml[: xml.rindex(b"<page>") + 500]
    elif damage == "not well-formed":
        middle = xml.index(b"</title>", len(xml) // 2)
        xml = xml[:middle] + b"</titel>" + xml[middle + 8:]
    data = bytearray(bz2.compress(xml, compresslevel=1))
    if damage == "corrupt":
        data[len(data) // 2: len(data) // 2 + 40] = bytes(40)
    elif damage == "truncated":
        del data[len(data) * 2 // 3:]
    elif damage == "junk after":
        data += b"this is not bz2\n" * 10
    src = tmp_path / "damaged.xml.bz2"
    src.write_bytes(data)
    first, second, seen = both_ways(src, tmp_path, monkeypatch)
    assert seen["parts"] == 1  # it was read by blocks, then again sequentially
    if damage in ("corrupt", "truncated", "not well-formed", "ends inside"):
        message, manifest, kept = second
        assert (message, manifest) == first[:2] and kept.equals(first[2])
        assert str(src) in message and damage in message and not manifest["complete"] and kept.num_rows > 50
    else:
        assert second[0] == first[0] and second[1].equals(first[1]) and second[0]["complete"]
        warned = "after the last bz2 stream" if damage == "junk after" else "without </mediawiki>"
        assert capsys.readouterr().err.count(warned) == 2  # once per run


def test_a_false_block_boundary_is_caught_and_the_part_read_again(tmp_path, monkeypatch):
    """Random data holds the 48-bit block magic once in 2^48 bits: a task cut found inside a
    block. The worker that starts there finds no whole block, and the part is read again."""
    xml = block_dump(seed=3)
    src = tmp_path / "false.xml.bz2"
    src.write_bytes(bz2.compress(xml, compresslevel=1))
    [expected] = extract([str(src)], str(tmp_path / "seq"), processes=1, progress=False)
    expected_table = table(tmp_path / "seq", expected)
    find_marks = bz2blocks.find_marks
    cuts = []

    def with_a_false_mark(data, lo, hi, kinds=("block", "eos")):  # the third cut lands 900 bits early
        marks = find_marks(data, lo, hi, kinds)
        if kinds == ("block",) and marks:
            cuts.append(marks[0][0])
            if len(cuts) == 3 and marks[0][0] - 900 >= lo * 8:
                marks = [(marks[0][0] - 900, "block")]
        return marks

    seen = blockwise(monkeypatch, 50_000)
    monkeypatch.setattr(tasks, "find_marks", with_a_false_mark)  # where the block scan looks
    out = tmp_path / "blocks"
    [m] = extract([str(src)], str(out), processes=2, progress=False)
    monkeypatch.undo()
    assert seen["tasks"] > 3 and len(cuts) > 3
    assert table(out, m).equals(expected_table)
    assert without_timing(m) | {"source": None} == without_timing(expected) | {"source": None}
    # the first reading's documents were forgotten by the duplicate filter: none is a duplicate
    assert m["filtered"]["duplicate"] == expected["filtered"]["duplicate"]


def test_a_worker_given_a_false_boundary_asks_for_a_sequential_reading(tmp_path):
    data = bz2.compress(block_dump(seed=6, pages=60), compresslevel=1)
    src = tmp_path / "one.xml.bz2"
    src.write_bytes(data)
    blocks = [bit for bit, kind in bz2blocks.find_marks(data, 0, len(data)) if kind == "block"]
    assert len(blocks) >= 3
    whole = tasks.run_block_task(Task(str(src), b"", blocks=((blocks[1], blocks[2]),)))
    assert whole.retry is None and whole.xml_size > 90_000
    # starting inside a block, or not at a bit where one starts; ending before one is whole
    for start, end in ((blocks[1] + 900, blocks[2]), (blocks[1] + 7, blocks[2] + 5000), (blocks[1], blocks[1] + 8000)):
        assert tasks.run_block_task(Task(str(src), b"", blocks=((start, end),))).retry is not None


def test_blocks_that_end_the_input_come_out_whole():
    """CPython's bz2 stops asking libbz2 for output once the input is all consumed: a block that
    ends its input exactly would come out 32 kB at a time. Each defence holds on its own."""
    original = bytes(range(256)) * 2000
    data = bz2.compress(original, compresslevel=1)  # 6 blocks of up to 100 kB
    marks = bz2blocks.find_marks(data, 0, len(data))
    assert len(marks) == 7
    wrapped, bare = [], []
    for (a, _), (b, _) in zip(marks, marks[1:]):
        wrapped.append(bz2blocks.wrap_blocks(data, a, b))
        nbits = b - a  # the blocks alone, nothing after them
        bare.append(b"BZh9" + (bz2blocks.bits(data, a, b) << (-nbits % 8)).to_bytes((nbits + 7) // 8, "big"))
    assert b"".join(bz2.BZ2Decompressor().decompress(w) for w in wrapped) == original  # the magic's start
    assert b"".join(map(bz2blocks.decompress_blocks, bare)) == original  # asking for the rest
    assert b"".join(bz2.BZ2Decompressor().decompress(w) for w in bare) != original  # what they defend from


def test_block_marks_are_found_at_every_bit_alignment():
    import random

    rng = random.Random(5)
    data = bytearray(rng.randbytes(4000))
    planted = []
    for i, bit in enumerate(200 + 1250 * i + i % 8 for i in range(24)):  # every alignment, 3 times
        magic = bz2blocks.BLOCK_MAGIC if i % 3 else bz2blocks.EOS_MAGIC
        for k in range(48):
            byte, shift = divmod(bit + k, 8)
            if magic >> (47 - k) & 1:
                data[byte] |= 0x80 >> shift
            else:
                data[byte] &= ~(0x80 >> shift) & 0xFF
        planted.append((bit, "block" if i % 3 else "eos"))
    data = bytes(data)
    every_bit = range(len(data) * 8 - 47)
    brute = [(b, "block") for b in every_bit if bz2blocks.bits(data, b, b + 48) == bz2blocks.BLOCK_MAGIC]
    brute += [(b, "eos") for b in every_bit if bz2blocks.bits(data, b, b + 48) == bz2blocks.EOS_MAGIC]
    assert sorted(brute) == planted
    assert {bit % 8 for bit, _ in planted} == set(range(8))
    assert bz2blocks.find_marks(data, 0, len(data)) == planted
    lo, hi = 1000, 3000
    assert bz2blocks.find_marks(data, lo, hi) == [(b, k) for b, k in planted if lo <= b // 8 < hi]


def test_seen_hashes_forget_what_a_restarted_part_added():
    from array import array

    seen = partwriter.SeenHashes()
    for h in range(100):
        seen.add(h)
    seen.merge()
    for h in range(100, 150):
        seen.add(h)
    seen.forget(array("Q", [5, 7, 120, 149]))
    assert len(seen) == 146
    assert all(seen.add(h) for h in (5, 7, 120, 149)) and not seen.add(6) and not seen.add(121)


@pytest.mark.parametrize("scan_bytes", [7, 4096, 1 << 20])
def test_block_scan_is_the_same_whatever_the_read_size(tmp_path, monkeypatch, scan_bytes):
    import hashlib

    xml = block_dump(seed=4, pages=120)
    cuts = [0, 300_000, 300_001, len(xml)]
    data = b"".join(bz2.compress(xml[a:b], compresslevel=1) for a, b in zip(cuts, cuts[1:]))
    src = tmp_path / "scan.xml.bz2"
    src.write_bytes(data)
    marks = bz2blocks.find_marks(data, 0, len(data))
    streams = [i for i in range(len(data)) if data.startswith(b"BZh1", i) and (i * 8 + 32, "block") in marks]
    blocks = [(a, b) for (a, kind), (b, _) in zip(marks, marks[1:]) if kind == "block"]
    assert len(streams) == 3 and len(blocks) > 8
    monkeypatch.setattr(tasks, "SCAN_BYTES", scan_bytes)
    part = tasks.plan([str(src)], tmp_path / "out")[0]

    def scan(chunk):
        monkeypatch.setattr(tasks, "CHUNK_COMPRESSED_BYTES", chunk)
        sha1 = hashlib.sha1()
        with open(src, "rb") as f:
            got = list(tasks.scan_tasks(part, f, sha1))
        assert sha1.hexdigest() == hash_file(src).hexdigest()
        return got

    # a block a task: from its magic to the next block's, or to its stream's end-of-stream marker
    assert [runs for runs, _ in scan(1)] == [((a, b),) for a, b in blocks]
    # longer tasks: runs of whole blocks, in order, none across a stream's end, each task ending at
    # the first block `chunk` bytes or more after its start, or where a stream ends after that
    for chunk in (50_000, 150_000):
        got = scan(chunk)
        covered = []
        for runs, _ in got:
            for a, b in runs:
                inside = [blk for blk in blocks if a <= blk[0] and blk[1] <= b]
                assert inside and inside[0][0] == a and inside[-1][1] == b
                assert all(x[1] == y[0] for x, y in zip(inside, inside[1:]))
                covered += inside
        assert covered == blocks and 1 < len(got) < len(blocks)
        for (runs, done), (after, _) in zip(got, got[1:]):
            start, end, next_start = runs[0][0] // 8, runs[-1][1], after[0][0]
            assert end // 8 >= start + chunk - 10 and done * 8 <= next_start
            if next_start == end:  # cut inside a stream: at its first block from start + chunk on
                assert not [a for a, _ in blocks if start + chunk <= a // 8 < end // 8]
            else:  # the next task starts with a stream
                assert next_start in [s * 8 + 32 for s in streams]
        assert got[-1][1] == len(data)


def test_block_scan_restarts_on_what_only_the_sequential_reader_handles(tmp_path):
    import hashlib

    xml = block_dump(seed=4, pages=60)
    one, two = bz2.compress(xml[:200_000], compresslevel=1), bz2.compress(xml[200_000:], compresslevel=1)
    for name, data, said in (("junk between streams", one + b"\0\0" + two, "no end of a bz2 stream"),
                             ("junk after", one + two + b"junk", "no end of a bz2 stream"),
                             ("truncated", (one + two)[:-3], "no end of a bz2 stream"),
                             ("an empty stream", bz2.compress(b"") + one, "no bz2 stream"),
                             ("not bz2 inside", one + b"BZh9" + bytes(20), "no end of a bz2 stream")):
        src = tmp_path / f"{name}.xml.bz2"
        src.write_bytes(data)
        part = tasks.plan([str(src)], tmp_path / "out")[0]
        with open(src, "rb") as f, pytest.raises(tasks.Restart, match=said):
            list(tasks.scan_tasks(part, f, hashlib.sha1()))


