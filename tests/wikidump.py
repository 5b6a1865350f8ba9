"""Small MediaWiki XML dumps written by the tests: any wiki, namespaces, redirects, export schemas;
and what Wikimedia's tools make of a dump: page-range parts and multistream files with their index."""

from __future__ import annotations

import bz2
import random
import re
from xml.sax.saxutils import escape, quoteattr

# what MediaWiki writes for a page of prose long enough to pass extract's length filter
PROSE = "The '''quick''' brown fox jumps over the lazy dog near the [[river bank]] every single morning. " * 3


def wiki_dump(pages: list[tuple], dbname: str = "enwiki", lang: str = "en", base: str | None = None,
              template_ns: str = "Template", case: str = "first-letter", footer: bool = True,
              schema: str = "0.11") -> str:
    """A dump with a full <siteinfo>. `pages`: (id, title, wikitext) for articles, or
    (id, title, wikitext, ns) or (id, title, wikitext, ns, redirect target). `footer=False`: no
    closing </mediawiki> (a file cut after its last page). `schema="0.3"` writes what the 2009
    dumps did: no <ns> (the namespace is the title's prefix: give titles with it) and an empty
    `<redirect />`."""
    if base is None:
        project = "wikipedia" if dbname.endswith("wiki") else dbname[len(lang.replace("-", "_")):]
        base = f"https://{lang}.{project}.org/wiki/Main_Page"
    head = (f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-{schema}/" version="{schema}" xml:lang="{lang}">\n'
            f"  <siteinfo>\n    <sitename>Test</sitename>\n    <dbname>{dbname}</dbname>\n"
            f"    <base>{escape(base)}</base>\n"
            f'    <namespaces>\n      <namespace key="0" case="first-letter" />\n'
            f'      <namespace key="10" case="{case}">{escape(template_ns)}</namespace>\n'
            f'      <namespace key="14" case="first-letter">Category</namespace>\n    </namespaces>\n  </siteinfo>\n')
    body = []
    for page in pages:
        pid, title, text, *rest = page
        ns = rest[0] if rest else 0
        target = rest[1] if len(rest) > 1 else None
        if schema == "0.3":
            ns_element, redirect = "", "    <redirect />\n" if target else ""
        else:
            ns_element = f"    <ns>{ns}</ns>\n"
            redirect = f"    <redirect title={quoteattr(target)} />\n" if target else ""
        body.append(f"  <page>\n    <title>{escape(title)}</title>\n{ns_element}    <id>{pid}</id>\n{redirect}"
                    f"    <revision>\n      <id>{pid * 10}</id>\n"
                    f"      <contributor><username>u</username><id>7</id></contributor>\n"
                    f'      <text bytes="{len(text)}" xml:space="preserve">{escape(text)}</text>\n    </revision>\n'
                    f"  </page>\n")
    return head + "".join(body) + ("</mediawiki>\n" if footer else "")


def random_prose(rng: random.Random, words: int) -> str:
    """`words` words of made-up prose with some links: text that compresses like real text."""
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(2000)]
    return "'''Bold''' " + " ".join(rng.choice(vocabulary) if rng.random() > 0.05 else f"[[{rng.choice(vocabulary)}]]"
                                    for _ in range(words)) + "."


def dump_pages(xml: bytes) -> tuple[bytes, list[bytes], bytes]:
    """A dump's XML as (header: everything before the first <page>, each page up to the next one,
    footer: everything after the last </page>); joined, they are `xml` again."""
    starts = [m.start() for m in re.finditer(rb"<page>", xml)]
    end = xml.rindex(b"</page>") + len(b"</page>")
    bounds = starts + [end]
    return xml[: starts[0]], [xml[a:b] for a, b in zip(bounds, bounds[1:])], xml[end:]


def page_id(page: bytes) -> int:
    return int(re.search(rb"<id>(\d+)</id>", page).group(1))


def split_parts(xml: bytes, parts: int) -> list[tuple[str, bytes]]:
    """The dump cut into `parts` page-range parts as Wikimedia's split_bz2.py writes them, each a
    whole XML document (the header, its pages, the footer), bz2-compressed, in page order:
    [("pages-articles.xml-pFIRSTpLAST.bz2", data), ...]."""
    header, pages, footer = dump_pages(xml)
    size = -(-len(pages) // parts)
    out = []
    for i in range(0, len(pages), size):
        group = pages[i:i + size]
        name = f"pages-articles.xml-p{page_id(group[0])}p{page_id(group[-1])}.bz2"
        out.append((name, bz2.compress(header + b"".join(group) + footer)))
    return out


def multistream(xml: bytes, pages_per_stream: int) -> tuple[bytes, bytes]:
    """The dump as Wikimedia's recompressxml writes a multistream file: a bz2 stream of the header,
    one of each `pages_per_stream` pages, one of the footer; and its index (`offset:page_id:title`
    lines, each page's stream offset), bz2-compressed."""
    header, pages, footer = dump_pages(xml)
    streams = [bz2.compress(header)]
    lines = []
    for i in range(0, len(pages), pages_per_stream):
        offset = sum(map(len, streams))
        for page in pages[i:i + pages_per_stream]:
            title = re.search(rb"<title>(.*?)</title>", page).group(1).decode()
            lines.append(f"{offset}:{page_id(page)}:{title}\n")
        streams.append(bz2.compress(b"".join(pages[i:i + pages_per_stream])))
    streams.append(bz2.compress(footer))
    return b"".join(streams), bz2.compress("".join(lines).encode())
