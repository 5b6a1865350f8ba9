"""Small MediaWiki XML dumps written by the tests: any wiki, namespaces, redirects."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

# what MediaWiki writes for a page of prose long enough to pass extract's length filter
PROSE = "The '''quick''' brown fox jumps over the lazy dog near the [[river bank]] every single morning. " * 3


def wiki_dump(pages: list[tuple], dbname: str = "enwiki", lang: str = "en", base: str | None = None,
              template_ns: str = "Template", case: str = "first-letter", footer: bool = True) -> str:
    """A schema-0.11 dump with a full <siteinfo>. `pages`: (id, title, wikitext) for articles, or
    (id, title, wikitext, ns) or (id, title, wikitext, ns, redirect target). `footer=False`: no
    closing </mediawiki> (a file cut after its last page)."""
    if base is None:
        project = "wikipedia" if dbname.endswith("wiki") else dbname[len(lang.replace("-", "_")):]
        base = f"https://{lang}.{project}.org/wiki/Main_Page"
    head = (f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="{lang}">\n'
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
        redirect = f"    <redirect title={quoteattr(target)} />\n" if target else ""
        body.append(f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{pid}</id>\n{redirect}"
                    f"    <revision>\n      <id>{pid * 10}</id>\n"
                    f"      <contributor><username>u</username><id>7</id></contributor>\n"
                    f'      <text bytes="{len(text)}" xml:space="preserve">{escape(text)}</text>\n    </revision>\n'
                    f"  </page>\n")
    return head + "".join(body) + ("</mediawiki>\n" if footer else "")
