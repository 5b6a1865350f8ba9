r"""Wikitext to clean plain text, for training on Wikipedia (and Wikivoyage, ...) dumps.

`wikitext_to_text` turns one article's wikitext into the prose a reader sees: paragraphs, list items
one per line (markers stripped), section headings as lines of their own. Everything that is not
prose goes: templates (infoboxes, navboxes, citations), tables, references, galleries, images and
their captions, categories, interlanguage links, maths, code, comments, magic words, and whole
sections that are only lists of references or links ("References", "External links", "See also",
... in several languages). (Which pages are disambiguation pages is `growgpt.disambiguation`'s.)

How, and why not a real parser
------------------------------
Speed decides: extraction must run several times faster than WikiExtractor 3.1.0 (4-7 MB/s of XML
on one core here), so the cleaner needs well over 12 MB/s of wikitext per core. Measured on the
enwiki sample (5.7 MB of article wikitext, one core):

* `mwparserfromhell` (C tokenizer), the obvious correct tool: `parse()` alone 2.9 MB/s,
  `parse().strip_code()` 2.6 MB/s. Rejected: 5-10x too slow, before any of the cleaning below.
* Removing templates by repeating `re.sub(r"\{\{[^{}]*\}\}", "")` until nothing changes: 550 MB/s,
  faster than the scan used here (220 MB/s), but it is blind to tables (`|}}}` closes a table and a
  template), trips on single braces inside templates, cannot render a template from its arguments,
  and is quadratic in the nesting depth. The scan is under a quarter of the cleaner's time anyway.
* This module: a fixed sequence of passes, each a compiled regex or a `str.find` loop in C, never a
  Python loop over characters: 15-30 MB/s per core on the samples, with this VM's speed
  (`bench/extract_quality.py` prints it), and fewer leaks than WikiExtractor on every sample (same
  benchmark). The passes:

1. comments, then elements whose content is not prose (`<ref>`, `<math>`, `<gallery>`, code, ...)
   are cut by a find-the-closing-tag loop; `<nowiki>` content is entity-escaped so that no later
   pass reads it as markup (the final unescape restores it);
2. sections that are only references/links are dropped by their heading (early: it also saves the
   work on their templates);
3. templates and tables are matched by ONE bracket-depth scan over the `{{`, `}}`, `{|`, `|}`
   tokens with a stack, innermost first, so nesting (`{{a|{{b}}}}`, tables in templates, `|}}}`)
   comes out right. Most templates are dropped whole; the few whose text belongs in the sentence
   are rendered from their (already expanded) arguments, see `_RENDER_ARGS`;
4. external links, then wiki links innermost first (so `[[File:x|a [[link]] caption]]` goes as a
   whole), quotes, HTML tags, magic words, headings, list markers;
5. entities are unescaped, then the debris that removed templates leave (`()`, `( ; )`, ` ,`) is
   cleaned up, `_scrub` deletes whatever markup survived (so no `{{`, `[[`, `{|`, `<ref` ever
   reaches the output), and a last pass over lines drops punctuation-only lines and the headings
   of sections left empty, and collapses runs of blank lines.

Regexes here are written to start with a literal character where possible (`\n=` rather than `^=`
with re.M): the engine then jumps between candidates with a fast search, 2-17x faster. Where no
literal can lead, the text is searched otherwise: the template scan jumps between braces with
`str.find` (memchr), the `; )` debris regex runs on the reversed text where it starts with `)`, and
tests for a rare character (`"{" in s`) skip a regex that would find nothing. Every pass over the
whole text costs 1-5 ms on the enwiki sample whether it finds anything or not, so passes are
skipped whenever something cheaper says they would find nothing: a one-character test before a
pair search (`"_" in s and "__" in s`), a count of what an earlier pass changed, the template scan
noticing a `{{{`. Alternatives get a lookahead for their first letters, so the engine turns most
candidates away with one test. Each fast path has a plain reference version in the tests
(tests/test_wikitext.py, "the fast paths match what they replace", "linear-time rewrites").

Linear time, whatever the input
-------------------------------
Every pass is linear in the input, and no input costs more than about 10x article text per MB:
`bench/clean_worst_case.py` measures 55 families of junk (unclosed and nested braces, tables,
links, runs of `=`, `<`, `&`, ...) at 10 KB-1 MB against article text, and
tests/test_clean_worst_case.py checks that 10x the input costs well under 100x the time, for each.
What it takes: quantifiers bounded or possessive, so that no run is backtracked over twice; long
lists of names as atomic tries behind a lookahead (`_trie`); no frame's text joined again at each
level of nesting (kept tables hand up their lines; rendered templates and kept tables nest at most
`_MAX_KEPT_DEPTH` deep); and where junk would cost a Python loop round per token (braces,
headings, entities), string methods and regex passes take those tokens in bulk.

Trade-offs
----------
* Templates are not expanded from their definitions (WikiExtractor can, given a templates file):
  real expansion needs the whole Template namespace and Lua. A dropped template can leave a hole in
  a sentence ("born in ." where `{{birth place}}` was); the common text-bearing templates are
  rendered, and the debris pass removes the empty brackets and stray commas such holes leave.
* Unbalanced markup never swallows the rest of the article: an unclosed `{{` or `{|` is dropped
  with its name (or attribute line) and the scan resumes after it; an unclosed `<ref>` or comment
  loses only its tag or line. MediaWiki itself would hide everything after an unclosed comment.
* Literal `{{` or `[[` in the text (inside <nowiki>, or written as entities) is deleted too: the
  price of a simple guarantee that no markup leaks, paid by a handful of articles about wikitext.
* Code (`<syntaxhighlight>`, `<source>`, `<pre>`) is dropped, not kept: it is a tiny share of the
  text, it is full of braces and pipes that are indistinguishable from leftover markup, and code is
  better sourced from a code corpus. `<math>`/`<chem>` TeX is dropped for the same reason.
* `keep_tables=True` keeps table cells as lines of text; by default tables are dropped, since cell
  text out of its grid is mostly numbers and fragments.
"""

from __future__ import annotations

import collections
import html
import html.entities
import itertools
import operator
import re
from typing import Callable

__all__ = ["wikitext_to_text", "markup_leaks"]


def _trie(words) -> str:
    """A regex for any of `words`, written as an atomic trie ("file|fichier|fil" ->
    "(?>f(?:i(?:chier|l(?:e)?)))"), for the long lists of names below. The engine tries the
    branches of an alternation one by one, and under re.I a branch gets no first-character
    shortcut: a flat list of 115 namespace names cost 115 tries at every `[[` (25-40x the time of
    article text on `[[` junk); a trie tries each letter once. Atomic: no two branches of a node
    match the same character, even under re.I (a test checks), so the text spells one path, the
    longest name on it is taken, and a shorter one (a prefix, followed by a letter) could not lead
    to a match where it did not: giving back costs time, never finds anything."""
    tree: dict = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [re.escape(ch) + emit(node[ch]) for ch in sorted(node) if ch]
        if not branches:
            return ""
        group = branches[0] if len(branches) == 1 and "" not in node else "(?:%s)" % "|".join(branches)
        return group + "?" if "" in node else group

    return "(?>%s)" % emit(tree)


def _first_letters(words) -> str:
    """A lookahead for the first letters of `words`, so that most candidates fail one test."""
    return "(?=[%s])" % "".join(sorted({re.escape(w[0]) for w in words}))


# ----------------------------------------------------------------------------------------------
# Namespaces and section names. Lower-case; several languages, because the same code cleans any wiki
# and the cost of a longer set lookup is nil.

_FILE_NS = {
    "file", "image", "media", "fichier", "média", "datei", "bild", "medium", "archivo", "imagen",
    "immagine", "ficheiro", "arquivo", "imagem", "plik", "grafika", "bestand", "afbeelding", "fil",
    "bilde", "billede", "tiedosto", "kuva", "fitxer", "imatge", "dosiero", "soubor", "obrázek",
    "súbor", "fájl", "kép", "fișier", "imagine", "datoteka", "slika", "dosya", "resim", "berkas",
    "gambar", "fail", "pilt", "vaizdas", "attēls", "fails", "mynd", "tập tin", "hình",
    "файл", "изображение", "картинка", "зображення", "датотека", "слика", "податотека", "сурет",
    "αρχείο", "εικόνα", "קובץ", "תמונה", "ملف", "صورة", "پرونده", "تصویر", "चित्र", "ไฟล์", "ภาพ",
    "ファイル", "画像", "文件", "檔案", "图像", "圖像", "파일", "그림", "ფაილი", "պատկեր", "படிமம்",
}
_CATEGORY_NS = {
    "category", "catégorie", "kategorie", "categoría", "categoria", "kategoria", "categorie",
    "kategori", "luokka", "kategorija", "kategória", "kategorio", "kateqoriya", "kategooria",
    "flokkur", "categori", "catagóir", "thể loại", "kategoreja",
    "категория", "категорія", "категорија", "катэгорыя", "санат", "κατηγορία", "קטגוריה", "تصنيف",
    "رده", "زمرہ", "श्रेणी", "หมวดหมู่", "カテゴリ", "分类", "分類", "분류", "კატეგორია", "կատեգորիա",
    "பகுப்பு",
}
# Interwiki prefixes whose links show their text (`[[wikt:foo|foo]]`), unlike interlanguage links.
_INTERWIKI = {
    "w", "wikt", "wiktionary", "s", "wikisource", "q", "wikiquote", "b", "wikibooks", "n",
    "wikinews", "v", "wikiversity", "voy", "wikivoyage", "d", "wikidata", "c", "commons", "m",
    "meta", "species", "wikispecies", "mw", "mediawikiwiki", "foundation", "wmf", "phab", "wp",
    "wikipedia",
}
_LANG_PREFIX = re.compile(r"(?:[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,2}|simple)$")

_DROP_SECTIONS = {
    # en
    "references", "reference", "external links", "external link", "further reading",
    "notes", "sources", "bibliography", "footnotes", "notes and references", "references and notes",
    "citations", "works cited", "sources and references", "notes and sources",
    # fr
    "références", "notes et références", "liens externes", "lien externe",
    "bibliographie", "sources et références",
    # de, es, it, pt, nl
    "einzelnachweise", "weblinks", "anmerkungen", "referencias", "enlaces externos",
    "bibliografía", "note", "bibliografia", "collegamenti esterni",
    "referências", "ligações externas", "referenties", "externe links",
    "przypisy", "linki zewnętrzne", "referenser", "externa länkar", "källor",
    "kaynakça", "dış bağlantılar",
    # bg, ru, uk
    "източници", "бележки", "външни препратки", "външни връзки",
    "примечания", "ссылки", "джерела", "посилання", "примітки",
    # ja, zh
    "脚注", "出典", "参考文献", "外部リンク", "外部链接", "外部連結", "參考文獻",
    "注释", "註釋",
    # el (Wikipedia and Wikivoyage)
    "παραπομπές", "εξωτερικοί σύνδεσμοι", "βιβλιογραφία", "σημειώσεις", "πηγές",
}

# Names that mean a list of links or books only as a top-level section, dropped only at level 1-2.
# "Literature" is the bibliography at the end of a bg/ru/uk article, but the literature of a country
# in a subsection of its "Culture". "See also" is Wikipedia's closing list of links, but on
# Wikivoyage "=== See also ===" is a subsection of "What to see", full of sights (elwikivoyage's
# Naples lost 3,700 characters of them).
_DROP_TOP_SECTIONS = {
    "литература", "література",
    # "see also": en, fr, de, es, it, pt, nl, pl, sv, tr, bg, ru, uk, ja, zh, el
    "see also", "voir aussi", "articles connexes", "siehe auch", "véase también", "voci correlate",
    "ver também", "zie ook", "zobacz też", "se även", "ayrıca bakınız", "вижте също", "см. также",
    "див. також", "関連項目", "参见", "參見", "δείτε επίσης",
}

# ----------------------------------------------------------------------------------------------
# Pass 1: comments and elements

# Elements whose content is not prose. `pre`, `source` and `syntaxhighlight` are code: see the
# module docstring for why code is dropped.
_DROP_ELEMENTS = (
    "ref", "references", "math", "chem", "ce", "gallery", "timeline", "syntaxhighlight", "source",
    "pre", "score", "graph", "mapframe", "maplink", "templatedata", "imagemap", "hiero", "inputbox",
    "categorytree", "includeonly", "indicator", "charinsert", "nowiki",
)
# An element's opening tag (name, attributes); or, without groups, a whole <ref ...>...</ref> with
# no tag inside (most elements of an article), which `_strip_elements` then only steps over. Greedy
# attributes, self-closing told by their last character: a lazy `[^<>]*?(/?)>` is 2x slower.
_ELEMENT_OPEN = re.compile(r"<(?:ref(?:\s[^<>]*)?(?<!/)>[^<]*</ref\s*>|%s(%s)\b([^<>]*)>)"
                           % (_first_letters(_DROP_ELEMENTS), _trie(_DROP_ELEMENTS)), re.I)
_ELEMENT_CLOSE = {n: re.compile(r"</%s\s*>" % n, re.I) for n in _DROP_ELEMENTS}
_CLOSE_TAG = {n: f"</{n}>" for n in _DROP_ELEMENTS}  # as usually written: a str.find, not a regex
_ELEMENT_REOPEN = {n: re.compile(r"<%s\b[^<>]*?(?<!/)>" % n, re.I) for n in _DROP_ELEMENTS}
# Opening tags of one name with only text between them; group 1: the last one
_ELEMENT_CHAIN = {n: re.compile(r"(?:(<%s\b[^<>]*?(?<!/)>)[^<]*)+" % n, re.I) for n in _DROP_ELEMENTS}
# Markup characters inside <nowiki> become numeric entities; the final unescape turns them back.
_NOWIKI_ESCAPE = str.maketrans({c: f"&#{ord(c)};" for c in "&<>[]{}|'=*#:;_~-"})


def _strip_comments(s: str) -> str:
    out, pos = [], 0
    while (i := s.find("<!--", pos)) >= 0:
        out.append(s[pos:i])
        j = s.find("-->", i + 4)
        if j < 0:  # unclosed: MediaWiki hides the rest of the page; we hide only the rest of the line
            j = s.find("\n", i)
            pos = len(s) if j < 0 else j
            break
        pos = j + 3
    out.append(s[pos:])
    return "".join(out)


def _strip_elements(s: str) -> str:
    out, pos = [], 0
    unclosed: set[str] = set()  # names with no closing tag after some point: never search again
    closes: dict[str, tuple[int, int]] = {}  # the next closing tag of each name, while still ahead
    while m := _ELEMENT_OPEN.search(s, pos):
        out.append(s[pos : m.start()])
        pos = m.end()
        name = m[1]
        if name is None:  # a whole <ref>: what the general case below would do with it
            continue
        name = name.lower()
        if m[2][-1:] == "/" or name in unclosed:  # <ref name=x/>, or a tag never closed
            continue
        i = s.find("<", pos)
        if i >= 0 and s.startswith(_CLOSE_TAG[name], i):  # usually the first "<" closes the element
            if name == "nowiki":
                out.append(s[pos:i].translate(_NOWIKI_ESCAPE))
            pos = i + len(_CLOSE_TAG[name])
            continue
        close = closes.get(name)
        if close is None or close[0] < pos:  # reusing it keeps many unclosed tags linear
            found = _ELEMENT_CLOSE[name].search(s, pos)
            if found is None:
                unclosed.add(name)
                continue
            close = closes[name] = found.span()
        # Reopened before it closes: this tag is the unclosed one; drop just the tag. (Most elements
        # hold no "<" at all: i, the first "<", saves the regex; and a tag that is reopened is
        # mostly reopened right there, at i.)
        if 0 <= i < close[0] and (_ELEMENT_REOPEN[name].match(s, i, close[0])
                                  or _ELEMENT_REOPEN[name].search(s, i + 1, close[0])):
            # Then so is each tag of a chain of them reopened at their first "<" (`<ref>` * k):
            # those go at once, their text stays; the chain's last one is for the loop.
            chain = _ELEMENT_CHAIN[name].match(s, i, close[0])
            if chain and chain.start(1) > i:
                out.append(s[pos:i])
                out.append(_ELEMENT_REOPEN[name].sub("", s[i : chain.start(1)]))
                pos = chain.start(1)
            continue
        if name == "nowiki":
            out.append(s[pos : close[0]].translate(_NOWIKI_ESCAPE))
        pos = close[1]
    out.append(s[pos:])
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Pass 2: drop reference-only sections

# Line-start patterns match "\n" rather than use ^ and re.M: a literal first character lets the
# regex engine skip ahead with a fast search instead of trying every position (2-3x faster). The
# text is processed with a "\n" in front for this.
# The lookahead turns away at once a line that cannot be a heading (it must end with "=", maybe then
# spaces): the lazy title below tries the closing "=" at each character, which on a line of "="
# made this 40x slower than article text. The closing run is possessive: giving back one "=" can
# never lead to a match (what follows is spaces, then the line's end), it only cost 6 tries per "=".
# Groups: the heading (without its "\n"), its opening "=", title, closing "=" (see _drop_sections).
_HEADING = re.compile(r"\n(?==[^\n]*=[ \t]*+(?:\n|$))((={1,6})([^\n]+?)(={1,6}+)[ \t]*+)(?=\n|$)")
# Markup around a heading's name, removed from all titles at once, joined by "\n" (so no "\n" here)
_HEADING_NOISE = re.compile(r"'{2,}|\[\[|\]\]|<[^<>\n]*>|&nbsp;")
_NAME_STRIP = operator.methodcaller("strip", " \t=:")
_DROP_NAMES = frozenset(_DROP_SECTIONS | _DROP_TOP_SECTIONS)


def _drop_sections(s: str) -> str:
    """Drop the sections named in _DROP_SECTIONS (and _DROP_TOP_SECTIONS at level 1-2), with their
    subsections. The names of all headings are found with string methods over all titles at once,
    and the Python loop over headings starts at the first one to drop (most articles: near the
    end; many headings used to cost a loop round each, 15x the time of article text)."""
    parts = _HEADING.split(s)  # text, heading, "=", title, "=", text, heading, ...
    if len(parts) == 1:
        return s
    titles = "\n".join(parts[3::5])
    if "'" in titles or "[" in titles or "]" in titles or "<" in titles or "&" in titles:
        titles = _HEADING_NOISE.sub("", titles)
    names = list(map(_NAME_STRIP, titles.lower().split("\n")))
    found = _DROP_NAMES.intersection(names)
    if not found:
        return s
    pieces = [""] * (2 * len(names) + 1)  # texts, and between them the headings with their "\n"
    pieces[0::2] = parts[0::5]
    pieces[1::2] = map("\n".__add__, parts[1::5])
    out, keep, skip_level = [], 0, 0  # keep: pieces from here on are kept (skip_level 0)
    for i in range(min(map(names.index, found)), len(names)):
        level = min(len(parts[5 * i + 2]), len(parts[5 * i + 4]))
        if skip_level and level > skip_level:
            continue  # a subsection of the dropped section goes with it
        if skip_level:
            skip_level = 0
            keep = 2 * i + 1
        name = names[i]
        if name in _DROP_SECTIONS or (level <= 2 and name in _DROP_TOP_SECTIONS):
            out += pieces[keep : 2 * i + 1]
            skip_level = level
    if not skip_level:
        out += pieces[keep:]
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Pass 3: templates and tables

_PARAM = re.compile(r"\{\{\{([^{}|]*)(?:\|([^{}]*))?\}\}\}")  # {{{1|default}}} -> default
_TEMPLATE_NAME = re.compile(r"[^{}|\[\]]{0,200}")
_NAME_ON_LINE = re.compile(r"[^{}|\[\]\n]*")
# Internal markers are ASCII control characters, which XML 1.0 (so every dump) cannot contain:
# unlike private-use characters they keep an ASCII article an ASCII string, CPython's fastest kind.
_PIPE = "\x01"  # {{!}}: a literal pipe that must not split arguments; restored at the very end


def _template_key(name: str) -> str:
    key = " ".join(name.replace("_", " ").split()).lower()
    if key.startswith("template:"):
        key = key[9:].lstrip()
    elif ":" in key:  # parser function or magic word with argument: {{formatnum:1234}}, {{#if:..}}
        key = key.split(":", 1)[0] + ":"
    return key


def _split_args(body: str) -> tuple[list[str], dict[str, str]]:
    """Split a template body at pipes outside [[links]]: positional and named arguments."""
    parts = body.split("|")
    if "[[" in body:
        parts = _glue_links(parts)
    if "=" not in body:  # positional arguments only (most rendered templates): no loop
        return list(map(str.strip, parts[1:])), {}
    positional, named = [], {}
    for arg in parts[1:]:  # parts[0] is the template name
        key, eq, value = arg.partition("=")
        if eq and "[[" not in key and "<" not in key:
            key = key.strip().lower()
            # {{x|2=b}} sets the second positional argument. Not "0" or "²" (isdigit, yet no
            # position: they crashed this), nor a number past the arguments written: padding the
            # list up to {{x|99999999=a}} took seconds and memory. Those are named.
            if key.isdecimal() and 0 < (k := int(key)) <= len(parts) + 16:
                if len(positional) < k:
                    positional += [""] * (k - len(positional))
                positional[k - 1] = value.strip()
            else:
                named[key] = value.strip()
        else:
            positional.append(arg.strip())
    return positional, named


def _glue_links(parts: list[str]) -> list[str]:
    """Glue back the pieces of [[target|label]] that splitting at "|" cut apart: from a piece that
    opens more [[ than it closes up to the piece where the count of open links is back at 0 (never
    below 0 after a piece). Only pieces with brackets change the count, so the loop visits those
    alone, and each run is joined once (gluing piece by piece to a growing string was quadratic in
    the number of pipes inside an unclosed [[)."""
    marked = [k for k, part in enumerate(parts) if "[[" in part or "]]" in part]
    glued, done, depth, start = [], 0, 0, 0
    for k in marked:
        change = parts[k].count("[[") - parts[k].count("]]")
        if depth == 0:
            if change > 0:
                depth, start = change, k
            continue
        depth = max(0, depth + change)
        if depth == 0:
            glued += parts[done:start]
            glued.append("|".join(parts[start : k + 1]))
            done = k + 1
    if depth > 0:  # never closed: glued to the end
        glued += parts[done:start]
        glued.append("|".join(parts[start:]))
    else:
        glued += parts[done:]
    return glued


def _param_default(m: re.Match) -> str:
    return m.group(2) or ""  # {{{1|default}}} -> default; {{{1}}} -> ""


# Frame kinds (see _expand). _OPENS: a stretch of openings taken at once; _ATTRS: in the rerun, the
# attribute line of an unclosed table, dropped up to the line's end.
_TEMPLATE, _TABLE, _OPENS, _ATTRS = 0, 1, 2, 3
# Rendered templates and kept tables re-read what they hold (a template splits its body into
# arguments, a table its text into cells), so the work grows with their depth: `"{{nowrap|a" * k`
# was quadratic. The samples nest them at most 3 deep (a rendered template in a table in a table,
# with keep_tables); a deeper one is dropped like any other template, so that nothing is re-read
# more than this many times.
_MAX_KEPT_DEPTH = 6
# Openings as the scan finds them: `{{`, and `{|` at the start of a line (after spaces, tabs, colons)
_OPENINGS = re.compile(r"\{\{|(?<![^\n])[ \t:]*+\{\|")
_TABLE_OPENING = re.compile(r"(?<![^\n])[ \t:]*+\{\|")
_CLOSINGS = re.compile(r"\}\}|(?<![^\n])[ \t]*+\|\}")  # `}}`, and `|}` at the start of a line
_NO_INDENT = str.maketrans("", "", " \t:")
# An unclosed `{{` as the rerun drops it (with its name), and an unclosed table's attribute line
# (its indent, the group, is kept)
_UNCLOSED_OPEN = re.compile(r"\{\{[^{}|\[\]\n]*")
_UNCLOSED_TABLE_LINE = re.compile(r"(?<![^\n])([ \t:]*+)\{\|[^\n]*")
_BULK = 8  # see _expand
_CLOSING_BRACES = re.compile(r"\}+")
# The tokens (see _expand): where the scan jumps past braces that form none
_TOKEN_PLACE = re.compile(r"\{\{|\}\}|(?<![^\n])(?:[ \t:]*+\{\||[ \t]*+\|\})")
_UNKNOWN = object()


def _join(items: list) -> str:
    """`_expand`'s output items as one text: strings, and kept tables' lines (lists) as the text
    `_table_text` used to return."""
    try:
        return "".join(items)
    except TypeError:
        return "".join(item if type(item) is str else "\n" + "\n".join(item) + "\n" for item in items)


def _stretch(s: str, pos: int, c: int, params: bool) -> tuple[tuple[str, int, int] | None, int]:
    """The openings from pos up to the next closing token, when there are many: their kinds ("{"
    for `{{`, "|" for `{|`), the position of the first one's brace, and the end of the last one
    (None when there are few, or a `{{{` that `_expand` must see first); and where the stretch
    ends (no need to look again before). c: the next "}" (-1: none)."""
    if 0 <= c and c + 1 < len(s) and s[c + 1] == "}" and s.count("{", pos, c) < 2 * _BULK:
        return None, c  # (the usual case, answered without a regex: few before a `}}`)
    closing = _CLOSINGS.search(s, pos)
    end = len(s) if closing is None else closing.start()
    if s.count("{", pos, end) < 2 * _BULK or not params and s.find("{{{", pos, end) >= 0:
        return None, end
    kinds = _kinds(s, pos, end)
    if len(kinds) < _BULK:
        return None, end
    if "|" not in kinds:  # only `{{`: string methods (no object per token)
        first = s.find("{{", pos, end)
        last = s.rfind("{{", pos, end)
        before = s[pos:last]  # the last one ends there, or one later in an odd run of braces
        last += 1 if (len(before) - len(before.rstrip("{"))) % 2 else 2
    else:
        first = _OPENINGS.search(s, pos, end).end() - 2
        last = collections.deque(_OPENINGS.finditer(s, pos, end), maxlen=1)[0].end()  # (in C)
    return (kinds, first, last), end


def _kinds(s: str, start: int, end: int) -> str:
    """The openings the scan finds from start to end, each as "{" (`{{`) or "|" (`{|`)."""
    if s.find("{|", start, end) < 0:
        return "{" * s.count("{{", start, end)  # (counted as the scan finds them: left to right)
    return "".join(_OPENINGS.findall(s, start, end)).translate(_NO_INDENT)[1::2]


def _expand(s: str, title: str, keep_tables: bool, params: bool = False) -> str:
    r"""One bracket-depth scan over template and table tokens, innermost first.

    Frames on the stack are tuples (kind, index in `out` where its content starts, dropped, source
    position, renderer or state, stack index of the template frame below). Content of a dropped
    frame (and of anything inside it) is never even collected. A `}}` finds its template by that
    last index: walking the stack over the tables above it made every stray `}}` inside n open
    tables cost n.

    If frames are still open at the end, their openings are marked and the scan is rerun from the
    outermost one with those openings ignored: an unclosed `{{` loses its name, an unclosed `{|` its
    attribute line, whose tokens are still paired (dropped) as in the first scan. Pairs of the rerun
    are then the same as before, so one rerun suffices, and nothing after an unclosed `{{` is lost.
    The rerun reuses the first scan's pairs: a frame that is dropped and that the first scan saw
    closed (`closes`) is stepped over whole, not scanned again.
    (Skipping the attribute line's tokens, as this scan once did, could unpair a `{{` there from its
    `}}` on a later line: each rerun then found new unclosed frames, a rerun per table.)

    The tokens are found with `str.find`, which jumps from brace to brace (memchr): the regex
    `\{\{|\}\}|\{\||\|\}` has no literal to jump to, so the engine would test every character (4x
    slower); `o` and `c`, the next "{" and "}", stay valid until passed, so each part of the text is
    searched once. Inline: a generator cost a call per token. A Python loop round per token is what
    junk made of braces costs (0.3-0.5 us, twice for an unclosed one), so rounds are saved where
    the outcome is known: a `{{` with no token before its `}}` (most templates) is rendered or
    dropped at once, without a frame, and so is a dropped one with no `{{` before its `}}` (tables
    inside it end with it); braces that form no token are passed with one regex search;
    and where many openings follow each other with no closing token between, inside a dropped
    frame _BULK deep, they are taken at once: one _OPENS frame holds their kinds and how many are
    still open (string methods count them), `}}` and `|}` close them from the end (a run of `}}`
    at once), and in the rerun the ones still open are dropped by two regex substitutions.

    Template parameters (`{{{1|default}}}`, in pages that copy a template's code) are substituted
    first, when the scan meets a `{{{` (`params`: they have been): searching the text for `{{{`
    beforehand would cost a pass over every article for the few that have them.
    """
    out: list = []  # text, and the lines of kept tables (lists; see _table_text)
    stack: list[tuple] = []
    ignored: set[int] = set()  # rerun: positions of unclosed `{{` and `{|` (never empty then)
    closes: dict[int, int] = {}  # first pass: where each dropped frame (by its opening) was closed
    close2 = 0  # the next `}}` at or after pos, once searched (-1: none)
    stretches: dict[int, int] = {}  # rerun: how many of an _OPENS frame's openings never closed
    skip = 0  # rerun: how many of the next openings are such unclosed ones
    dead: set[int] = set()  # _ATTRS frames whose line is over (by source position)
    dropping = kept = pos = 0  # dropped / collecting (not dropped) frames on the stack
    inner = -1  # stack index of the innermost frame with a template
    attrs_end = attrs_pos = -1  # while an _ATTRS frame's line lasts: its end, and where its `{|` is
    run_end = 0  # the end of the last run of "}" measured
    bulk, no_bulk = None, 0  # a stretch of openings to take at once; none before no_bulk
    n = len(s)
    find = s.find
    o = find("{")  # the next "{" and "}" at or after pos (-1: none)
    c = find("}")
    while True:
        # --- the next token: i, and t (0: `{{`, 1: `{|`, 2: `}}`, 3: `|}`). `{|` and `|}` are tokens
        # only at the start of a line (after spaces, tabs, and for `{|` colons); inside a line they
        # are text, or a `}}` (in `|}}`, an empty last argument and the template's close).
        if 0 <= o < pos:
            o = find("{", pos)
        if 0 <= c < pos:
            c = find("}", pos)
        while True:
            if o >= 0 and (o < c or c < 0):
                if o + 1 < n:
                    t = s[o + 1]
                    if t == "{":
                        i, t = o, 0
                        break
                    if t == "|" and (o == 0 or s[o - 1] == "\n"
                                     or s[o - 1] in " \t:" and _at_line_start(s, o, " \t:")):
                        i, t = o, 1
                        break
                skipped = o  # a brace of no token: jump to the next place a token could be
            elif c >= 0:
                if c > pos and s[c - 1] == "|" and (c == 1 or s[c - 2] == "\n"
                                                    or s[c - 2] in " \t" and _at_line_start(s, c - 1, " \t")):
                    i, t = c - 1, 3
                    break
                if c + 1 < n and s[c + 1] == "}":
                    i, t = c, 2
                    break
                skipped = c
            else:
                i = t = -1
                break
            # (one regex search rather than a round per brace: "{}|" junk has no token at all;
            # normal text seldom has a lone brace)
            found = _TOKEN_PLACE.search(s, skipped + 1)
            if found is None:
                o = c = -1
            else:  # (-1 stays valid: searching again for what is not there cost the rest of the text)
                if 0 <= o < found.start():
                    o = find("{", found.start())
                if 0 <= c < found.start():
                    c = find("}", found.start())
        if attrs_end >= 0 and (i < 0 or i >= attrs_end):  # the attribute line is over
            pos, attrs_end = attrs_end, -1
            dropping -= 1
            if stack[-1][0] == _ATTRS:
                stack.pop()
            else:  # a `{{` on the line is still open: the frame goes when it surfaces
                dead.add(attrs_pos)
        if i < 0:
            if not stack:
                out.append("" if dropping else s[pos:])
                break
            ignored.add(-1)
            for frame in stack:
                if frame[0] == _OPENS:
                    stretches[frame[3]] = frame[4][1]
                if frame[0] != _ATTRS:
                    ignored.add(frame[3])
            del out[stack[0][1] :]
            pos, stack, inner, dropping, kept, dead = stack[0][3], [], -1, 0, 0, set()
            o = find("{", pos)  # going back: search afresh
            c = find("}", pos)
            continue
        if not dropping:
            out.append(s[pos:i])
        pos = i + 2
        if t < 2:  # an opening
            if t == 0 and not params and pos < n and s[pos] == "{":  # "{{{": see the docstring
                return _expand(_PARAM.sub(_param_default, s), title, keep_tables, params=True)
            if ignored and (skip or i in ignored):  # rerun: an unclosed one
                count = stretches.pop(i, 0)  # the first of a stretch: its unclosed ones at once?
                if count and attrs_end < 0:
                    closing = _CLOSINGS.search(s, i)
                    end = n if closing is None else closing.start()
                    start = i if t == 0 else _line_start(s, i)
                    kinds = _kinds(s, start, end)
                    upto, rest = -1, 0  # (rest: unclosed ones after upto)
                    if count == len(kinds):
                        last_line = s.rfind("\n", i, end) + 1
                        if end == n or not _TABLE_OPENING.search(s, max(last_line, start), end):
                            upto = end  # (no attribute line goes on past the closing token)
                        elif last_line > start:  # all but the last line's (its line goes on)
                            upto = last_line - 1
                            rest = count - len(_kinds(s, start, upto))
                    elif "|" not in kinds[:count]:
                        last = next(itertools.islice(_OPENINGS.finditer(s, start, end), count - 1, None))
                        upto = _NAME_ON_LINE.match(s, last.end()).end()
                    if upto >= 0:
                        if not dropping:  # (a stand-in for what precedes: "{{" is not at a line start)
                            text = ("x" if t == 0 else "\n") + s[start:upto]
                            if "|" in kinds:
                                text = "".join(_UNCLOSED_TABLE_LINE.split(text))
                            text = _UNCLOSED_OPEN.sub("", text)
                            out.append(text[1 + i - start :])
                        pos, skip = upto, rest
                        continue
                if count:
                    skip = count
                if skip:
                    skip -= 1
                if t == 0:  # drop `{{` and its name only
                    if pos < n and s[pos] not in "{}|[]\n":  # (else it has none)
                        pos = _NAME_ON_LINE.match(s, pos).end()
                    continue
                # a table: drop its attribute line, keep what follows
                nl = find("\n", pos)
                if nl < 0:
                    nl = n
                o = find("{", pos)  # (o, c: the next braces, as the scan needs them anyway)
                if 0 <= c < pos:
                    c = find("}", pos)
                if (0 <= o < nl and o in closes and closes[o] > nl and (c < 0 or c > o)
                        and s.startswith("{{", o) and (params or not s.startswith("{", o + 2))):
                    pos = closes[o]  # a template opened on the line and closed after it: all dropped
                    continue
                if 0 <= o < nl or 0 <= c < nl:  # a token on the line: dropped, but paired
                    attrs_end, attrs_pos = nl, i
                    stack.append((_ATTRS, len(out), True, i, None, None))
                    dropping += 1
                else:
                    pos = nl
                continue
            if ignored and i in closes:  # rerun: a frame the first pass dropped whole, and saw closed
                drop = dropping or t == 1 and (not keep_tables or kept >= _MAX_KEPT_DEPTH)
                if not drop and t == 0:
                    drop = kept >= _MAX_KEPT_DEPTH or _renderer(_TEMPLATE_NAME.match(s, pos).group()) is None
                if drop:  # the same pair now (see the docstring): skipped, not scanned again
                    end = closes[i]
                    if attrs_end >= 0 and end > attrs_end:  # an attribute line ended inside it
                        dropping -= 1
                        if stack[-1][0] == _ATTRS:
                            stack.pop()
                        else:
                            dead.add(attrs_pos)
                        attrs_end = -1
                    pos = end
                    continue
            if t == 0:
                # No token before its `}}` (most templates): no frame, but what pushing one and
                # popping it at the next token would do. (o, c: the next braces, as the scan
                # needs them anyway.)
                if 0 <= o < pos:
                    o = find("{", pos)
                if 0 <= c < pos:
                    c = find("}", pos)
                if (0 <= c and (o < 0 or o > c) and c + 1 < n and s[c + 1] == "}" and attrs_end < 0
                        and not _ends_table(s, c, pos)):
                    if not dropping and kept < _MAX_KEPT_DEPTH:
                        name = _TEMPLATE_NAME.match(s, pos).group()
                        render = _RENDERERS.get(name, _UNKNOWN)
                        if render is _UNKNOWN:
                            render = _renderer(name)
                        if render is not None:
                            out.append(render(s[pos:c], title))
                    pos = c + 2
                    continue
                if not ignored and attrs_end < 0:
                    # A dropped template with no `{{` inside before its `}}`: tables inside end with
                    # it, so nothing inside matters: one round, not one per table token (and the
                    # rerun skips it by `closes`). `close2`, the next `}}`, is kept like o and c.
                    if 0 <= close2 < pos:
                        close2 = find("}}", pos)
                    if close2 >= 0 and find("{{", pos, close2) < 0 and not _ends_table(s, close2, pos):
                        drop = dropping or kept >= _MAX_KEPT_DEPTH
                        if not drop:
                            name = _TEMPLATE_NAME.match(s, pos).group()
                            render = _RENDERERS.get(name, _UNKNOWN)
                            drop = (_renderer(name) if render is _UNKNOWN else render) is None
                        if drop:
                            closes[i] = pos = close2 + 2
                            continue
            if dropping:  # (start 0: a frame on top of others is never the rerun's first)
                if t == 0:
                    stack.append((_TEMPLATE, 0, True, i, None, inner))
                    inner = len(stack) - 1
                else:
                    stack.append((_TABLE, 0, True, i, None, inner))
                dropping += 1
                if len(stack) >= _BULK and pos >= no_bulk and not ignored:
                    if 0 <= c < pos:
                        c = find("}", pos)
                    bulk, no_bulk = _stretch(s, pos, c, params)
                if bulk:
                    kinds, first, pos = bulk
                    bulk = None
                    stack.append((_OPENS, 0, True, first, [kinds, len(kinds)], inner))
                    if "{" in kinds:
                        inner = len(stack) - 1
                    dropping += 1
                continue
            if t == 1:
                if not keep_tables or kept >= _MAX_KEPT_DEPTH:
                    stack.append((_TABLE, len(out), True, i, None, inner))
                    dropping += 1
                else:
                    stack.append((_TABLE, len(out), False, i, None, inner))
                    kept += 1
                continue
            name = _TEMPLATE_NAME.match(s, pos).group()
            render = _RENDERERS.get(name, _UNKNOWN)
            if render is _UNKNOWN:
                render = _renderer(name)
            if render is None or kept >= _MAX_KEPT_DEPTH:
                stack.append((_TEMPLATE, len(out), True, i, None, inner))
                dropping += 1
            else:
                stack.append((_TEMPLATE, len(out), False, i, render, inner))
                kept += 1
            inner = len(stack) - 1
        elif t == 2:  # }}
            if inner < 0:  # stray `}}` (a run of them at once)
                if pos + 1 < n and s[pos] == "}" and s[pos + 1] == "}":
                    pos = i + (_CLOSING_BRACES.match(s, i).end() - i) // 2 * 2
                continue
            j = inner
            while len(stack) > j + 1:  # tables inside the template end with it
                kind, start, dropped, where, _, _ = stack.pop()
                if not dropped:
                    kept -= 1
                    body = out[start:]
                    del out[start:]
                    out.append(_table_text(body))
                elif kind != _ATTRS:
                    dropping -= 1
                elif where in dead:
                    dead.discard(where)
                else:
                    dropping -= 1
                    attrs_end = -1  # (cannot happen: such a `}}` would have closed the table)
            frame = stack[j]
            if frame[0] == _OPENS:  # its last template, with the tables after it
                state = frame[4]
                kinds, live = state
                live = kinds.rfind("{", 0, live)
                if pos < n and s[pos] == "}":  # a run of `}}`: as many at once as it has templates
                    if i >= run_end:  # (measured once for the run: each `}}` of a long one is here)
                        run_end = _CLOSING_BRACES.match(s, i).end()
                    more = min((run_end - i) // 2 - 1, live - kinds.rfind("|", 0, live) - 1)
                    if more > 0:
                        live -= more
                        pos += 2 * more
                state[1] = live
                if live:
                    if kinds.rfind("{", 0, live) < 0:  # only tables left in it
                        inner = frame[5]
                    continue
            stack.pop()
            inner = frame[5]
            if frame[2]:
                dropping -= 1
                if not ignored and frame[0] == _TEMPLATE:
                    closes[frame[3]] = pos
            else:
                kept -= 1
                start = frame[1]
                body = _join(out[start:])
                del out[start:]
                out.append(frame[4](body, title))
            while dead and stack and stack[-1][0] == _ATTRS and stack[-1][3] in dead:
                dead.discard(stack.pop()[3])
        else:  # |} (at the start of a line)
            top = stack[-1] if stack else None
            if top is not None and top[0] == _TABLE:
                stack.pop()
                if top[2]:
                    dropping -= 1
                    if not ignored:
                        closes[top[3]] = pos
                else:
                    kept -= 1
                    body = out[top[1] :]
                    del out[top[1] :]
                    out.append(_table_text(body))
                while dead and stack and stack[-1][0] == _ATTRS and stack[-1][3] in dead:
                    dead.discard(stack.pop()[3])
            elif top is not None and top[0] == _OPENS and top[4][0][top[4][1] - 1] == "|":
                top[4][1] -= 1
                if not top[4][1]:
                    stack.pop()
                    dropping -= 1
            elif pos < n and s[pos] == "}":
                pos = i + 1  # `|}}`: an empty last argument then the template's close
                if not dropping:
                    out.append("|")
            # (else the stray `|}` goes)
    return _join(out)


def _line_start(s: str, i: int, indent: str = " \t:") -> int:
    """Where the run of `indent` characters before i starts: the start of the line of a `{|` at i
    when only indent lies between. Walks back over those alone (not to the line start), so that
    many tokens on one long line stay linear."""
    while i > 0 and s[i - 1] in indent:
        i -= 1
    return i


def _at_line_start(s: str, i: int, indent: str) -> bool:
    """Only `indent` characters between the line's start and i."""
    i = _line_start(s, i, indent)
    return i == 0 or s[i - 1] == "\n"


def _ends_table(s: str, c: int, pos: int) -> bool:
    """The `}}` at c (after pos) starts with the `}` of a `|}` at the start of a line: a table's
    end, then a brace, not a template's close."""
    return s[c - 1] == "|" and c - 1 >= pos and _at_line_start(s, c - 1, " \t")


_CELL_SEP = re.compile(r"\|\||!!")
_ROW_MARKS = frozenset("|!")
_first_char = operator.itemgetter(0)
# Where a nested kept table's lines go in its parent's text: a line of its own that no text can make
# (the heading mark is removed from the input and only set after this pass).
_NESTED = "\n\x02\n"


def _table_text(body: list) -> list[str]:
    """keep_tables=True: one line per caption or cell, attributes dropped. `body` is `_expand`'s
    output since `{|` (strings, and lists of lines for tables inside), so its first line is the
    table's attributes.

    The lines of a table inside are taken over as they are, not joined and split again: a table
    nested d deep was re-read d times. The one thing a re-read changed is kept: a line of theirs
    that starts with `|` or `!` (a cell's text) is read again as a row, by the same rules."""
    try:
        joined = "".join(body)
        nested = None
    except TypeError:
        joined = "".join(item if type(item) is str else _NESTED for item in body)
        nested = iter([item for item in body if type(item) is not str])
    lines = []
    for line in joined.split("\n")[1:]:
        line = line.strip()
        if not line or line.startswith("|-"):
            continue
        if line.startswith("|+"):
            cells = [line[2:]]
        elif line[0] in "|!":
            cells = _CELL_SEP.split(line[1:])
        elif nested is not None and line == "\x02":
            inner = next(nested)
            if _ROW_MARKS.isdisjoint(map(_first_char, inner)):
                lines += inner
            else:
                lines += _table_text(["\n" + "\n".join(inner)])
            continue
        else:
            lines.append(line)  # a cell's continuation line
            continue
        for cell in cells:
            attrs, bar, text = cell.partition("|")
            if bar and "[[" not in attrs and "=" in attrs:
                cell = text
            if cell.strip():
                lines.append(cell.strip())
    return lines


# --- text-bearing templates --------------------------------------------------------------------
# A small set, chosen because they are frequent in article prose (counted on the samples:
# convert, lang, nowrap, small, transl, nihongo, flag, quote, as of, the Wikivoyage listings...) and
# their text is in the arguments, so rendering them is cheap and safe. Everything else is dropped.

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def _first(pos: list[str], named: dict[str, str], *keys: str) -> str:
    for k in keys:
        if named.get(k):
            return named[k]
    return pos[0] if pos else ""


def _date(pos: list[str], named: dict[str, str]) -> str:
    """{{birth date|1950|1|2}} -> January 2, 1950 (2 January 1950 with df=y)."""
    parts = [p for p in pos[:3] if p.strip()]
    if not parts or not parts[0].strip().lstrip("-").isdigit():
        return ""
    year = parts[0].strip()
    if len(parts) == 1:
        return year
    try:
        month = _MONTHS[int(parts[1]) - 1]
    except (ValueError, IndexError):
        return year
    if len(parts) == 2:
        return f"{month} {year}"
    day = parts[2].strip().lstrip("0")
    if named.get("df", "").lower() in ("y", "yes", "1", "true"):
        return f"{day} {month} {year}"
    return f"{month} {day}, {year}"


def _as_of(pos: list[str], named: dict[str, str]) -> str:
    date = _date(pos, {"df": "y"}) if pos else ""
    text = f"As of {date}" if date else "As of"
    return "a" + text[1:] if named.get("lc", "").lower() in ("y", "yes", "on", "1") else text


_UNITS = {"km2": "km²", "m2": "m²", "cm2": "cm²", "mi2": "sq mi", "sqmi": "sq mi", "sqft": "sq ft",
          "ft2": "sq ft", "km3": "km³", "m3": "m³", "C": "°C", "F": "°F", "K": "K", "acre": "acres",
          "kmh": "km/h", "km/h": "km/h", "mph": "mph", "sqkm": "km²"}
_RANGE = {"-": "–", "–": "–", "to": " to ", "and": " and ", "or": " or ", "by": " by ", "x": " × ",
          "+/-": " ± ", "±": " ± ", "to(-)": " to "}


def _convert(pos: list[str], named: dict[str, str]) -> str:
    """{{convert|5|km|mi}} -> 5 km; {{convert|5|to|10|km}} -> 5 to 10 km."""
    if len(pos) < 2:
        return pos[0] if pos else ""
    pieces, k = [pos[0]], 1  # (an index, not rest = rest[2:]: quadratic in a long range)
    while len(pos) - k >= 2 and pos[k] in _RANGE:
        pieces += (_RANGE[pos[k]], pos[k + 1])
        k += 2
    unit = pos[k] if k < len(pos) else ""
    return f"{''.join(pieces)} {_UNITS.get(unit, unit)}".strip()


def _frac(pos: list[str], named: dict[str, str]) -> str:
    if len(pos) >= 3:
        return f"{pos[0]} {pos[1]}/{pos[2]}"
    if len(pos) == 2:
        return f"{pos[0]}/{pos[1]}"
    return f"1/{pos[0]}" if pos else ""


def _val(pos: list[str], named: dict[str, str]) -> str:
    text = pos[0] if pos else ""
    if len(pos) >= 2 and pos[1]:
        text += "±" + pos[1]
    if named.get("e"):
        text += "×10^" + named["e"]
    unit = named.get("u") or named.get("ul") or ""
    return f"{text} {unit}".strip()


def _listing(pos: list[str], named: dict[str, str]) -> str:
    """Wikivoyage listings ({{see}}, {{eat}}, {{listing}}, {{vCard}}, elwikivoyage's {{proorismos}},
    ...): their name and description are the article's content: `name (alt), address. directions.
    hours. price. content` (de: `description`)."""
    head = named.get("name", "")
    if named.get("alt"):
        head += f" ({named['alt']})"
    if named.get("address"):
        head += f", {named['address']}"
    text = head
    for key in ("directions", "hours", "price", "content", "description"):
        value = named.get(key, "")
        if not value:
            continue
        if value[0] in "—–-":  # Wikivoyage writes "name — description"
            text += " " + value
        elif value[0].islower() and text:  # "name, which ..."
            text = text.rstrip(". ") + ", " + value
        else:
            text = (text.rstrip(". ") + ". " if text else "") + value
    return text


def _nihongo(pos: list[str], named: dict[str, str]) -> str:
    extra = ", ".join(p for p in pos[1:3] if p)
    return f"{pos[0]} ({extra})" if pos and extra else (pos[0] if pos else "")


def _citation(pos: list[str], named: dict[str, str]) -> str:
    # fr {{citation|text}} is a quotation; en {{citation|title=..}} is a reference: keep only the former.
    return f"« {pos[0]} »" if len(pos) == 1 and not named else ""


Renderer = Callable[[list[str], dict[str, str]], str]


_CONSTANTS: dict[Renderer, str] = {}  # the renderers of _const, and their text


def _const(text: str) -> Renderer:
    def render(pos: list[str], named: dict[str, str]) -> str:
        return text

    _CONSTANTS[render] = text
    return render


def _arg(index: int, *keys: str) -> Renderer:
    return lambda pos, named: _first(pos[index:], named, *keys)


def _last(pos: list[str], named: dict[str, str]) -> str:
    return pos[-1] if pos else ""


_RENDER_ARGS: dict[str, Renderer] = {
    # formatting wrappers: the text is the first argument
    **{k: _arg(0, "text", "1") for k in (
        "nowrap", "nobr", "nobreak", "no wrap", "small", "smaller", "big", "larger", "smallcaps",
        "sc", "sc1", "sc2", "sub", "sup", "nobold", "noitalic", "noitalics", "em", "strong", "var",
        "mvar", "math", "tooltip", "abbr", "abbrlink", "center", "midsize", "large", "huge",
        "not a typo", "proper name", "flag", "flagcountry", "flagu", "flag country", "angbr",
        "formatnum:",
    )},
    "lien": _arg(0, "fr", "texte", "1"),  # fr {{lien|Titre|lang=en|trad=Title}}
    **{k: _arg(0, "text", "quote", "1") for k in ("quote", "blockquote", "cquote", "quotation",
                                                    "rquote", "quote box", "poemquote")},
    **{k: _arg(0, "lt", "1") for k in ("ill", "interlanguage link", "interlanguage link multi")},
    "lang": _arg(1, "text", "2"),
    "resize": _last,
    "transl": _last,
    "transliteration": _last,
    "sortname": lambda pos, named: " ".join(pos[:2]),
    "nihongo": _nihongo,
    "citation": _citation,
    "date": lambda pos, named: " ".join(p for p in pos[:3] if p),  # fr {{date|1|janvier|2000}}
    "unité": lambda pos, named: " ".join(p for p in pos[:2] if p),
    "nombre": lambda pos, named: " ".join(p for p in pos[:2] if p),
    "convert": _convert,
    "cvt": _convert,
    "frac": _frac,
    "sfrac": _frac,
    "fraction": _frac,
    "val": _val,
    "as of": _as_of,
    "circa": lambda pos, named: f"c. {pos[0]}" if pos else "c.",
    "c.": lambda pos, named: f"c. {pos[0]}" if pos else "c.",
    "floruit": lambda pos, named: f"fl. {pos[0]}" if pos else "fl.",
    "fl.": lambda pos, named: f"fl. {pos[0]}" if pos else "fl.",
    **{k: lambda pos, named: _date(pos, named) for k in (
        "birth date", "death date", "birth date and age", "death date and age", "start date",
        "end date", "start date and age", "dob", "birth-date", "death-date", "film date",
    )},
    # Wikivoyage listings: en (and it, ...) by type; de {{vCard}}; el destinations, cities, access, events
    **{k: _listing for k in ("see", "do", "buy", "eat", "drink", "sleep", "listing", "go", "vcard", "proorismos",
                             "προορισμός", "city", "prosvasi", "πρόσβαση", "event")},
    "marker": _arg(0, "name"),
    # constants
    "ndash": _const("–"), "mdash": _const("—"), "snd": _const(" – "), "spaced ndash": _const(" – "),
    "spaced en dash": _const(" – "), "nbsp": _const(" "), "'": _const("'"), "'s": _const("'s"),
    "!": _const(_PIPE), "=": _const("="), "·": _const(" · "), "dot": _const(" · "),
    "middot": _const(" · "), "bull": _const(" • "), "okina": _const("ʻ"),
    "e": lambda pos, named: f"×10^{pos[0]}" if pos else "e",  # en {{e|5}}; fr XIX{{e}}
    "er": _const("er"), "re": _const("re"), "1er": _const("1er"), "ier": _const("Ier"),
}

_CENTURY = re.compile(r"[ivxlc]+(?:e|er) (?:siècle|millénaire)(?: av\. j\.-c\.)?$")  # {{XIXe siècle}}
_MAGIC_TEXT = {"pagename", "pagenamee", "fullpagename", "fullpagenamee", "subpagename"}
_CASE_FUNCTIONS = {"lc:": str.lower, "uc:": str.upper, "ucfirst:": lambda t: t[:1].upper() + t[1:],
                   "lcfirst:": lambda t: t[:1].lower() + t[1:]}


def _render_for(key: str) -> Callable[[str, str], str] | None:
    """How to render a template body, or None when the template is dropped (the common case)."""
    if key in _RENDER_ARGS:
        fn = _RENDER_ARGS[key]
        if key.endswith(":"):  # the first "argument" is after the colon: {{formatnum:1234}}
            return lambda body, title: fn([body.split(":", 1)[1].split("|")[0].strip()], {})
        if fn in _CONSTANTS:  # its arguments make no difference: not split ({{!}} in tables)
            text = _CONSTANTS[fn]
            return lambda body, title: text
        return lambda body, title: fn(*_split_args(body))
    if key.startswith("lang-"):  # {{lang-fr|texte}}
        return lambda body, title: _first(*_split_args(body), "text", "1")
    if key in _MAGIC_TEXT:
        return lambda body, title: title
    if key in _CASE_FUNCTIONS:
        case = _CASE_FUNCTIONS[key]
        return lambda body, title: case(body.split(":", 1)[1])
    if _CENTURY.match(key):  # its name is its text
        return lambda body, title: body.strip()
    return None


_RENDERERS: dict[str, Callable[[str, str], str] | None] = {}  # by raw name, as written


def _renderer(name: str) -> Callable[[str, str], str] | None:
    """`_render_for` memoised on the raw name: the same few thousand names recur in every article."""
    try:
        return _RENDERERS[name]
    except KeyError:
        render = _render_for(_template_key(name))
        if len(_RENDERERS) < 50_000:  # bounded: a whole dump has far more distinct names
            _RENDERERS[name] = render
        return render


# ----------------------------------------------------------------------------------------------
# Pass 4: links, quotes, tags, headings, lists

# [http://x label] -> label. The label must start non-blank, or a long run of spaces would make the
# regex backtrack quadratically. The lookahead (the schemes' first letters, any case under re.I)
# turns away the "[" of every wiki link with one test instead of nine: 2x faster.
_EXT_LINK = re.compile(r"\[(?=[hfmnigs/])(?:https?:|ftp:|//|mailto:|news:|irc:|ircs:|gopher:|sftp:)"
                       r"[^\s\[\]<>\"]*(?:[ \t]+([^\s\[\]][^\[\]\n]*)?)?\]", re.I)
# [[target|label]]; labels may hold single brackets but not another [[ or ]]. The link trail
# ([[bank]]s) needs no handling: it is text that follows the label anyway. Possessive quantifiers
# (*+: no backtracking, which could never lead to a match here) make this 20 % faster.
_LINK = re.compile(r"\[\[([^\[\]|\n]*+)(?:\|([^\[\]\n]*+(?:(?:\[(?!\[)|\](?!\]))[^\[\]\n]*+)*+))?\]\]")


# Image links are the one kind whose caption may run over several lines; one [[ that never closes
# is cut to the end of its line (see `_UNCLOSED_NS_LINK`), so this cannot swallow paragraphs.
# Namespace names are tried (as a trie, see `_trie`) only where the lookahead sees a name's shape:
# up to two words of at most _NS_WORD characters, then a colon. That shape is all a name can have
# (checked in the tests), and most `[[` fail it at the first character, `[[[[` or `[[ ` junk too.
_NS_WORD = max(len(word) for name in _FILE_NS | _CATEGORY_NS for word in name.split(" "))
_NS_NAME = (r"(?=[^\s:\[\]|]{1,%d}+(?: [^\s:\[\]|]{1,%d}+)?[ \t]*+:)(?:%s)"
            % (_NS_WORD, _NS_WORD, _trie(_FILE_NS | _CATEGORY_NS)))
_FILE_LINK = re.compile(r"\[\[[ \t]*+%s[ \t]*+:[^\[\]]*+(?:(?:\[(?!\[)|\](?!\]))[^\[\]]*+)*+\]\]"
                        % _NS_NAME, re.I)
# (possessive spaces: backtracking into a run of them tried every namespace at every space)
_UNCLOSED_NS_LINK = re.compile(r"\[\[[ \t]*+%s[ \t]*+:[^\n]*" % _NS_NAME, re.I)


def _link(target: str, label: str | None) -> str:
    """What [[target|label]] shows (label None: [[target]]). The common cases are also inlined in
    `_resolve_links`."""
    target = target.strip()
    if target.startswith(":"):  # [[:Category:X]] is a visible link, shown here without "Category:"
        target = target[1:].lstrip()
        prefix, colon, rest = target.partition(":")
        if colon and (prefix.strip().lower() in _CATEGORY_NS or prefix.strip().lower() in _FILE_NS):
            target = rest.strip()
    elif ":" in target:
        prefix, _, rest = target.partition(":")
        prefix = prefix.strip()
        lower = prefix.lower()
        if lower in _FILE_NS or lower in _CATEGORY_NS or _LANG_PREFIX.match(prefix):
            return ""  # image with its caption, category, interlanguage link: none of it is prose
        if lower in _INTERWIKI and label is None:
            if ":" in rest:  # [[commons:Category:X]], [[wikipedia:el:X]]: sister-project boxes
                return ""
            target = rest
    if label is None:
        return target.lstrip("#").replace("_", " ")
    if not label.strip():  # the pipe trick [[Foo (bar)|]] shows "Foo"
        return target.split(" (")[0]
    return label


# Chinese wikis' language-variant markup: -{zh-hans:计算机; zh-hant:電腦;}- shows one variant (the first
# here), -{A|text}- shows text, -{H|rule}- defines a rule and shows nothing, -{text}- shows text.
_VARIANTS = re.compile(r"-\{([^{}]*)\}-")
_VARIANT_CODE = re.compile(r"\s*[a-z]{2,3}(?:-[a-z]+)*\s*:")


def _variant(m: re.Match) -> str:
    text = m.group(1)
    flags, bar, rest = text.partition("|")
    if bar and len(flags) <= 3 and flags.strip().isalpha():  # -{A|..}-, -{H|..}-, -{T|..}-
        if "H" in flags or "T" in flags or "-" in flags:
            return ""
        text = rest
    if _VARIANT_CODE.match(text):
        return text.split(";", 1)[0].split(":", 1)[1].strip()
    return text


def _resolve_links(s: str) -> tuple[str, int]:
    """`_LINK.subn(lambda m: _link(*m.groups()), s)`, 1.2-1.4x faster: `split` finds the links in
    C (text, target, label, text, ...), and the two common kinds, [[target]] and [[target|label]]
    with no namespace, are shown by an expression in a comprehension, not a call per link."""
    parts = _LINK.split(s)
    if len(parts) == 1:
        return s, 0
    shown = [
        label if label and ":" not in target and not label.isspace()  # (isspace() is False for "")
        else target.strip().lstrip("#").replace("_", " ") if label is None and ":" not in target
        else _link(target, label)
        for target, label in zip(parts[1::3], parts[2::3])
    ]
    parts[1::3] = shown
    del parts[2::3]
    return "".join(parts), len(shown)


_MAX_LINK_NESTING = 8  # real pages nest 2 deep (a link in an image caption); deeper is junk, scrubbed


def _links(s: str) -> str:
    if "[" not in s:
        return s
    s = _EXT_LINK.sub(lambda m: m.group(1) or "", s)
    left = "[[" in s  # kept up to date, so that each pass costs one search of the text, not three
    for _ in range(_MAX_LINK_NESTING):  # innermost first: each pass resolves one level of nesting
        if not left:
            break
        s, n = _resolve_links(s)
        left = "[" in s and "[[" in s  # (see below)
        if left:
            s, n_files = _FILE_LINK.subn("", s)
            if n_files:
                n += n_files
                left = "[" in s and "[[" in s
        if not n:
            break
    if left:
        s = _UNCLOSED_NS_LINK.sub("", s)
    return s


# Bold and italic marks, as the three str.replace of 5, 3 and 2 quotes in turn would remove them
# from a run: in one pass (the alternatives share a literal prefix, which the engine searches for)
_QUOTES = re.compile(r"''(?:'''|'|)")
_BLOCK_TAGS = ("br", "p", "div", "li", "ul", "ol", "dl", "dd", "dt", "tr", "table", "blockquote",
               "poem", "center", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "caption")
_INLINE_TAGS = ("span", "small", "big", "sub", "sup", "b", "i", "u", "s", "strike", "del", "ins",
                "abbr", "cite", "code", "tt", "kbd", "samp", "var", "q", "mark", "em", "strong",
                "font", "bdi", "bdo", "ruby", "rb", "rp", "rt", "rtc", "wbr", "dfn", "time", "data",
                "td", "th", "a", "onlyinclude", "noinclude", "section", "templatestyles",
                "languages", "translate", "tvar", "nowiki", *_DROP_ELEMENTS)
_BLOCK_TAG = re.compile(r"</?%s%s\b[^<>]*>" % (_first_letters(_BLOCK_TAGS), _trie(_BLOCK_TAGS)), re.I)
_INLINE_TAG = re.compile(r"</?%s%s\b[^<>]*>" % (_first_letters(_INLINE_TAGS), _trie(_INLINE_TAGS)), re.I)
# __NOTOC__, __БЕЗ_ОГЛАВЛЕНИЯ__: upper-case ASCII or any non-ASCII letters (never Python's __init__)
_MAGIC_WORD = re.compile(r"__(?:[A-Z]|[^\x00-\x7f\W])(?:[A-Z0-9]|[^\x00-\x7f\W]|_(?!_))*__")
# ={1,6}, not =+: no blow-up on "====…x"; the lookahead and the possessive run: see _HEADING
_HEADING_LINE = re.compile(r"\n(?==[^\n]*=[ \t]*+(?:\n|$))(={1,6})([^\n]*?)={1,6}+[ \t]*+(?=\n|$)")
_LIST_MARKER = re.compile(r"\n[ \t]*[*#:;]+[ \t]*")
_HEADING_MARK = "\x02"  # heading lines are "\x02==\x02Title" until the line pass
_HEADING_ROW = re.compile(r"\n\x02(=+)\x02([^\n]*)")

# ----------------------------------------------------------------------------------------------
# Pass 5: entities and debris

_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
# `html.unescape` calls a Python function for every "&" followed by a name-like word, entity or
# not: text made of "&a" took 10x article text. This is its regex and function, with a lookahead
# that lets through only the "&" it changes: a "#", or the start of an HTML5 entity name (it
# replaces the longest name that begins the word). Where the html module is laid out otherwise,
# `html.unescape` itself.
try:
    _CHARREF = re.compile(r"&(?=[#a-zA-Z])(?=#|%s)%s" % (_trie(html.entities.html5), html._charref.pattern[1:]))
    _replace_charref = html._replace_charref
except AttributeError:
    _CHARREF = None


def _unescape(s: str) -> str:
    return html.unescape(s) if _CHARREF is None else _CHARREF.sub(_replace_charref, s)
# Debris patterns start with a required character, not optional spaces, for the same speed reason;
# they run after spaces are collapsed to single ones.
_EMPTY_PARENS = re.compile(r"\([\s,;:.·–—-]*\)")
_EMPTY_WIDE_PARENS = re.compile(r"（[\s,;:.·–—、，；-]*）")  # CJK full-width: separately, "(" is 10x faster
_PAREN_OPEN_DEBRIS = re.compile(r"\([ \t]*[,;:][ \t,;:]*")
# "; , )" -> ")": from the first mark of a run of marks and spaces that ends at ")". Run on the
# REVERSED text, where the pattern starts with the literal ")": the engine then jumps from one ")"
# to the next, instead of trying the pattern at every comma of the text (5x faster, reversals
# included; the result is the same, as each ")" owns the run just before it).
_PAREN_CLOSE_DEBRIS_REV = re.compile(r"\)[ ,;:]*[,;:]")
_SPACES = re.compile(r"  +")
_COMMA_RUN = re.compile(r",(?:[ \t]*,)+")
_COMMA_PAIR = re.compile(r", ?,")  # ",," or ", ,": one search, not two
# Regexes rather than str.replace, 1.4x faster: the regex engine's search for a literal looks for
# its first character ("\n", "("), rarer than the " " that str.replace's search keys on (its last).
_LINE_START_SPACE = re.compile(r"\n ")
_OPEN_PAREN_SPACE = re.compile(r"\( ")
_WORDLESS = re.compile(r"[\W_]*")
# Lines that are left-over table rows or template arguments ("| x = 1", "! Header"), or only
# punctuation ("—", "•", "(,)"): removed with their line break, so they do not split paragraphs.
_DEBRIS_LINE = re.compile(r"\n(?:\||!(?=[ \n]|$)|![^\n]*!!|(?:[^\w\n\x02]|_)+(?=\n|$))[^\n]*")
_BLANK_RUN = re.compile(r"\n\n\n+")  # not \n{3,}: a literal start lets the engine skip ahead, 17x faster
_LEFTOVER = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}")


def _has_leftover(s: str) -> bool:
    """`_LEFTOVER.search(s) is not None`, 50x faster on clean text: one-character `in` tests are
    memchr, while the regex, with no literal to jump to, tests every character."""
    return (("{" in s and ("{{" in s or "{|" in s)) or ("}" in s and ("}}" in s or "|}" in s))
            or ("[" in s and "[[" in s) or ("]" in s and "]]" in s))

_NO_BRACKETS = str.maketrans("", "", "{}[]")
# The whole run of "<" (so none can close up on "ref"); the lookbehind makes it start only at the
# run's first "<", which keeps a long run of "<" linear.
_REF_LEAK = re.compile(r"<(?<!<<)<*(?=/?ref)", re.I)


def _finish_lines(s: str) -> str:
    """Strip lines, drop punctuation-only and table-debris lines, drop headings of empty sections,
    collapse blank lines. Regexes over the whole text, and a Python loop over headings only."""
    s = _LINE_START_SPACE.sub("\n", s.replace(" \n", "\n"))  # spaces are single by now
    s = _DEBRIS_LINE.sub("", s)
    if _HEADING_MARK in s:
        s = _headings(s)
    return _BLANK_RUN.sub("\n\n", s).strip()


def _headings(s: str) -> str:
    r"""Heading lines ("\x02==\x02Title") become "Title", or go when no text follows them
    before the next heading of their level or above (the section was all templates, images...).
    What can be is computed for all headings at once with string methods; the loop that remains
    keeps one number (many headings cost a loop round each with regex calls: 10x article text)."""
    parts = _HEADING_ROW.split(s)  # text, marks, title, text, marks, title, ..., text
    marks, titles, texts = parts[1::3], parts[2::3], parts[3::3]  # texts[i]: what follows heading i
    text_after = list(map(str.strip, texts))  # (empty: none, or only spaces)
    if not any(text_after):  # no text anywhere: no heading stays
        parts[1::3] = [""] * len(titles)
        del parts[2::3]
        return "".join(parts)
    # a heading that was all template is none at all (bool: a list of match objects for many
    # headings made the garbage collector's passes long)
    wordless = list(map(bool, map(_WORDLESS.fullmatch, titles)))
    if all(text_after):  # each is followed by text
        shown = ["" if w else "\n" + t.strip() for w, t in zip(wordless, titles)]
    else:
        shown = [""] * len(titles)
        below = 0  # text lies ahead before the next heading of any level < below (levels 1-6)
        for i in range(len(titles) - 1, -1, -1):
            if text_after[i]:
                below = 7
            if wordless[i]:
                continue
            level = len(marks[i])
            if level < below:
                shown[i] = "\n" + titles[i].strip()
                below = level  # text beyond here is not under headings at or below this level
    parts[1::3] = shown
    del parts[2::3]
    return "".join(parts)


# ----------------------------------------------------------------------------------------------


def wikitext_to_text(wikitext: str, title: str = "", *, keep_tables: bool = False) -> str:
    """Clean plain text of one article's wikitext.

    `title` fills in {{PAGENAME}}; it is not added to the text. With `keep_tables`, table captions
    and cells are kept, one per line."""
    return source_to_text(wikitext_source(wikitext), title, keep_tables=keep_tables)


def wikitext_source(wikitext: str) -> str:
    """The wikitext as the cleaner's passes read it: without comments, "\n" line ends, a "\n" in
    front. Exposed so that a caller that looks at the source first (extract's disambiguation
    check) shares this pass instead of paying for a second one."""
    s = "\n" + wikitext  # see _HEADING
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if _PIPE in s or _HEADING_MARK in s:  # our internal markers (not valid XML, so never in a dump)
        s = s.replace(_PIPE, "").replace(_HEADING_MARK, "")
    if "<!--" in s:
        s = _strip_comments(s)
    return s


def source_to_text(s: str, title: str = "", *, keep_tables: bool = False) -> str:
    """`wikitext_to_text` of what `wikitext_source` made of the wikitext."""
    if "<" in s:
        s = _strip_elements(s)
    if "=" in s:
        s = _drop_sections(s)
    if "{" in s:
        s = _expand(s, title, keep_tables)
    s = _links(s)
    # Where a character is rare by now, testing for it first saves a search for the pair that
    # holds it: one-character searches are memchr, pair searches look at every character.
    if "{" in s and "-{" in s:
        s = _VARIANTS.sub(_variant, s)
    if "''" in s:
        s = _QUOTES.sub("", s)
    if "<" in s:
        s = _BLOCK_TAG.sub("\n", s)
        s = _INLINE_TAG.sub("", s)
    if "_" in s and "__" in s:
        s = _MAGIC_WORD.sub("", s)
    if "=" in s:
        # see _headings (split and string methods: a function per heading, or a template string
        # that re of Python 3.11 expands in Python code, cost a call per heading)
        parts = _HEADING_LINE.split(s)
        if len(parts) > 1:  # "\n\x02" + marks + "\x02" + title: string methods, no call per heading
            parts[1::3] = map("\n\x02".__add__, parts[1::3])
            parts[2::3] = map("\x02".__add__, parts[2::3])
            s = "".join(parts)
    s = _LIST_MARKER.sub("\n", s)
    if "&" in s:
        s = _unescape(s)
        if "&" in s and _ENTITY.search(s):  # double-escaped in the source (&amp;nbsp;)
            s = _unescape(s)
    if _PIPE in s:
        s = s.replace(_PIPE, "|")
    if "\u00ad" in s:
        s = s.replace("\u00ad", "")
    if "\t" in s or "\u00a0" in s:
        s = s.replace("\t", " ").replace("\u00a0", " ")
    s = _SPACES.sub(" ", s)
    if "(" in s:
        s, n_empty = _EMPTY_PARENS.subn("", s)
        s, n_open = _PAREN_OPEN_DEBRIS.subn("(", s)
        reverse, n_close = _PAREN_CLOSE_DEBRIS_REV.subn(")", s[::-1])
        if n_close:
            s = reverse[::-1]
        if (n_empty or n_open or n_close) and "  " in s:  # (spaces were single before these)
            s = _SPACES.sub(" ", s)
    if "（" in s:
        s = _EMPTY_WIDE_PARENS.sub("", s)
    if _COMMA_PAIR.search(s):  # "such as {{chem|A}}, {{chem|B}}, and" lost its items
        s = _COMMA_RUN.sub(",", s)
    # spaces a removed template left before punctuation ("Paris , France", "( born", "1950 )")
    s = _OPEN_PAREN_SPACE.sub("(", s.replace(" ,", ",")).replace(" )", ")")
    if " ." in s:
        s = s.replace(" . ", ". ").replace(" .\n", ".\n")
    return _finish_lines(_scrub(s[:-2] + "." if s.endswith(" .") else s))


def _scrub(s: str) -> str:
    """The last guarantee: no `{{ }} [[ ]] {| |}` or `<ref` in the output, whatever the input.

    Markup that survived the passes is malformed (or was written as entities, &#91;&#91;, or inside
    <nowiki>); its tokens are deleted. Deleting can join new pairs ("{[[{"), so it repeats, and
    input built to defeat that loses all its braces and brackets instead: still linear."""
    for _ in range(3):
        if not _has_leftover(s):
            break
        s = _SPACES.sub(" ", _LEFTOVER.sub("", s))
    else:
        if _has_leftover(s):
            s = s.translate(_NO_BRACKETS)
    if "<" in s:
        s = _REF_LEAK.sub("", s)  # "&lt;ref&gt;" written out in the source, or "<<ref>ref>"
    return s


# What must never be left in a cleaned document: the checks of bench/extract_quality.py and of the
# tests, kept here so that both measure the same thing.
MARKUP_LEAKS = {
    "{{": re.compile(r"\{\{"),
    "}}": re.compile(r"\}\}"),
    "[[": re.compile(r"\[\["),
    "]]": re.compile(r"\]\]"),
    "{|": re.compile(r"\{\|"),
    "|}": re.compile(r"\|\}"),
    "<ref": re.compile(r"<ref", re.I),
    "&ent;": _ENTITY,
    "Cat/File": re.compile(r"^[ \t]*(?:Category|File|Image|Media|Catégorie|Fichier|Κατηγορία|"
                           r"Αρχείο|Εικόνα|Категория|Файл|Картинка)[ \t]*:", re.M | re.I),
    "==": re.compile(r"^[ \t]*==.*==[ \t]*$", re.M),
    "debris": re.compile(r"\([ \t]*(?:[,;:][ \t]*)*\)"),  # what a removed template leaves: "()", "(;)"
}


def markup_leaks(text: str) -> list[str]:
    """Names of the MARKUP_LEAKS found in text (empty for a clean document)."""
    return [name for name, rx in MARKUP_LEAKS.items() if rx.search(text)]
