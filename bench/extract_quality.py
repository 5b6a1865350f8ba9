"""How clean is the text? growgpt's wikitext cleaner against WikiExtractor 3.1.0, leak by leak.

For every MediaWiki XML dump sample under the data folder (default: ../shared/data/wikidumps next to
the repository), the article pages (namespace 0, not redirects) are cleaned twice: by
`growgpt.wikitext.wikitext_to_text` in-process, and by WikiExtractor run as its own command line
(`python -m wikiextractor.WikiExtractor FILE -o - --json`), the faithful way to use it. Both tables
count, per file and in total, the documents whose text still holds each kind of markup leak, and
the characters of text produced. The documents are the same on both sides, matched by page id.

WikiExtractor reads dumps line by line with regexes and silently yields nothing for several
samples: it needs a `<siteinfo>` naming the Template namespace (enwiki-table-markup has none,
tinywiki lacks key 10), an `<ns>` element (schema 0.3 has none) and UTF-8 (the bgwiki sample is
UTF-16). So it is run on a normalised copy of each file: UTF-8, a full `<siteinfo>`, `<ns>` on
every page, the same article pages plus the file's Template/Module pages (WikiExtractor expands
templates from them). The `raw run` column says what it does on the original file.

Run: python bench/extract_quality.py [--data DIR] [--examples N]
(needs `pip install wikiextractor==3.1.0`, a benchmark-only tool, not a growgpt dependency).
"""

from __future__ import annotations

import argparse
import bz2
import html
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

from growgpt.wikitext import MARKUP_LEAKS as LEAKS  # the same checks as the tests
from growgpt.wikitext import wikitext_to_text

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikidumps"

# Localised "#REDIRECT" magic words of the sample wikis (en, fr, el, bg, de, es, ru).
REDIRECT = re.compile(r"\s*#(?:redirect|redirection|ανακατευθυνση|ανακατεύθυνση|пренасочване|"
                      r"weiterleitung|redirección|перенаправление)\b", re.I)

# Default namespaces, for files without a <siteinfo> (WikiExtractor needs one).
EN_NAMESPACES = {-2: "Media", -1: "Special", 0: "", 1: "Talk", 2: "User", 3: "User talk",
                 4: "Wikipedia", 5: "Wikipedia talk", 6: "File", 7: "File talk", 8: "MediaWiki",
                 9: "MediaWiki talk", 10: "Template", 11: "Template talk", 12: "Help",
                 13: "Help talk", 14: "Category", 15: "Category talk", 100: "Portal",
                 828: "Module"}



def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_dump(path: Path):
    """(namespaces {key: name}, pages [(id, title, ns, text)]) of a dump, any schema or encoding:
    the XML parser is fed bytes and honours the BOM/declaration itself."""
    opener = bz2.open if path.name.endswith(".bz2") else open
    namespaces: dict[int, str] = {}
    pages = []
    with opener(path, "rb") as f:
        page: dict = {}
        for _, el in ET.iterparse(f, events=("end",)):
            tag = local(el.tag)
            if tag == "namespace":
                namespaces[int(el.get("key"))] = el.text or ""
            elif tag in ("title", "ns", "text") and tag not in page:
                page[tag] = el.text or ""
            elif tag == "id" and "id" not in page:
                page["id"] = el.text
            elif tag == "redirect":
                page["redirect"] = True
            elif tag == "page":
                pages.append(page)
                page = {}
                el.clear()
    by_name = {name.lower(): key for key, name in namespaces.items() if name}
    out = []
    for p in pages:
        if "ns" in p:
            ns = int(p["ns"])
        else:  # schema 0.3: the namespace is the title's known prefix, if any
            prefix = p["title"].split(":", 1)[0].lower() if ":" in p["title"] else ""
            ns = by_name.get(prefix, 0)
        redirect = p.get("redirect") or bool(REDIRECT.match(p.get("text", "")))
        out.append((p["id"], p["title"], ns, p.get("text", ""), redirect))
    return namespaces, out


def write_normalised(path: Path, namespaces: dict[int, str], pages) -> None:
    """A UTF-8 dump WikiExtractor can read: full <siteinfo>, <ns> on every page, one page per
    article plus the template and module pages."""
    namespaces = {**EN_NAMESPACES, **namespaces} if 10 not in namespaces else namespaces
    with open(path, "w", encoding="utf-8") as f:
        f.write('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
                "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n"
                "    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n    <namespaces>\n")
        for key, name in sorted(namespaces.items()):
            f.write(f'      <namespace key="{key}" case="first-letter">{escape(name)}</namespace>\n')
        f.write("    </namespaces>\n  </siteinfo>\n")
        for pid, title, ns, text, _ in pages:
            f.write(f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{pid}</id>\n"
                    f"    <revision>\n      <id>{pid}</id>\n"
                    f'      <text xml:space="preserve">{escape(text)}</text>\n    </revision>\n  </page>\n')
        f.write("</mediawiki>\n")


def wikiextractor(path: Path) -> tuple[dict | None, str, float]:
    """{(page id, title): text} from WikiExtractor's JSON output, or None and why it failed; and seconds."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "wikiextractor.WikiExtractor", str(path), "-o", "-",
                        "--json", "--processes", "1"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    docs = {}
    for line in r.stdout.splitlines():
        if line.strip():
            d = json.loads(line)
            docs.setdefault((d["id"], html.unescape(d["title"])), d["text"])  # it escapes titles
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"crash: {last[:60]}", seconds
    return docs, f"{len(docs)} docs", seconds


def leak_counts(texts) -> dict:
    counts = {name: 0 for name in LEAKS}
    counts.update(docs=0, any=0, chars=0)
    for text in texts:
        counts["docs"] += 1
        counts["chars"] += len(text)
        hit = False
        for name, rx in LEAKS.items():
            if rx.search(text):
                counts[name] += 1
                hit = True
        counts["any"] += hit
    return counts


def table(title: str, rows: list[tuple[str, dict, str]]) -> None:
    cols = list(LEAKS)
    print(f"\n{title}")
    head = f"{'file':<58} {'docs':>5} " + " ".join(f"{c:>8}" for c in cols) + \
           f" {'any':>5} {'leaks/100':>9} {'chars':>10}  note"
    print(head)
    print("-" * len(head))
    total = {k: 0 for k in [*cols, "docs", "any", "chars"]}
    for name, c, note in rows:
        for k in total:
            total[k] += c[k]
        print(_row(name, c, cols) + f"  {note}")
    print("-" * len(head))
    print(_row("TOTAL", total, cols))


def _row(name: str, c: dict, cols: list[str]) -> str:
    leaks = sum(c[k] for k in cols)
    per100 = 100 * leaks / c["docs"] if c["docs"] else 0.0
    name = name if len(name) <= 58 else "…" + name[-57:]
    return (f"{name:<58} {c['docs']:>5} " + " ".join(f"{c[k]:>8}" for k in cols) +
            f" {c['any']:>5} {per100:>9.2f} {c['chars']:>10}")


def examples(label: str, docs: dict, n: int) -> None:
    shown = 0
    for (_, title), text in docs.items():
        for name, rx in LEAKS.items():
            m = rx.search(text)
            if m and shown < n:
                ctx = text[max(0, m.start() - 80) : m.end() + 80].replace("\n", "⏎")
                print(f"  [{label}] {name} in {title!r}: …{ctx}…")
                shown += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of dump samples")
    ap.add_argument("--examples", type=int, default=0, help="print N leak contexts per file and tool")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.data.rglob("*") if p.is_file() and ".xml" in p.name
                   and "index" not in p.name)
    if not files:
        print(f"no dump samples under {args.data}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("wikiextractor") is None:
        print("WikiExtractor is not installed: pip install wikiextractor==3.1.0", file=sys.stderr)
        return 2

    ours_rows, theirs_rows = [], []
    total_bytes = total_seconds = 0.0
    we_seconds = we_bytes = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            name = str(path.relative_to(args.data))
            namespaces, pages = read_dump(path)
            articles = [p for p in pages if p[2] == 0 and not p[4]]
            support = [p for p in pages if p[2] in (10, 828)]  # templates, modules

            # Keyed by (id, title): hand-made samples reuse ids. First occurrence wins on both sides.
            # Timed in CPU seconds (MB/s per core), best of 3 passes: the machine may be shared.
            seconds = float("inf")
            for _ in range(3):
                ours = {}
                t0 = time.process_time()
                for pid, title, _, text, _ in articles:
                    ours.setdefault((pid, title), wikitext_to_text(text, title))
                seconds = min(seconds, time.process_time() - t0)
            nbytes = sum(len(p[3].encode("utf-8")) for p in articles)
            total_bytes += nbytes
            total_seconds += seconds

            raw_docs, raw_note, _ = wikiextractor(path)
            normalised = Path(tmp) / "normalised.xml"
            write_normalised(normalised, namespaces, articles + support)
            theirs, note, we_s = wikiextractor(normalised)
            we_seconds += we_s
            we_bytes += normalised.stat().st_size
            speed = f"{nbytes / max(seconds, 1e-9) / 1e6:.1f} MB/s"
            if theirs is None:  # nothing to compare with: our own counts over all our documents
                theirs, common = {}, list(ours)
                speed += f"; WikiExtractor FAILED on the normalised file ({note})"
            else:
                common = [key for key in ours if key in theirs]
                if len(common) < len(ours):
                    speed += f"; {len(ours)} docs, {len(ours) - len(common)} not in WikiExtractor's"
            ours_rows.append((name, leak_counts(ours[k] for k in common), speed))
            theirs_rows.append((name, leak_counts(theirs[k] for k in common if k in theirs),
                                f"raw run: {raw_note}" if raw_docs is not None else f"raw run {raw_note}"))
            if args.examples:
                examples("growgpt", {k: ours[k] for k in common}, args.examples)
                examples("wikiextractor", {k: theirs[k] for k in common if k in theirs}, args.examples)

    table("growgpt.wikitext (note: cleaner throughput, MB of wikitext per CPU second, best of 3)", ours_rows)
    table("WikiExtractor 3.1.0 on the normalised file (note: what it does on the original file)",
          theirs_rows)
    print(f"\ngrowgpt cleaner: {total_bytes / 1e6:.1f} MB of wikitext in {total_seconds:.2f} CPU s = "
          f"{total_bytes / total_seconds / 1e6:.1f} MB/s per core")
    print(f"WikiExtractor (whole command, 1 process, wall time incl. XML reading and startup): "
          f"{we_bytes / 1e6:.1f} MB of XML in {we_seconds:.2f} s = {we_bytes / we_seconds / 1e6:.1f} MB/s")
    print("leak columns: documents containing the leak at least once; leaks/100 = sum of those per 100 docs")
    print("TOTAL adds up the files, which overlap: the elwikivoyage sample, its split parts and its multistream")
    print("copies hold the same pages.")
    print("\nrerun: python bench/extract_quality.py" + (f" --data {args.data}" if args.data != DEFAULT_DATA else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
