r"""Wikitext to clean plain text, for training on Wikipedia (and Wikivoyage, ...) dumps.

`wikitext_to_text` turns one article's wikitext into the prose a reader sees: paragraphs, list items
one per line (markers stripped), section headings as lines of their own. Everything that is not
prose goes: templates (infoboxes, navboxes, citations), tables, references, galleries, images and
their captions, categories, interlanguage links, maths, code, comments, magic words, and whole
sections that are only lists of references or links ("References", "External links", "See also",
... in several languages). `is_disambiguation` spots disambiguation pages, which are lists of links
rather than text.

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
candidates away with one test. And every pass is linear in the input: quantifiers are bounded or
cannot backtrack over the same run twice (tests feed 100k-fold repetitions of each construct).
Each fast path has a plain reference version in the tests (tests/test_wikitext.py, "the fast
paths match what they replace").

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

import html
import re
from typing import Callable

__all__ = ["wikitext_to_text", "is_disambiguation"]


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
    "references", "reference", "external links", "external link", "see also", "further reading",
    "notes", "sources", "bibliography", "footnotes", "notes and references", "references and notes",
    "citations", "works cited", "sources and references", "notes and sources",
    # fr
    "références", "notes et références", "liens externes", "lien externe", "voir aussi",
    "bibliographie", "articles connexes", "sources et références",
    # de, es, it, pt, nl
    "einzelnachweise", "weblinks", "siehe auch", "anmerkungen", "referencias", "enlaces externos",
    "véase también", "bibliografía", "note", "bibliografia", "collegamenti esterni", "voci correlate",
    "referências", "ligações externas", "ver também", "referenties", "externe links", "zie ook",
    "przypisy", "linki zewnętrzne", "zobacz też", "referenser", "externa länkar", "se även", "källor",
    "kaynakça", "dış bağlantılar", "ayrıca bakınız",
    # bg, ru, uk
    "източници", "бележки", "външни препратки", "вижте също", "външни връзки",
    "примечания", "ссылки", "см. также", "джерела", "посилання", "примітки", "див. також",
    # ja, zh
    "脚注", "出典", "参考文献", "関連項目", "外部リンク", "参见", "參見", "外部链接", "外部連結", "參考文獻",
    "注释", "註釋",
    # el (Wikipedia and Wikivoyage)
    "παραπομπές", "εξωτερικοί σύνδεσμοι", "δείτε επίσης", "βιβλιογραφία", "σημειώσεις", "πηγές",
}

# "Literature" is the bibliography at the end of a bg/ru/uk article, but the literature of a country
# in a subsection of its "Culture": dropped only as a top-level section.
_DROP_TOP_SECTIONS = {"литература", "література"}

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
_ELEMENT_OPEN = re.compile(r"<(?:ref(?:\s[^<>]*)?(?<!/)>[^<]*</ref\s*>|(%s)\b([^<>]*)>)"
                           % "|".join(_DROP_ELEMENTS), re.I)
_ELEMENT_CLOSE = {n: re.compile(r"</%s\s*>" % n, re.I) for n in _DROP_ELEMENTS}
_CLOSE_TAG = {n: f"</{n}>" for n in _DROP_ELEMENTS}  # as usually written: a str.find, not a regex
_ELEMENT_REOPEN = {n: re.compile(r"<%s\b[^<>]*?(?<!/)>" % n, re.I) for n in _DROP_ELEMENTS}
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
    closes: dict[str, re.Match] = {}  # the next closing tag of each name, while still ahead
    while m := _ELEMENT_OPEN.search(s, pos):
        out.append(s[pos : m.start()])
        pos = m.end()
        name = m.group(1)
        if name is None:  # a whole <ref>: what the general case below would do with it
            continue
        name = name.lower()
        if m.group(2).endswith("/") or name in unclosed:  # <ref name=x/>, or a tag never closed
            continue
        i = s.find("<", pos)
        if i >= 0 and s.startswith(_CLOSE_TAG[name], i):  # usually the first "<" closes the element
            if name == "nowiki":
                out.append(s[pos:i].translate(_NOWIKI_ESCAPE))
            pos = i + len(_CLOSE_TAG[name])
            continue
        close = closes.get(name)
        if close is None or close.start() < pos:  # reusing it keeps many unclosed tags linear
            close = _ELEMENT_CLOSE[name].search(s, pos)
            if close is None:
                unclosed.add(name)
                continue
            closes[name] = close
        # (most elements hold no "<" at all: a memchr saves the regex)
        if s.find("<", pos, close.start()) >= 0 and _ELEMENT_REOPEN[name].search(s, pos, close.start()):
            continue  # reopened before it closes: this tag is the unclosed one; drop just the tag
        if name == "nowiki":
            out.append(s[pos : close.start()].translate(_NOWIKI_ESCAPE))
        pos = close.end()
    out.append(s[pos:])
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Pass 2: drop reference-only sections

# Line-start patterns match "\n" rather than use ^ and re.M: a literal first character lets the
# regex engine skip ahead with a fast search instead of trying every position (2-3x faster). The
# text is processed with a "\n" in front for this.
_HEADING = re.compile(r"\n(={1,6})([^\n]+?)(={1,6})[ \t]*(?=\n|$)")
_HEADING_NOISE = re.compile(r"'{2,}|\[\[|\]\]|<[^<>]*>|&nbsp;")


def _drop_sections(s: str) -> str:
    out, pos, skip_level = [], 0, 0  # skip_level > 0: inside a dropped section of that level
    for m in _HEADING.finditer(s):
        level = min(len(m.group(1)), len(m.group(3)))
        if skip_level and level > skip_level:
            continue  # a subsection of the dropped section goes with it
        if skip_level:
            skip_level = 0
            pos = m.start()
        name = m.group(2)
        if "'" in name or "[" in name or "]" in name or "<" in name or "&" in name:  # rare: skip the call
            name = _HEADING_NOISE.sub("", name)
        name = name.strip(" \t=:").lower()
        if name in _DROP_SECTIONS or (level <= 2 and name in _DROP_TOP_SECTIONS):
            out.append(s[pos : m.start()])
            skip_level = level
    if not skip_level:
        out.append(s[pos:])
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Pass 3: templates and tables

_PARAM = re.compile(r"\{\{\{([^{}|]*)(?:\|([^{}]*))?\}\}\}")  # {{{1|default}}} -> default
_TEMPLATE_NAME = re.compile(r"[^{}|\[\]]{0,200}")
_NAME_ON_LINE = re.compile(r"[^{}|\[\]\n]*")
# Internal markers are ASCII control characters, which XML 1.0 (so every dump) cannot contain:
# unlike private-use characters they keep an ASCII article an ASCII string, CPython's fastest kind.
_PIPE = "\x01"  # {{!}}: a literal pipe that must not split arguments; restored at the very end

_TEMPLATE, _TABLE = 0, 1


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
    if "[[" in body:  # glue back the pieces of [[target|label]]
        glued, depth = [], 0
        for part in parts:
            if depth > 0:
                glued[-1] += "|" + part
            else:
                glued.append(part)
            depth = max(0, depth + part.count("[[") - part.count("]]"))
        parts = glued
    positional, named = [], {}
    for arg in parts[1:]:  # parts[0] is the template name
        key, eq, value = arg.partition("=")
        if eq and "[[" not in key and "<" not in key:
            key = key.strip().lower()
            if key.isdigit():
                n = int(key)
                while len(positional) < n:
                    positional.append("")
                positional[n - 1] = value.strip()
            else:
                named[key] = value.strip()
        else:
            positional.append(arg.strip())
    return positional, named


def _token_scanner(s: str):
    r"""A generator: send it a position, get back (start, token) of the first `{{`, `}}`, `{|` or
    `|}` at or after it, (-1, "") when there is none: what the regex `\{\{|\}\}|\{\||\|\}` would
    search. That regex has no literal to jump to, so the engine tests every character (and the `|`
    of every template argument); every token holds a brace, and `str.find` jumps to the next brace
    with memchr, 4x faster. Positions sent must not decrease (start a new scanner to go back). The
    next `{` and `}` found stay valid until passed, so each part of the text is searched once."""
    pos = yield
    o = s.find("{", pos)  # the first "{" at or after pos (-1: none left)
    c = s.find("}", pos)  # the first "}" at or after pos
    n = len(s)
    while True:
        if 0 <= o < pos:
            o = s.find("{", pos)
        if 0 <= c < pos:
            c = s.find("}", pos)
        if o >= 0 and (o < c or c < 0):  # a "{" first: "{{" or "{|" there, or look on
            if o + 1 < n and s[o + 1] in "{|":
                pos = yield o, s[o : o + 2]
            else:
                o = s.find("{", o + 1)
        elif c >= 0:  # a "}" first: "|}" ending there (the leftmost), "}}" starting there, or on
            if c > pos and s[c - 1] == "|":
                pos = yield c - 1, "|}"
            elif c + 1 < n and s[c + 1] == "}":
                pos = yield c, "}}"
            else:
                c = s.find("}", c + 1)
        else:
            pos = yield -1, ""


def _param_default(m: re.Match) -> str:
    return m.group(2) or ""  # {{{1|default}}} -> default; {{{1}}} -> ""


def _expand(s: str, title: str, keep_tables: bool, params: bool = False) -> str:
    """One bracket-depth scan over template and table tokens, innermost first.

    Frames on the stack are (kind, index in `out` where its content starts, dropped, source position,
    renderer). Content of a dropped frame (and of anything inside it) is never even collected.
    If frames are still open at the end, their openings are marked and the scan is rerun from the
    outermost one with those openings ignored: pairs of the rerun are the same as before, so one
    rerun suffices, and nothing after an unclosed `{{` is lost.

    Template parameters (`{{{1|default}}}`, in pages that copy a template's code) are substituted
    first, when the scan meets a `{{{` (`params`: they have been): searching the text for `{{{`
    beforehand would cost a pass over every article for the few that have them.
    """
    out: list[str] = []
    stack: list[tuple] = []
    ignored: set[int] = set()
    dropping = pos = 0
    n = len(s)
    tokens = _token_scanner(s)
    next(tokens)
    while True:
        i, tok = tokens.send(pos)
        if i < 0:
            if not stack:
                out.append("" if dropping else s[pos:])
                break
            ignored.update(frame[3] for frame in stack)
            del out[stack[0][1] :]
            pos, stack, dropping = stack[0][3], [], 0
            tokens = _token_scanner(s)  # going back: a fresh scanner
            next(tokens)
            continue
        if not dropping:
            out.append(s[pos:i])
        pos = i + 2
        if tok == "{{":
            if not params and s.startswith("{", pos):  # "{{{": the scan sees every one (see below)
                return _expand(_PARAM.sub(_param_default, s), title, keep_tables, params=True)
            if ignored and i in ignored:  # an unclosed template: drop `{{` and its name only
                pos = _NAME_ON_LINE.match(s, pos).end()
                continue
            render = None if dropping else _renderer(_TEMPLATE_NAME.match(s, pos).group())
            stack.append((_TEMPLATE, len(out), render is None, i, render))
            dropping += render is None
        elif tok == "}}":
            j = len(stack) - 1
            while j >= 0 and stack[j][0] != _TEMPLATE:
                j -= 1
            if j < 0:
                continue  # a stray `}}`: drop it
            while len(stack) > j:
                kind, start, dropped, _, render = stack.pop()
                if dropped:
                    dropping -= 1
                    continue
                body = "".join(out[start:])
                del out[start:]
                if kind == _TABLE:
                    out.append(_table_text(body))
                else:
                    out.append(render(body, title))
        elif tok == "{|":
            if not _at_line_start(s, i, " \t:"):
                if not dropping:
                    out.append(tok)  # `{|` inside a line is text (or a template's own syntax)
                continue
            if i in ignored:  # an unclosed table: drop its attribute line, keep what follows
                nl = s.find("\n", pos)
                nl = n if nl < 0 else nl
                if not params and s.find("{{{", pos, nl) >= 0:  # the one place the scan skips
                    return _expand(_PARAM.sub(_param_default, s), title, keep_tables, params=True)
                pos = nl
                continue
            dropped = not keep_tables or bool(dropping)
            stack.append((_TABLE, len(out), dropped, i, None))
            dropping += dropped
        else:  # "|}"
            at_start = _at_line_start(s, i, " \t")
            if stack and stack[-1][0] == _TABLE and at_start:
                _, start, dropped, _, _ = stack.pop()
                if dropped:
                    dropping -= 1
                else:
                    body = "".join(out[start:])
                    del out[start:]
                    out.append(_table_text(body))
            elif pos < n and s[pos] == "}":
                pos = i + 1  # `|}}`: an empty last argument then the template's close
                if not dropping:
                    out.append("|")
            elif not dropping and not at_start:
                out.append(tok)  # text, not a table end at the start of a line
    return "".join(out)


def _at_line_start(s: str, i: int, indent: str) -> bool:
    """Only `indent` characters between the line's start and i. Walks back over those alone (not to
    the line start), so that many tokens on one long line stay linear."""
    while i > 0 and s[i - 1] in indent:
        i -= 1
    return i == 0 or s[i - 1] == "\n"


def _table_text(body: str) -> str:
    """keep_tables=True: one line per caption or cell, attributes dropped. `body` is everything
    after `{|`, so its first line is the table's attributes."""
    lines = []
    for line in body.split("\n")[1:]:
        line = line.strip()
        if not line or line.startswith("|-"):
            continue
        if line.startswith("|+"):
            cells = [line[2:]]
        elif line[0] in "|!":
            cells = re.split(r"\|\||!!", line[1:])
        else:
            lines.append(line)  # a cell's continuation line
            continue
        for cell in cells:
            attrs, bar, text = cell.partition("|")
            if bar and "[[" not in attrs and "=" in attrs:
                cell = text
            if cell.strip():
                lines.append(cell.strip())
    return "\n" + "\n".join(lines) + "\n"


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
    text, rest = pos[0], pos[1:]
    while len(rest) >= 2 and rest[0] in _RANGE:
        text += _RANGE[rest[0]] + rest[1]
        rest = rest[2:]
    unit = rest[0] if rest else ""
    return f"{text} {_UNITS.get(unit, unit)}".strip()


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
    """Wikivoyage listings ({{see}}, {{eat}}, {{listing}}, ...): their name and description are the
    article's content: `name (alt), address. directions. hours. price. content`."""
    head = named.get("name", "")
    if named.get("alt"):
        head += f" ({named['alt']})"
    if named.get("address"):
        head += f", {named['address']}"
    text = head
    for key in ("directions", "hours", "price", "content"):
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


def _const(text: str) -> Renderer:
    return lambda pos, named: text


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
    **{k: _listing for k in ("see", "do", "buy", "eat", "drink", "sleep", "listing", "go")},
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
_NS_ALTERNATION = "|".join(sorted(map(re.escape, _FILE_NS | _CATEGORY_NS), key=len, reverse=True))
_FILE_LINK = re.compile(r"\[\[[ \t]*+(?:%s)[ \t]*+:[^\[\]]*+(?:(?:\[(?!\[)|\](?!\]))[^\[\]]*+)*+\]\]"
                        % _NS_ALTERNATION, re.I)
_UNCLOSED_NS_LINK = re.compile(r"\[\[[ \t]*(?:%s)[ \t]*:[^\n]*" % _NS_ALTERNATION, re.I)


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
_BLOCK_TAG = re.compile(r"</?(?:%s)\b[^<>]*>" % "|".join(_BLOCK_TAGS), re.I)
_INLINE_TAG = re.compile(r"</?(?:%s)\b[^<>]*>" % "|".join(_INLINE_TAGS), re.I)
# __NOTOC__, __БЕЗ_ОГЛАВЛЕНИЯ__: upper-case ASCII or any non-ASCII letters (never Python's __init__)
_MAGIC_WORD = re.compile(r"__(?:[A-Z]|[^\x00-\x7f\W])(?:[A-Z0-9]|[^\x00-\x7f\W]|_(?!_))*__")
_HEADING_LINE = re.compile(r"\n(={1,6})([^\n]*?)={1,6}[ \t]*(?=\n|$)")  # ={1,6}, not =+: no blow-up on "====…x"
_LIST_MARKER = re.compile(r"\n[ \t]*[*#:;]+[ \t]*")
_HEADING_MARK = "\x02"  # heading lines are "\x02==\x02Title" until the line pass
_HEADING_ROW = re.compile(r"\n\x02(=+)\x02([^\n]*)")

# ----------------------------------------------------------------------------------------------
# Pass 5: entities and debris

_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
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
    before the next heading of their level or above (the section was all templates, images...)."""
    parts = _HEADING_ROW.split(s)  # text, marks, title, text, marks, title, ..., text
    marks, titles, texts = parts[1::3], parts[2::3], parts[3::3]  # texts[i]: what follows heading i
    shown = [""] * len(titles)
    seen = [False] * 7  # seen[l]: text lies ahead, before the next heading of level <= l
    for i in range(len(titles) - 1, -1, -1):
        if texts[i] and not texts[i].isspace():
            seen = [True] * 7
        if _WORDLESS.fullmatch(titles[i]):
            continue  # a heading that was all template: not a heading at all
        level = len(marks[i])
        if seen[level]:
            shown[i] = "\n" + titles[i].strip()
        seen[level:] = [False] * (7 - level)  # text beyond here is not under headings at or below
    parts[1::3] = shown
    del parts[2::3]
    return "".join(parts)


# ----------------------------------------------------------------------------------------------


def wikitext_to_text(wikitext: str, title: str = "", *, keep_tables: bool = False) -> str:
    """Clean plain text of one article's wikitext.

    `title` fills in {{PAGENAME}}; it is not added to the text. With `keep_tables`, table captions
    and cells are kept, one per line."""
    s = "\n" + wikitext  # see _HEADING
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if _PIPE in s or _HEADING_MARK in s:  # our internal markers (not valid XML, so never in a dump)
        s = s.replace(_PIPE, "").replace(_HEADING_MARK, "")
    if "<!--" in s:
        s = _strip_comments(s)
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
        # see _headings (a lambda: re of Python 3.11 expands a template string in slower Python code)
        s = _HEADING_LINE.sub(lambda m: "\n\x02" + m[1] + "\x02" + m[2], s)
    s = _LIST_MARKER.sub("\n", s)
    if "&" in s:
        s = html.unescape(s)
        if "&" in s and _ENTITY.search(s):  # double-escaped in the source (&amp;nbsp;)
            s = html.unescape(s)
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


# ----------------------------------------------------------------------------------------------

_DISAMBIG_TEMPLATE = re.compile(
    r"\{\{\s*(?:template\s*:\s*)?(?:"
    r"[^{}|:]{0,40}?(?:disambiguation|disambig|disamb|dis)"  # en: dab variants, hndis, geodis, ...
    # (the lookahead: the names' first letters, so that most templates fail one test, not 22)
    r"|(?=[dhptbufнмпзα多消동])(?:dab|homonymie|patronymie|toponymie|begriffsklärung|desambiguación|"
    r"desambiguação|disambigua|ujednoznacznienie|dp|förgrening|täsmennyssivu|неоднозначность|"
    r"многозначность|пояснение|значения|неоднозначність|αποσαφήνιση|多義語|消歧义|消歧義|동음이의)"
    r")\s*[|}]",
    re.I,
)
_DISAMBIG_TITLE = re.compile(
    r"\((?:disambiguation|homonymie|begriffsklärung|desambiguación|desambiguação|disambigua|"
    r"ujednoznacznienie|значения|пояснение|αποσαφήνιση)\)\s*$",
    re.I,
)


def is_disambiguation(wikitext: str, title: str = "") -> bool:
    """True for disambiguation pages ({{disambiguation}}, {{dab}}, {{disambig}}, {{hndis}},
    {{geodis}}, ... and '(disambiguation)' titles; also other languages' common templates)."""
    if title and _DISAMBIG_TITLE.search(title):
        return True
    if "__DISAMBIG__" in wikitext:
        return True
    return "{{" in wikitext and _DISAMBIG_TEMPLATE.search(wikitext) is not None


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
