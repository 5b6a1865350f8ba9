"""Disambiguation pages ("Mercury may refer to: ..."), known on exact evidence only.

A disambiguation page is a list of links, not text to learn from, so extract drops it. MediaWiki
itself knows these pages by one thing: their content holds the magic word `__DISAMBIG__` (the
Disambiguator extension, on every Wikimedia wiki), and every wiki puts it in its disambiguation
templates. So a page counts as one only on evidence of that:

1. its wikitext holds `__DISAMBIG__`, or an alias of it in the wiki's language, outside comments;
2. its title ends with the wiki's disambiguation qualifier ("(disambiguation)", "(homonymie)", ...);
3. it calls a template whose exact name is a disambiguation template of that wiki. Those names
   come from `growgpt/resources/disambiguation.json` (curated per language from each wiki's own
   list, MediaWiki:Disambiguationspage, each name with its source; the titles of rule 2 and the
   aliases of rule 1 too; for a Wikipedia it does not cover, {{Disambig}} and {{Disambiguation}},
   which mean it wherever the table has them), and from the dump itself: a template page
   (namespace 10) whose transcluded wikitext holds the magic word is one, and so is a template
   that redirects to one (see `LearnedTemplates`).

Names match as MediaWiki matches titles: underscores are spaces, runs of spaces are one, the
first letter is case-insensitive unless the dump's <siteinfo> says the Template namespace is
case-sensitive, the rest is case-sensitive, and `Template:` or the wiki's local name for it
(`Vorlage:`, `Πρότυπο:`, from <siteinfo>) may come first. Nothing is matched by pattern (why:
NOTES.md); set-index lists and hatnotes are articles, absent from the table on purpose.

Which wiki a dump is comes from the dump: the host of <siteinfo>'s <base> URL
(`en.wikipedia.org`), else its <dbname> (`enwiki`, `bat_smgwiki`), else the root's `xml:lang`
(language only). The curated templates and titles are Wikipedia's, so they apply to Wikipedias;
other projects (Wikivoyage, ...) and unknown wikis rely on the magic word and on what the dump
teaches.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

TABLE_PATH = Path(__file__).parents[1] / "resources" / "disambiguation.json"
TABLE_FORMAT = "growgpt-disambiguation/1"
MAGIC_WORD = "__DISAMBIG__"
CANONICAL_TEMPLATE_NS = "Template"

# Wikimedia project hosts and dbname suffixes -> project name
_PROJECT_HOSTS = ("wikipedia", "wikivoyage", "wiktionary", "wikibooks", "wikinews", "wikiquote", "wikisource",
                  "wikiversity")
_DBNAME = re.compile(r"([a-z][a-z0-9_]*?)(wiki|wikivoyage|wiktionary|wikibooks|wikinews|wikiquote|wikisource|"
                     r"wikiversity)")
_DB_PROJECT = {"wiki": "wikipedia"}
_NOT_LANGUAGES = {"commons", "meta", "species", "wikidata", "mediawiki", "sources", "incubator", "test", "test2",
                  "outreach", "foundation", "wikimania", "wikifunctions", "beta"}

# A template call: `{{` then a name up to `|` or `}}` (no other markup inside a name). Possessive
# runs: nothing to backtrack into, linear on any input.
_CALL = re.compile(r"\{\{\s*+([^{}|\[\]<>\n]++)\s*+(?=\||\}\})")
# the tags that decide what of a template page is transcluded (a finditer and a walk: a lazy
# `<noinclude>.*?</noinclude>` would rescan the rest of the page from every unclosed tag)
_INCLUSION_TAG = re.compile(r"<(/?)(noinclude|onlyinclude)\s*+>", re.I)
_SUBST = ("subst", "safesubst", "msg", "msgnw", "raw")


@dataclass(frozen=True)
class Wiki:
    """Which wiki a dump is, as its <siteinfo> (or root element) says."""
    language: str = ""  # Wikipedia language code: "en", "bat-smg", "zh-min-nan"; "" when unknown
    project: str = ""  # "wikipedia", "wikivoyage", ...; "" when unknown
    key: str = ""  # names the wiki for what is learned from its dumps: "enwiki", "en.wikipedia.org"; "" unknown

    @classmethod
    def from_siteinfo(cls, dbname: str = "", base: str = "", xml_lang: str = "") -> Wiki:
        dbname, base = dbname.strip(), base.strip()
        host = (urlsplit(base).hostname or "") if base else ""
        language = project = ""
        m = re.fullmatch(r"([a-z][a-z0-9-]*)\.(" + "|".join(_PROJECT_HOSTS) + r")\.org", host)
        if m and m.group(1) not in _NOT_LANGUAGES:
            language, project = m.group(1), m.group(2)
        else:
            m = _DBNAME.fullmatch(dbname)
            if m and m.group(1) not in _NOT_LANGUAGES:
                language = m.group(1).replace("_", "-")
                project = _DB_PROJECT.get(m.group(2), m.group(2))
        if not language and xml_lang:
            language = xml_lang.strip().lower()
        if language == "be-x-old":  # the dbname of be-tarask.wikipedia.org
            language = "be-tarask"
        return cls(language, project, dbname or host)


@lru_cache(maxsize=1)
def load_table() -> dict:
    """The curated table (growgpt/resources/disambiguation.json), checked once per process."""
    try:
        table = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # a broken install, not the user's input
        raise RuntimeError(f"cannot read growgpt's disambiguation table {TABLE_PATH}: {e}") from None
    if table.get("format") != TABLE_FORMAT or not isinstance(table.get("languages"), dict):
        raise RuntimeError(f"{TABLE_PATH}: not a {TABLE_FORMAT} table")
    return table


def _upper_first(s: str) -> str:
    first = s[:1].upper()
    return (first if len(first) == 1 else s[:1]) + s[1:]  # "ß".upper() is "SS": MediaWiki keeps such letters


def _title_text(name: str) -> str:
    """MediaWiki's title text: underscores are spaces, runs of spaces one, no spaces at the ends."""
    return " ".join(name.replace("_", " ").split())


class Detector:
    """The disambiguation evidence of one wiki: its curated template names, title qualifiers and
    magic words, and how its template names are written. Pure and cheap to share: one per wiki per
    process (`detector_for`)."""

    def __init__(self, wiki: Wiki, template_ns: tuple[str, ...] = (), case_sensitive: bool = False) -> None:
        self.wiki = wiki
        self.case_sensitive = case_sensitive
        # namespace names are case-insensitive: "template:", "TEMPLATE :", "vorlage:"
        self.prefixes = frozenset(_title_text(n).lower() for n in (CANONICAL_TEMPLATE_NS, *template_ns) if n)
        table = load_table()
        entry = table["languages"].get(wiki.language) if wiki.language else None
        wikipedia = wiki.project == "wikipedia"
        if entry is None:  # a Wikipedia the table does not cover: the names that mean it everywhere
            entry = table.get("other_wikipedias", {}) if wikipedia else {}
        names = [t["name"] for t in entry.get("templates", [])] if wikipedia else []
        self.templates = frozenset(self.key(n) for n in names)
        self.title_suffixes = tuple(t["suffix"] for t in entry.get("title_suffixes", [])) if wikipedia else ()
        words = {MAGIC_WORD, *(w["word"] for w in entry.get("magic_words", []))}
        # "_DISAMBIG__" without its first "_" (checked after a match): a leading "__" keeps the regex
        # from jumping with a fast search, 1.8x slower over article text
        self._magic = re.compile("|".join(sorted((re.escape(w[1:]) for w in words), key=len, reverse=True)), re.I)
        self._keys: dict[str, str | None] = {}

    def key(self, name: str) -> str:
        """A template title (no namespace) as MediaWiki compares it."""
        text = _title_text(name)
        return text if self.case_sensitive else _upper_first(text)

    def call_key(self, raw: str) -> str | None:
        """The key of the template that `{{raw|...}}` calls, or None when it calls none (a parser
        function, a magic word with an argument, a page of another namespace). Memoised: the same
        few thousand names recur in every article."""
        try:
            return self._keys[raw]
        except KeyError:
            pass
        name: str | None = _title_text(raw)
        for _ in range(2):  # "subst:Template:X"
            if name is None or ":" not in name:
                break
            prefix, _, rest = name.partition(":")
            prefix = prefix.strip().lower()
            if prefix in _SUBST:
                name = rest.strip()
            elif prefix in self.prefixes:
                name = rest.strip()
                break
            elif not prefix or prefix.startswith("#"):
                name = None  # {{:Main page}} (an article), {{#if:...}}
        key = self.key(name) if name else None
        if len(self._keys) < 100_000:
            self._keys[raw] = key
        return key

    def page_key(self, title: str) -> str | None:
        """The key of a template page from its full title ("Template:Dab", "Vorlage:BKL"), or
        None if the title is not in the Template namespace."""
        prefix, colon, rest = _title_text(title).partition(":")
        if colon and prefix.strip().lower() in self.prefixes and rest.strip():
            return self.key(rest.strip())
        return None

    def template_keys(self, wikitext: str, comments_removed: bool = False) -> frozenset[str]:
        """The keys of the templates a page calls (outside comments; `comments_removed`: the
        caller removed them, as `growgpt.wiki.wikitext.wikitext_source` does)."""
        if "{{" not in wikitext:
            return frozenset()
        if not comments_removed and "<!--" in wikitext:
            wikitext = _without_comments(wikitext)
        call_key = self.call_key
        return frozenset(k for k in map(call_key, set(_CALL.findall(wikitext))) if k)

    def evidence(self, wikitext: str, title: str, keys: frozenset[str],
                 comments_removed: bool = False) -> str | None:
        """Why the page is a disambiguation page ("template {{Dab}}", "__DISAMBIG__", "title
        ... (disambiguation)"), or None. `keys`: `template_keys(wikitext)`; `comments_removed` as
        there."""
        if self.templates and keys:
            hit = self.templates.intersection(keys)
            if hit:
                return f"template {{{{{min(hit)}}}}}"
        word = self._magic_word(wikitext)
        if word and not comments_removed and "<!--" in wikitext:  # (only then a copy without comments)
            word = self._magic_word(_without_comments(wikitext))
        if word:
            return word
        for suffix in self.title_suffixes:
            if title.endswith(suffix):
                return f"title {suffix}"
        return None

    def _magic_word(self, text: str) -> str | None:
        """The first disambiguation magic word in text, as written."""
        pos = 0
        while m := self._magic.search(text, pos):
            if m.start() and text[m.start() - 1] == "_":
                return "_" + m.group()
            pos = m.start() + 1
        return None

    def defines_disambiguation(self, template_wikitext: str) -> bool:
        """Whether a template page's wikitext marks the pages that call it: the magic word in what
        it transcludes (not in <noinclude> parts, only in <onlyinclude> parts where there are any,
        not in comments)."""
        if "__" not in template_wikitext:
            return False
        text = _without_comments(template_wikitext) if "<!--" in template_wikitext else template_wikitext
        if "<" in text:
            text = transcluded(text)
        return self._magic_word(text) is not None


_DETECTORS: dict[tuple, Detector] = {}


def detector_for(wiki: Wiki, template_ns: tuple[str, ...] = (), case_sensitive: bool = False) -> Detector:
    """The shared Detector of a wiki (workers meet the same wiki in every task)."""
    k = (wiki, template_ns, case_sensitive)
    d = _DETECTORS.get(k)
    if d is None:
        d = _DETECTORS[k] = Detector(wiki, template_ns, case_sensitive)
    return d


def _without_comments(wikitext: str) -> str:
    """The wikitext without <!-- comments -->, as the cleaner reads it (one comment stripper)."""
    from growgpt.wiki.wikitext import wikitext_source

    return wikitext_source(wikitext)


def transcluded(template_wikitext: str) -> str:
    """What of a template page other pages get: only its <onlyinclude> parts if it has any, else
    everything outside <noinclude> parts (an unclosed tag runs to the end, as in MediaWiki)."""
    tags = [(m.start(), m.end(), m.group(1) == "/", m.group(2).lower())
            for m in _INCLUSION_TAG.finditer(template_wikitext)]
    if not tags:
        return template_wikitext
    only = any(name == "onlyinclude" and not closing for _, _, closing, name in tags)
    wanted = "onlyinclude" if only else "noinclude"
    out, pos, inside = [], 0, False
    for start, end, closing, name in tags:
        if name != wanted or closing != inside:
            continue  # a tag of the other kind, or a close with nothing open, or an open inside one
        if only == inside:  # the end of a span that counts: onlyinclude's inside, noinclude's outside
            out.append(template_wikitext[pos:start])
        pos, inside = end, not inside
    if only == inside:
        out.append(template_wikitext[pos:])
    return transcluded("".join(out)) if only else "".join(out)  # (<noinclude> inside <onlyinclude>)


def is_disambiguation(wikitext: str, title: str = "", language: str = "en", project: str = "wikipedia") -> str | None:
    """The evidence that a page of the given wiki is a disambiguation page, or None (a convenience
    for one page; extract keeps one Detector per wiki)."""
    d = detector_for(Wiki(language, project, f"{language}.{project}.org"))
    return d.evidence(wikitext, title, d.template_keys(wikitext))


class LearnedTemplates:
    """Disambiguation templates of one wiki learned from its dumps, beyond the curated table: the
    template pages whose wikitext holds the magic word, and the templates that redirect to those
    or to curated ones. Lives in the main process of extract, which sees every part's results in
    file order."""

    def __init__(self, curated: frozenset[str] = frozenset()) -> None:
        self.curated = curated
        self.extra: dict[str, str] = {}  # key -> where it was learned ("page 1096 of PART", "redirect to X")
        self.origin: dict[str, str] = {}  # key -> the part whose pages taught it
        self._redirects: dict[str, list[str]] = {}  # target -> templates redirecting to it, not yet resolved

    def known(self, key: str) -> bool:
        return key in self.curated or key in self.extra

    def define(self, key: str, source: str, part: str = "") -> list[str]:
        """A disambiguation template was met in `part`; returns every key this newly makes one
        (itself and the templates that redirect to it)."""
        if self.known(key):
            return []
        self._add(key, source, part)
        return [key, *self._resolve(key, part)]

    def redirect(self, key: str, target: str, part: str = "") -> list[str]:
        """Template `key` redirects to template `target` (a page of `part`); returns the keys this
        newly makes disambiguation templates (key, and what redirects to key, when target is one)."""
        if key == target or self.known(key):
            return []
        if self.known(target):
            self._add(key, f"redirect to {{{{{target}}}}}", part)
            return [key, *self._resolve(key, part)]
        self._redirects.setdefault(target, []).append(key)
        return []

    def learned_in(self, part: str) -> list[str]:
        """The templates that `part` taught (sorted)."""
        return sorted(k for k, p in self.origin.items() if p == part)

    def _add(self, key: str, source: str, part: str) -> None:
        self.extra[key] = source
        self.origin[key] = part

    def _resolve(self, key: str, part: str) -> list[str]:
        """Templates whose redirects now lead to a known one (learned where that was learned)."""
        new, todo = [], [key]
        while todo:
            target = todo.pop()
            for source in self._redirects.pop(target, []):
                if not self.known(source):
                    self._add(source, f"redirect to {{{{{target}}}}}", part)
                    new.append(source)
                    todo.append(source)
        return new
