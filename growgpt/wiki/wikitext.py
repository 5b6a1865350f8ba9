r"""Wikitext to clean plain text, for training on Wikipedia (and Wikivoyage, ...) dumps.

`wikitext_to_text` turns one article's wikitext into the prose a reader sees: paragraphs, list items
one per line, headings as lines of their own. Templates, tables, references, galleries, images,
categories, interlanguage links, maths, code, comments, magic words and sections that only list
references or links ("References", "See also", ... in several languages) go. (Which pages are
disambiguation pages is `growgpt.wiki.disambiguation`'s.)

Not a real parser, for speed (mwparserfromhell alone is 5-10x too slow): a fixed sequence of passes,
each a compiled regex or a `str.find` loop in C, never a Python loop over characters, and each linear
in its input whatever the input (bench/clean_worst_case.py; tests keep a plain reference version of
every fast path). The passes: comments and non-prose elements; reference-only sections; templates and
tables (`growgpt.wiki.templates`); links, quotes, tags, magic words, headings, lists; entities, the
debris removed templates leave (`()`, ` ,`), and `_scrub`, which guarantees that no `{{`, `[[`, `{|`
or `<ref` reaches the output. Trade-offs: unbalanced markup loses only its own tag or line, never the
rest of the article; literal `{{` or `[[` in the text are deleted too; code and TeX are dropped.
"""

from __future__ import annotations

import html
import html.entities
import operator
import re

from growgpt.wiki.templates import PIPE, expand

__all__ = ["wikitext_to_text", "wikitext_source", "source_to_text", "markup_leaks", "MARKUP_LEAKS"]


def trie(words) -> str:
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
        group = branches[0] if len(branches) == 1 and "" not in node else f"(?:{'|'.join(branches)})"
        return group + "?" if "" in node else group

    return f"(?>{emit(tree)})"


def first_letters(words) -> str:
    """A lookahead for the first letters of `words`, so that most candidates fail one test."""
    letters = "".join(sorted({re.escape(w[0]) for w in words}))
    return f"(?=[{letters}])"


# ----------------------------------------------------------------------------------------------
# Namespaces and section names. Lower-case; several languages, because the same code cleans any wiki
# and the cost of a longer set lookup is nil.

FILE_NS = {
    "file", "image", "media", "fichier", "média", "datei", "bild", "medium", "archivo", "imagen",
    "immagine", "ficheiro", "arquivo", "imagem", "plik", "grafika", "bestand", "afbeelding", "fil",
    "bilde", "billede", "tiedosto", "kuva", "fitxer", "imatge", "dosiero", "soubor", "obrázek",
    "súbor", "fájl", "kép", "fișier", "imagine", "datoteka", "slika", "dosya", "resim", "berkas",
    "gambar", "fail", "pilt", "vaizdas", "attēls", "fails", "mynd", "tập tin", "hình",
    "файл", "изображение", "картинка", "зображення", "датотека", "слика", "податотека", "сурет",
    "αρχείο", "εικόνα", "קובץ", "תמונה", "ملف", "صورة", "پرونده", "تصویر", "चित्र", "ไฟล์", "ภาพ",
    "ファイル", "画像", "文件", "檔案", "图像", "圖像", "파일", "그림", "ფაილი", "պատկեր", "படிமம்",
}
CATEGORY_NS = {
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

DROP_SECTIONS = {
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
DROP_TOP_SECTIONS = {
    "литература", "література",
    # "see also": en, fr, de, es, it, pt, nl, pl, sv, tr, bg, ru, uk, ja, zh, el
    "see also", "voir aussi", "articles connexes", "siehe auch", "véase también", "voci correlate",
    "ver também", "zie ook", "zobacz też", "se även", "ayrıca bakınız", "вижте също", "см. также",
    "див. також", "関連項目", "参见", "參見", "δείτε επίσης",
}

# ----------------------------------------------------------------------------------------------
# Pass 1: comments and elements

# Elements whose content is not prose. `pre`, `source` and `syntaxhighlight` are code, dropped rather
# than kept: a tiny share of the text, full of braces and pipes that are indistinguishable from leftover
# markup, and better sourced from a code corpus; `<math>`/`<chem>` TeX likewise.
DROP_ELEMENTS = (
    "ref", "references", "math", "chem", "ce", "gallery", "timeline", "syntaxhighlight", "source",
    "pre", "score", "graph", "mapframe", "maplink", "templatedata", "imagemap", "hiero", "inputbox",
    "categorytree", "includeonly", "indicator", "charinsert", "nowiki",
)
# An element's opening tag (name, attributes); or, without groups, a whole <ref ...>...</ref> with
# no tag inside (most elements of an article), which `strip_elements` then only steps over. Greedy
# attributes, self-closing told by their last character: a lazy `[^<>]*?(/?)>` is 2x slower.
ELEMENT_OPEN = re.compile(rf"<(?:ref(?:\s[^<>]*)?(?<!/)>[^<]*</ref\s*>|{first_letters(DROP_ELEMENTS)}"
                          rf"({trie(DROP_ELEMENTS)})\b([^<>]*)>)", re.I)
ELEMENT_CLOSE = {n: re.compile(rf"</{n}\s*>", re.I) for n in DROP_ELEMENTS}
CLOSE_TAG = {n: f"</{n}>" for n in DROP_ELEMENTS}  # as usually written: a str.find, not a regex
ELEMENT_REOPEN = {n: re.compile(rf"<{n}\b[^<>]*?(?<!/)>", re.I) for n in DROP_ELEMENTS}
# Opening tags of one name with only text between them; group 1: the last one
_ELEMENT_CHAIN = {n: re.compile(rf"(?:(<{n}\b[^<>]*?(?<!/)>)[^<]*)+", re.I) for n in DROP_ELEMENTS}
# Markup characters inside <nowiki> become numeric entities; the final unescape turns them back.
NOWIKI_ESCAPE = str.maketrans({c: f"&#{ord(c)};" for c in "&<>[]{}|'=*#:;_~-"})


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


def strip_elements(s: str) -> str:
    out, pos = [], 0
    unclosed: set[str] = set()  # names with no closing tag after some point: never search again
    closes: dict[str, tuple[int, int]] = {}  # the next closing tag of each name, while still ahead
    while m := ELEMENT_OPEN.search(s, pos):
        out.append(s[pos : m.start()])
        pos = m.end()
        name = m[1]
        if name is None:  # a whole <ref>: what the general case below would do with it
            continue
        name = name.lower()
        if m[2][-1:] == "/" or name in unclosed:  # <ref name=x/>, or a tag never closed
            continue
        i = s.find("<", pos)
        if i >= 0 and s.startswith(CLOSE_TAG[name], i):  # usually the first "<" closes the element
            if name == "nowiki":
                out.append(s[pos:i].translate(NOWIKI_ESCAPE))
            pos = i + len(CLOSE_TAG[name])
            continue
        close = closes.get(name)
        if close is None or close[0] < pos:  # reusing it keeps many unclosed tags linear
            found = ELEMENT_CLOSE[name].search(s, pos)
            if found is None:
                unclosed.add(name)
                continue
            close = closes[name] = found.span()
        # Reopened before it closes: this tag is the unclosed one; drop just the tag. (Most elements
        # hold no "<" at all: i, the first "<", saves the regex; and a tag that is reopened is
        # mostly reopened right there, at i.)
        if 0 <= i < close[0] and (ELEMENT_REOPEN[name].match(s, i, close[0])
                                  or ELEMENT_REOPEN[name].search(s, i + 1, close[0])):
            # Then so is each tag of a chain of them reopened at their first "<" (`<ref>` * k):
            # those go at once, their text stays; the chain's last one is for the loop.
            chain = _ELEMENT_CHAIN[name].match(s, i, close[0])
            if chain and chain.start(1) > i:
                out.append(s[pos:i])
                out.append(ELEMENT_REOPEN[name].sub("", s[i : chain.start(1)]))
                pos = chain.start(1)
            continue
        if name == "nowiki":
            out.append(s[pos : close[0]].translate(NOWIKI_ESCAPE))
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
# Groups: the heading (without its "\n"), its opening "=", title, closing "=" (see drop_sections).
HEADING = re.compile(r"\n(?==[^\n]*=[ \t]*+(?:\n|$))((={1,6})([^\n]+?)(={1,6}+)[ \t]*+)(?=\n|$)")
# Markup around a heading's name, removed from all titles at once, joined by "\n" (so no "\n" here)
_HEADING_NOISE = re.compile(r"'{2,}|\[\[|\]\]|<[^<>\n]*>|&nbsp;")
_NAME_STRIP = operator.methodcaller("strip", " \t=:")
_DROP_NAMES = frozenset(DROP_SECTIONS | DROP_TOP_SECTIONS)


def drop_sections(s: str) -> str:
    """Drop the sections named in DROP_SECTIONS (and DROP_TOP_SECTIONS at level 1-2), with their
    subsections. The names of all headings are found with string methods over all titles at once,
    and the Python loop over headings starts at the first one to drop (most articles: near the
    end; many headings used to cost a loop round each, 15x the time of article text)."""
    parts = HEADING.split(s)  # text, heading, "=", title, "=", text, heading, ...
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
        if name in DROP_SECTIONS or (level <= 2 and name in DROP_TOP_SECTIONS):
            out += pieces[keep : 2 * i + 1]
            skip_level = level
    if not skip_level:
        out += pieces[keep:]
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Pass 3, templates and tables: `growgpt.wiki.templates.expand`

# ----------------------------------------------------------------------------------------------
# Pass 4: links, quotes, tags, headings, lists

# [http://x label] -> label. The label must start non-blank, or a long run of spaces would make the
# regex backtrack quadratically. The lookahead (the schemes' first letters, any case under re.I)
# turns away the "[" of every wiki link with one test instead of nine: 2x faster.
EXT_LINK = re.compile(r"\[(?=[hfmnigs/])(?:https?:|ftp:|//|mailto:|news:|irc:|ircs:|gopher:|sftp:)"
                       r"[^\s\[\]<>\"]*(?:[ \t]+([^\s\[\]][^\[\]\n]*)?)?\]", re.I)
# [[target|label]]; labels may hold single brackets but not another [[ or ]]. The link trail
# ([[bank]]s) needs no handling: it is text that follows the label anyway. Possessive quantifiers
# (*+: no backtracking, which could never lead to a match here) make this 20 % faster.
LINK = re.compile(r"\[\[([^\[\]|\n]*+)(?:\|([^\[\]\n]*+(?:(?:\[(?!\[)|\](?!\]))[^\[\]\n]*+)*+))?\]\]")


# Image links are the one kind whose caption may run over several lines; one [[ that never closes
# is cut to the end of its line (see `UNCLOSED_NS_LINK`), so this cannot swallow paragraphs.
# Namespace names are tried (as a trie, see `trie`) only where the lookahead sees a name's shape:
# up to two words of at most _NS_WORD characters, then a colon. That shape is all a name can have
# (checked in the tests), and most `[[` fail it at the first character, `[[[[` or `[[ ` junk too.
_NS_WORD = max(len(word) for name in FILE_NS | CATEGORY_NS for word in name.split(" "))
_NS_NAME = (rf"(?=[^\s:\[\]|]{{1,{_NS_WORD}}}+(?: [^\s:\[\]|]{{1,{_NS_WORD}}}+)?[ \t]*+:)"
            rf"(?:{trie(FILE_NS | CATEGORY_NS)})")
FILE_LINK = re.compile(rf"\[\[[ \t]*+{_NS_NAME}[ \t]*+:[^\[\]]*+(?:(?:\[(?!\[)|\](?!\]))[^\[\]]*+)*+\]\]",
                       re.I)
# (possessive spaces: backtracking into a run of them tried every namespace at every space)
UNCLOSED_NS_LINK = re.compile(rf"\[\[[ \t]*+{_NS_NAME}[ \t]*+:[^\n]*", re.I)


def link_text(target: str, label: str | None) -> str:
    """What [[target|label]] shows (label None: [[target]]). The common cases are also inlined in
    `resolve_links`."""
    target = target.strip()
    if target.startswith(":"):  # [[:Category:X]] is a visible link, shown here without "Category:"
        target = target[1:].lstrip()
        prefix, colon, rest = target.partition(":")
        if colon and (prefix.strip().lower() in CATEGORY_NS or prefix.strip().lower() in FILE_NS):
            target = rest.strip()
    elif ":" in target:
        prefix, _, rest = target.partition(":")
        prefix = prefix.strip()
        lower = prefix.lower()
        if lower in FILE_NS or lower in CATEGORY_NS or _LANG_PREFIX.match(prefix):
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


def resolve_links(s: str) -> tuple[str, int]:
    """`LINK.subn(lambda m: link_text(*m.groups()), s)`, 1.2-1.4x faster: `split` finds the links in
    C (text, target, label, text, ...), and the two common kinds, [[target]] and [[target|label]]
    with no namespace, are shown by an expression in a comprehension, not a call per link."""
    parts = LINK.split(s)
    if len(parts) == 1:
        return s, 0
    shown = [
        label if label and ":" not in target and not label.isspace()  # (isspace() is False for "")
        else target.strip().lstrip("#").replace("_", " ") if label is None and ":" not in target
        else link_text(target, label)
        for target, label in zip(parts[1::3], parts[2::3])
    ]
    parts[1::3] = shown
    del parts[2::3]
    return "".join(parts), len(shown)


_MAX_LINK_NESTING = 8  # real pages nest 2 deep (a link in an image caption); deeper is junk, scrubbed


def _links(s: str) -> str:
    if "[" not in s:
        return s
    s = EXT_LINK.sub(lambda m: m.group(1) or "", s)
    left = "[[" in s  # kept up to date, so that each pass costs one search of the text, not three
    for _ in range(_MAX_LINK_NESTING):  # innermost first: each pass resolves one level of nesting
        if not left:
            break
        s, n = resolve_links(s)
        left = "[" in s and "[[" in s  # (see below)
        if left:
            s, n_files = FILE_LINK.subn("", s)
            if n_files:
                n += n_files
                left = "[" in s and "[[" in s
        if not n:
            break
    if left:
        s = UNCLOSED_NS_LINK.sub("", s)
    return s


# Bold and italic marks, as the three str.replace of 5, 3 and 2 quotes in turn would remove them
# from a run: in one pass (the alternatives share a literal prefix, which the engine searches for)
QUOTES = re.compile(r"''(?:'''|'|)")
BLOCK_TAGS = ("br", "p", "div", "li", "ul", "ol", "dl", "dd", "dt", "tr", "table", "blockquote",
               "poem", "center", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "caption")
INLINE_TAGS = ("span", "small", "big", "sub", "sup", "b", "i", "u", "s", "strike", "del", "ins",
                "abbr", "cite", "code", "tt", "kbd", "samp", "var", "q", "mark", "em", "strong",
                "font", "bdi", "bdo", "ruby", "rb", "rp", "rt", "rtc", "wbr", "dfn", "time", "data",
                "td", "th", "a", "onlyinclude", "noinclude", "section", "templatestyles",
                "languages", "translate", "tvar", "nowiki", *DROP_ELEMENTS)
BLOCK_TAG = re.compile(rf"</?{first_letters(BLOCK_TAGS)}{trie(BLOCK_TAGS)}\b[^<>]*>", re.I)
INLINE_TAG = re.compile(rf"</?{first_letters(INLINE_TAGS)}{trie(INLINE_TAGS)}\b[^<>]*>", re.I)
# __NOTOC__, __БЕЗ_ОГЛАВЛЕНИЯ__: upper-case ASCII or any non-ASCII letters (never Python's __init__)
_MAGIC_WORD = re.compile(r"__(?:[A-Z]|[^\x00-\x7f\W])(?:[A-Z0-9]|[^\x00-\x7f\W]|_(?!_))*__")
# ={1,6}, not =+: no blow-up on "====…x"; the lookahead and the possessive run: see HEADING
HEADING_LINE = re.compile(r"\n(?==[^\n]*=[ \t]*+(?:\n|$))(={1,6})([^\n]*?)={1,6}+[ \t]*+(?=\n|$)")
_LIST_MARKER = re.compile(r"\n[ \t]*[*#:;]+[ \t]*")
_HEADING_MARK = "\x02"  # heading lines are "\x02==\x02Title" until the line pass
HEADING_ROW = re.compile(r"\n\x02(=+)\x02([^\n]*)")

# ----------------------------------------------------------------------------------------------
# Pass 5: entities and debris

_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
# `html.unescape` calls a Python function for every "&" followed by a name-like word, entity or
# not: text made of "&a" took 10x article text. This is its regex and function, with a lookahead
# that lets through only the "&" it changes: a "#", or the start of an HTML5 entity name (it
# replaces the longest name that begins the word). Where the html module is laid out otherwise,
# `html.unescape` itself.
try:
    _CHARREF = re.compile(rf"&(?=[#a-zA-Z])(?=#|{trie(html.entities.html5)}){html._charref.pattern[1:]}")
    _replace_charref = html._replace_charref
except AttributeError:
    _CHARREF = None


def unescape(s: str) -> str:
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
PAREN_CLOSE_DEBRIS_REV = re.compile(r"\)[ ,;:]*[,;:]")
_SPACES = re.compile(r"  +")
_COMMA_RUN = re.compile(r",(?:[ \t]*,)+")
COMMA_PAIR = re.compile(r", ?,")  # ",," or ", ,": one search, not two
# Regexes rather than str.replace, 1.4x faster: the regex engine's search for a literal looks for
# its first character ("\n", "("), rarer than the " " that str.replace's search keys on (its last).
LINE_START_SPACE = re.compile(r"\n ")
OPEN_PAREN_SPACE = re.compile(r"\( ")
WORDLESS = re.compile(r"[\W_]*")
# Lines that are left-over table rows or template arguments ("| x = 1", "! Header"), or only
# punctuation ("—", "•", "(,)"): removed with their line break, so they do not split paragraphs.
_DEBRIS_LINE = re.compile(r"\n(?:\||!(?=[ \n]|$)|![^\n]*!!|(?:[^\w\n\x02]|_)+(?=\n|$))[^\n]*")
_BLANK_RUN = re.compile(r"\n\n\n+")  # not \n{3,}: a literal start lets the engine skip ahead, 17x faster
LEFTOVER = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}")


def has_leftover(s: str) -> bool:
    """`LEFTOVER.search(s) is not None`, 50x faster on clean text: one-character `in` tests are
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
    s = LINE_START_SPACE.sub("\n", s.replace(" \n", "\n"))  # spaces are single by now
    s = _DEBRIS_LINE.sub("", s)
    if _HEADING_MARK in s:
        s = finish_headings(s)
    return _BLANK_RUN.sub("\n\n", s).strip()


def finish_headings(s: str) -> str:
    r"""Heading lines ("\x02==\x02Title") become "Title", or go when no text follows them
    before the next heading of their level or above (the section was all templates, images...).
    What can be is computed for all headings at once with string methods; the loop that remains
    keeps one number (many headings cost a loop round each with regex calls: 10x article text)."""
    parts = HEADING_ROW.split(s)  # text, marks, title, text, marks, title, ..., text
    marks, titles, texts = parts[1::3], parts[2::3], parts[3::3]  # texts[i]: what follows heading i
    text_after = list(map(str.strip, texts))  # (empty: none, or only spaces)
    if not any(text_after):  # no text anywhere: no heading stays
        parts[1::3] = [""] * len(titles)
        del parts[2::3]
        return "".join(parts)
    # a heading that was all template is none at all (bool: a list of match objects for many
    # headings made the garbage collector's passes long)
    wordless = list(map(bool, map(WORDLESS.fullmatch, titles)))
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
    s = "\n" + wikitext  # see HEADING
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if PIPE in s or _HEADING_MARK in s:  # our internal markers (not valid XML, so never in a dump)
        s = s.replace(PIPE, "").replace(_HEADING_MARK, "")
    if "<!--" in s:
        s = _strip_comments(s)
    return s


def source_to_text(s: str, title: str = "", *, keep_tables: bool = False) -> str:
    """`wikitext_to_text` of what `wikitext_source` made of the wikitext."""
    if "<" in s:
        s = strip_elements(s)
    if "=" in s:
        s = drop_sections(s)
    if "{" in s:
        s = expand(s, title, keep_tables)
    s = _links(s)
    # Where a character is rare by now, testing for it first saves a search for the pair that
    # holds it: one-character searches are memchr, pair searches look at every character.
    if "{" in s and "-{" in s:
        s = _VARIANTS.sub(_variant, s)
    if "''" in s:
        s = QUOTES.sub("", s)
    if "<" in s:
        s = BLOCK_TAG.sub("\n", s)
        s = INLINE_TAG.sub("", s)
    if "_" in s and "__" in s:
        s = _MAGIC_WORD.sub("", s)
    if "=" in s:
        # see finish_headings (split and string methods: a function per heading, or a template string
        # that re of Python 3.11 expands in Python code, cost a call per heading)
        parts = HEADING_LINE.split(s)
        if len(parts) > 1:  # "\n\x02" + marks + "\x02" + title: string methods, no call per heading
            parts[1::3] = map("\n\x02".__add__, parts[1::3])
            parts[2::3] = map("\x02".__add__, parts[2::3])
            s = "".join(parts)
    s = _LIST_MARKER.sub("\n", s)
    if "&" in s:
        s = unescape(s)
        if "&" in s and _ENTITY.search(s):  # double-escaped in the source (&amp;nbsp;)
            s = unescape(s)
    if PIPE in s:
        s = s.replace(PIPE, "|")
    if "\u00ad" in s:
        s = s.replace("\u00ad", "")
    if "\t" in s or "\u00a0" in s:
        s = s.replace("\t", " ").replace("\u00a0", " ")
    s = _SPACES.sub(" ", s)
    if "(" in s:
        s, n_empty = _EMPTY_PARENS.subn("", s)
        s, n_open = _PAREN_OPEN_DEBRIS.subn("(", s)
        reverse, n_close = PAREN_CLOSE_DEBRIS_REV.subn(")", s[::-1])
        if n_close:
            s = reverse[::-1]
        if (n_empty or n_open or n_close) and "  " in s:  # (spaces were single before these)
            s = _SPACES.sub(" ", s)
    if "（" in s:
        s = _EMPTY_WIDE_PARENS.sub("", s)
    if COMMA_PAIR.search(s):  # "such as {{chem|A}}, {{chem|B}}, and" lost its items
        s = _COMMA_RUN.sub(",", s)
    # spaces a removed template left before punctuation ("Paris , France", "( born", "1950 )")
    s = OPEN_PAREN_SPACE.sub("(", s.replace(" ,", ",")).replace(" )", ")")
    if " ." in s:
        s = s.replace(" . ", ". ").replace(" .\n", ".\n")
    return _finish_lines(_scrub(s[:-2] + "." if s.endswith(" .") else s))


def _scrub(s: str) -> str:
    """The last guarantee: no `{{ }} [[ ]] {| |}` or `<ref` in the output, whatever the input.

    Markup that survived the passes is malformed (or was written as entities, &#91;&#91;, or inside
    <nowiki>); its tokens are deleted. Deleting can join new pairs ("{[[{"), so it repeats, and
    input built to defeat that loses all its braces and brackets instead: still linear."""
    for _ in range(3):
        if not has_leftover(s):
            break
        s = _SPACES.sub(" ", LEFTOVER.sub("", s))
    else:
        if has_leftover(s):
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
