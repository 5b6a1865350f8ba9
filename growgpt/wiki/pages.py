"""MediaWiki XML pages to documents: the expat-driven page parser that runs in the workers, the
work units it is given and returns (plain data, pickled between processes), the checks on a
file's header and encoding, redirect detection and the per-page CPU-time budget.

Which pages become documents: namespace-0 pages that are not redirects (a `<redirect>` element,
or wikitext that is `#REDIRECT [[...]]` or a localised form of it), cleaned by
`growgpt.wiki.wikitext`; then disambiguation pages (`growgpt.wiki.disambiguation`), pages with nothing
left, pages under `min_chars` characters and pages whose cleaning ran out of time are dropped,
each with its reason. expat is driven directly: it parses fast enough that lxml is not worth a
dependency, it gives exact byte offsets for errors, and it never loads or expands anything (a
document type declaration is refused). Tags are matched by local name, so every export schema
(0.3 to 0.11) reads the same. Encodings expat does not read itself (UTF-16, windows-1252, ...)
are transcoded to UTF-8 first, because chunks are cut by searching bytes for `</page>`.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import signal
import threading
import xml.parsers.expat as expat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from growgpt.errors import UserError
from growgpt.wiki.bz2blocks import Abort

# Under 100 characters an article is one bare sentence: a fifth of a small wiki's pages but 1 % of
# its text (the measurements are in NOTES.md); `--min-chars 0` keeps everything that is not empty.
DEFAULT_MIN_CHARS = 100
DEFAULT_PAGE_TIMEOUT = 5.0  # CPU seconds a page's cleaning may take: see PageTimeout
MAX_PAGE_TIMEOUT = 1e6  # setitimer overflows past ~1e9 s; 0 is the way to say "no limit"

# Encodings expat decodes itself; anything else is transcoded to UTF-8 before parsing.
_EXPAT_NATIVE = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}

# `#REDIRECT [[Target]]` in the languages of the biggest wikis (MediaWiki's localised magic words;
# the English form is valid on every wiki). Only a fallback: dumps since 2008 mark redirects with
# a <redirect> element, and schema 0.3 dumps with an empty <redirect />.
_REDIRECT = re.compile(
    r"\s*+#(?:redirect|weiterleitung|redirection|redirección|redireccion|redirecionamento|"
    r"rinvia|rinvio|doorverwijzing|перенаправление|перенапр|перенаправлення|пренасочване|"
    r"преусмери|ανακατευθυνση|ανακατεύθυνση|patrz|przekieruj|tam|přesměruj|presmeruj|"
    r"omdirigering|ohjaus|uudelleenohjaus|yönlendirme|yönlendir|átirányítás|redirecteaza|"
    r"redirecționare|alih|đổi|preusmjeri|preusmeri|転送|リダイレクト|重定向|넘겨주기|تحويل|"
    r"הפניה|تغییرمسیر|เปลี่ยนทาง|पुनर्निर्देशन)\s*+(?::\s*+)?\[\[",  # possessive: linear on "#REDIRECT" + spaces
    re.I,
)


def is_redirect_text(wikitext: str) -> bool:
    """Wikitext that is `#REDIRECT [[...]]` (or a localised form): the fallback for dumps whose
    pages lack a <redirect> element. Linear in the text: the whitespace runs cannot backtrack."""
    return (wikitext[:1].isspace() or wikitext[:1] == "#") and _REDIRECT.match(wikitext) is not None


_WIKIMEDIA_HOSTS = re.compile(
    r"(?:^|\.)(?:wikipedia|wikivoyage|wiktionary|wikibooks|wikinews|wikiquote|wikisource|"
    r"wikiversity|wikimedia|mediawiki|wikidata|wikifunctions)\.org$")

_ASCII_SPACE = b" \t\n\r\x0b\x0c"


def text_hash(text: str | bytes) -> int:
    """64-bit hash of `text` (or its UTF-8 bytes) with its whitespace left out: the duplicate
    filter's key, so texts that differ only in spacing or line breaks are duplicates. Deleting the
    ASCII whitespace from the UTF-8 bytes (one C loop) is 4x faster than `" ".join(text.split())`,
    which makes an object per word. Two articles that differ only in where a space falls
    ("a b" / "ab") count as duplicates too: for texts of hundreds of characters, that is the same
    text."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data.translate(None, _ASCII_SPACE), digest_size=8).digest(), "little")


# ----------------------------------------------------------------------------------------------
# Work units and their results (pickled between processes: plain data only)


@dataclass
class Task:
    path: str
    header: bytes  # everything before the first <page>: XML declaration, root tag, <siteinfo>
    body: bytes | None = None  # whole pages (and maybe the closing root tag), already decompressed
    comp_range: tuple[int, int] | None = None  # or: multistream byte range the worker reads itself
    blocks: tuple[tuple[int, int], ...] | None = None  # or: bzip2 blocks (start, end bit) to decompress
    xml_offset: int = 0  # where `body` starts in the decompressed XML (for error messages)
    comp_end: int = 0  # compressed bytes of the file done once this task is (for progress)
    offsets_of: str = ""  # what byte offsets in messages count: "" (the file), "decompressed XML", ...
    min_chars: int = DEFAULT_MIN_CHARS
    keep_tables: bool = False
    keep_disambiguation: bool = False
    page_timeout: float = DEFAULT_PAGE_TIMEOUT
    clean: bool = True  # False: parse only (the benchmark's floor)
    damage: str | None = None  # the file is damaged right after this chunk's data


@dataclass
class Result:
    # (id, revid, title, url, characters, hash, characters of wikitext, keys of the templates it calls)
    docs: list = field(default_factory=list)
    # the documents' texts as one UTF-8 buffer and the int32 offsets of their starts and ends: the
    # layout of an Arrow string column, which the main process takes over without a copy (no
    # decoding into Python strs when unpickled, no encoding again for Arrow)
    texts: bytes = b""
    offsets: bytes = b""
    counts: dict = field(default_factory=dict)
    # pages dropped, in file order: (docs before it in this result, id, title, ns, reason, detail,
    # characters of wikitext)
    dropped: list = field(default_factory=list)
    # what the pages of the Template namespace teach: (key, page id) of disambiguation templates
    # and (key, target key) of template redirects
    templates: list = field(default_factory=list)
    template_redirects: list = field(default_factory=list)
    site: tuple | None = None  # detector_for's arguments: (Wiki, template namespace names, case-sensitive)
    root_closed: bool = False
    error: str | None = None  # damage found in this task's data; its pages before that are in docs
    comp_end: int = 0
    # a task of bzip2 blocks: its decompressed XML (xml_size bytes) is cut after the first and the
    # last </page>; `docs` are the pages between, and the bytes around them (`head`, `tail`) are
    # joined with the neighbouring tasks' by the main process
    head: bytes = b""
    tail: bytes = b""
    xml_size: int = 0
    cut: bool = False  # there was a </page> to cut at (else `head` is all of the XML)
    retry: str | None = None  # a block did not decompress: the file is read again sequentially


def new_counts() -> dict:
    return {"pages": 0, "redirects": 0, "non_article": 0, "disambiguation": 0, "empty": 0, "too_short": 0,
            "timeout": 0}


# ----------------------------------------------------------------------------------------------
# The per-page time budget: a page whose cleaning takes more CPU time than this is dropped as
# "timeout" and the run goes on. Every pass of the cleaner is linear (bench/clean_worst_case.py:
# any input within 10x of normal text per MB, ~1 s for the largest page MediaWiki allows, 2 MB),
# so this is a safety net for what nobody foresaw, never a stalled worker. A CPU-time timer
# (ITIMER_PROF), not wall time, so a busy machine does not drop pages; its signal interrupts the
# regex engine too (CPython's re checks for signals). Where there is no setitimer (Windows), or
# extract runs outside the main thread, there is no budget.


class PageTimeout(BaseException):
    """Raised by the timer's signal inside the cleaning of a page (BaseException: no `except
    Exception` on the way may swallow it)."""


_timer_armed = False


def _on_timer(_signum, _frame) -> None:
    if _timer_armed:  # a signal that arrives after the page was done is ignored
        raise PageTimeout()


def install_timer() -> object:
    """Route SIGPROF to the page budget in this process; returns the previous handler (None if
    the budget cannot work here). Also the initializer of extract's worker processes."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGPROF, _on_timer)


def restore_timer(previous: object) -> None:
    if previous is not None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _arm(seconds: float) -> None:
    global _timer_armed
    _timer_armed = True
    signal.setitimer(signal.ITIMER_PROF, seconds)


def _disarm() -> None:
    global _timer_armed
    _timer_armed = False  # first: a signal from here on is ignored
    signal.setitimer(signal.ITIMER_PROF, 0)


def _timer_works() -> bool:
    return hasattr(signal, "setitimer") and signal.getsignal(signal.SIGPROF) is _on_timer


# ----------------------------------------------------------------------------------------------
# Parsing (runs in the workers)


def _guard(parser) -> None:
    """Refuse DTDs: that is where entities are declared, and nothing in a dump needs one."""

    def refuse(*_args):
        raise _DoctypeError()

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)


class _DoctypeError(Exception):
    pass


def _doctype_message(path: str) -> str:
    return (f"{path} has a document type declaration (<!DOCTYPE ...>), which can declare entities that "
            f"read files or expand without bound; MediaWiki dumps never have one, so it is refused")


def _of_the(offsets_of: str) -> str:
    """What a byte offset in a message counts, after the number: "" (the file) or " of the ..."."""
    return f" of the {offsets_of}" if offsets_of else ""


def _xml_error_message(path: str, e: expat.ExpatError, offset: int, offsets_of: str) -> str:
    return f"{path} is not well-formed XML at byte {offset:,}{_of_the(offsets_of)}: {expat.ErrorString(e.code)}"


class PageParser:
    """Feeds XML to expat and turns each <page> into a document or a count."""

    def __init__(self, task: Task) -> None:
        if task.clean:
            from growgpt.wiki.wikitext import source_to_text, wikitext_source
        else:
            source_to_text = wikitext_source = None
        self.task = task
        self.clean = source_to_text  # of what `self.source` makes of the wikitext
        self.source = wikitext_source
        self.detect = task.clean and not task.keep_disambiguation
        self.budget = task.page_timeout if task.clean and task.page_timeout > 0 and _timer_works() else 0
        self.result = Result(counts=new_counts())
        self._texts: list[bytes] = []
        self._text_size = 0
        self._text_ends = array("i", [0])
        self.base = ""
        self.dbname = ""
        self.xml_lang = ""
        self.template_ns = ""  # the local name of namespace 10 ("Vorlage"), from <siteinfo>
        self.template_case = ""
        self._detector = None
        self._prefix: str | None = None
        self.namespaces: dict[str, int] = {}
        self.stack: list[str] = []
        self.buf: list[str] = []
        self._new_page()
        p = expat.ParserCreate()
        _guard(p)
        p.buffer_text = True
        p.buffer_size = 1 << 20  # a page's text arrives in few pieces
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self.buf.append
        self.parser = p

    def _new_page(self) -> None:
        self.title = ""
        self.ns: int | None = None
        self.page_id: int | None = None
        self.revid: int | None = None
        self.redirect = False
        self.redirect_title = ""
        self.text = ""
        self.ns_key = 0
        self.ns_case = ""

    def _start(self, name: str, attrs: dict) -> None:
        if ":" in name:
            name = name.rpartition(":")[2]
        self.stack.append(name)
        self.buf.clear()
        if name == "page":
            self._new_page()
        elif name == "redirect":
            self.redirect = True
            self.redirect_title = attrs.get("title", "")
        elif name == "namespace":
            try:
                self.ns_key = int(attrs.get("key", "0"))
            except ValueError:
                self.ns_key = 0
            self.ns_case = attrs.get("case", "")
        elif name == "mediawiki":
            self.xml_lang = attrs.get("xml:lang", "")

    def _end(self, _name: str) -> None:
        stack = self.stack
        name = stack.pop()
        parent = stack[-1] if stack else ""
        if name == "text":
            self.text = "".join(self.buf)
        elif name == "id":
            if parent == "page":
                self.page_id = _int("".join(self.buf))
            elif parent == "revision":
                self.revid = _int("".join(self.buf))  # not contributor/id
        elif name == "title":
            if parent == "page":
                self.title = "".join(self.buf)
        elif name == "ns":
            if parent == "page":
                self.ns = _int("".join(self.buf))
        elif name == "page":
            self._page()
        elif name == "base":
            self.base = "".join(self.buf).strip()
        elif name == "dbname":
            self.dbname = "".join(self.buf).strip()
        elif name == "namespace":
            label = "".join(self.buf).strip()
            if label:
                self.namespaces[label.replace("_", " ").lower()] = self.ns_key
                if self.ns_key == 10:
                    self.template_ns, self.template_case = label, self.ns_case

    def _namespace(self) -> int:
        if self.ns is not None:
            return self.ns
        # schema 0.3 has no <ns>: the namespace is the title's prefix, if <siteinfo> names it
        prefix, colon, _ = self.title.partition(":")
        if colon and prefix:
            return self.namespaces.get(prefix.replace("_", " ").strip().lower(), 0)
        return 0

    def detector(self):
        """The disambiguation evidence of this dump's wiki (known once <siteinfo> is read)."""
        if self._detector is None:
            from growgpt.wiki.disambiguation import Wiki, detector_for

            wiki = Wiki.from_siteinfo(self.dbname, self.base, self.xml_lang)
            site = (wiki, (self.template_ns,) if self.template_ns else (), self.template_case == "case-sensitive")
            self._detector = detector_for(*site)
            self.result.site = site
        return self._detector

    def _drop(self, ns: int | None, reason: str, detail: str = "") -> None:
        self.result.dropped.append((len(self.result.docs), self.page_id, self.title, ns, reason, detail,
                                    len(self.text)))

    def _page(self) -> None:
        counts = self.result.counts
        counts["pages"] += 1
        ns = self._namespace()
        text, title = self.text, self.title
        if ns != 0:
            counts["non_article"] += 1
            if self.clean is not None:
                self._drop(ns, "namespace")
                if ns == 10 and self.detect:
                    self._template_page()
            return
        if self.redirect or is_redirect_text(text):
            counts["redirects"] += 1
            if self.clean is not None:
                self._drop(ns, "redirect", self.redirect_title or _redirect_target(text))
            return
        if self.clean is None:  # measuring what everything but the cleaning costs
            self.result.docs.append((self.page_id, self.revid, title, "", 0, 0, 0, ()))
            self._text_ends.append(self._text_size)
            return
        if not self.budget:
            self.article(text, title)
            return
        _arm(self.budget)
        try:
            self.article(text, title)
            _disarm()
        except PageTimeout:
            _disarm()
            counts["timeout"] += 1
            self._drop(0, "timeout", f"cleaning took over {self.budget:g} CPU seconds")

    def article(self, text: str, title: str) -> None:
        """Decide on one article page and clean it: a document, or a drop with its reason."""
        counts = self.result.counts
        source = self.source(text)  # (shared: the disambiguation check reads it without comments too)
        keys = frozenset()
        if self.detect:
            detector = self.detector()
            keys = detector.template_keys(source, comments_removed=True)
            evidence = detector.evidence(source, title, keys, comments_removed=True)
            if evidence:
                counts["disambiguation"] += 1
                self._drop(0, "disambiguation", evidence)
                return
        clean = self.clean(source, title, keep_tables=self.task.keep_tables)
        if not clean.strip():
            counts["empty"] += 1
            detail = "nothing left after cleaning"
            if not self.task.keep_tables and "{|" in source and self.clean(source, title, keep_tables=True).strip():
                detail = "only tables (--keep-tables keeps their cells)"
            self._drop(0, "empty", detail)
            return
        if len(clean) < self.task.min_chars:
            counts["too_short"] += 1
            self._drop(0, "too_short", f"{len(clean)} characters")
            return
        data = clean.encode("utf-8", "replace")  # (a lone surrogate, never seen, becomes "?")
        self._texts.append(data)
        self._text_size += len(data)
        self._text_ends.append(self._text_size)
        self.result.docs.append((self.page_id, self.revid, title, self._url(), len(clean), text_hash(data), len(text),
                                 keys))

    def _template_page(self) -> None:
        """A page of the Template namespace: is it a disambiguation template, or a redirect to
        another template? (The main process puts these together, see LearnedTemplates.)"""
        detector = self.detector()
        key = detector.page_key(self.title)
        if key is None:
            return
        if self.redirect or is_redirect_text(self.text):
            target = detector.page_key(self.redirect_title or _redirect_target(self.text))
            if target is not None:
                self.result.template_redirects.append((key, target))
        elif detector.defines_disambiguation(self.text):
            self.result.templates.append((key, self.page_id))

    def _url(self) -> str:
        if self._prefix is None:
            self._prefix = _article_path(self.base)
        if not self._prefix:
            return f"?curid={self.page_id}"
        # MediaWiki's wfUrlencode: percent-encode, but leave these readable
        return self._prefix + quote(self.title.replace(" ", "_"), safe=";@$!*(),/~:")

    def feed(self, data: bytes, final: bool = False) -> None:
        self.parser.Parse(data, final)

    def close(self) -> None:
        # int32 offsets: a chunk's text is a few MB (MediaWiki caps a page at 2 MB)
        self.result.texts, self.result.offsets = b"".join(self._texts), self._text_ends.tobytes()
        self._texts = []
        # the parser holds bound methods of self: a reference cycle that would keep each chunk's
        # parser (with its 1 MB text buffer) and pages alive until the cyclic GC gets round to it,
        # which measured as +7 MB per chunk, up to ~100 MB, before a collection
        self.parser = None


_REDIRECT_TARGET = re.compile(r"\[\[([^\[\]|#\n]*)")


def _redirect_target(wikitext: str) -> str:
    """The title a `#REDIRECT [[Title]]` page points to ("" if none can be read)."""
    m = _REDIRECT_TARGET.search(wikitext, 0, 1000)
    return m.group(1).strip() if m else ""


def _article_path(base: str) -> str:
    """`https://en.wikipedia.org/wiki/` from <base> (the main page's URL); "" without one."""
    if not base:
        return ""
    i = base.find("/wiki/")
    prefix = base[: i + 6] if i >= 0 else base.rsplit("/", 1)[0] + "/"
    if prefix.startswith("http://") and _WIKIMEDIA_HOSTS.search(urlsplit(prefix).hostname or ""):
        prefix = "https://" + prefix[7:]  # pre-2015 dumps say http; the sites are https-only now
    return prefix


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def parse(task: Task, body: bytes, where: str | None, damage: str | None) -> Result:
    """The documents of `body` (whole pages; the last chunk of a file also has the root's end),
    parsed after the file's header. `where`: what body is, for messages, when offsets in it do not
    count from the start of the file's XML (task.xml_offset)."""
    pp = PageParser(task)
    result = pp.result
    result.comp_end = task.comp_end
    try:
        pp.feed(task.header)
        pp.feed(body)
        depth = len(pp.stack)
    except _DoctypeError:
        result.error = _doctype_message(task.path)
        return result
    except expat.ExpatError as e:
        off = max(pp.parser.ErrorByteIndex - len(task.header), 0)
        if where is None:
            result.error = _xml_error_message(task.path, e, task.xml_offset + off, task.offsets_of)
        else:
            result.error = (f"{task.path} is not well-formed XML in {where} (byte {off:,} of their data): "
                            f"{expat.ErrorString(e.code)}")
        return result  # the pages before the error were whole and are kept
    finally:
        pp.close()
    result.root_closed = depth == 0
    if damage is not None:
        result.error = damage
    elif depth > 1:  # only possible in the last chunk: the file stops inside a page
        result.error = (f"{task.path} is truncated: it ends inside <{pp.stack[-1]}> at byte "
                        f"{task.xml_offset + len(body):,}{_of_the(task.offsets_of)}")
    return result


# ----------------------------------------------------------------------------------------------
# A file's header and encoding (checked in the main process)


class HeaderCheck:
    """Fails fast on what is not a MediaWiki dump, before any work is handed out: not XML, a DTD,
    another root element. Fed the bytes before the first <page> as they are read."""

    def __init__(self, path: str, offsets_of: str) -> None:
        self.path = path
        self.offsets_of = offsets_of
        self.root: str | None = None
        self.version = ""
        self.offset = 0
        p = expat.ParserCreate()
        _guard(p)
        p.StartElementHandler = self._start
        self.parser = p

    def _start(self, name: str, attrs: dict) -> None:
        self.root = name
        self.version = attrs.get("version", "")
        self.parser.StartElementHandler = None  # only the root matters here
        if name.rpartition(":")[2] != "mediawiki":
            raise UserError(f"{self.path} is XML but not a MediaWiki dump (root element <{name}>, "
                            f"expected <mediawiki>)")

    def feed(self, data: bytes) -> None:
        try:
            self.parser.Parse(data, False)
        except _DoctypeError:
            raise UserError(_doctype_message(self.path)) from None
        except expat.ExpatError as e:
            if self.root is None:
                raise UserError(f"{self.path} is not an XML file (not well-formed at byte "
                                f"{self.parser.ErrorByteIndex:,}{_of_the(self.offsets_of)}: "
                                f"{expat.ErrorString(e.code)})") from None
            raise UserError(_xml_error_message(self.path, e, self.parser.ErrorByteIndex, self.offsets_of)) from None

    def done(self) -> None:
        if self.root is None:
            raise UserError(f"{self.path} is not an XML file (no root element)")

    @classmethod
    def whole(cls, path: str, header: bytes, offsets_of: str) -> None:
        """Check a header read in one piece (a multistream file's first stream, the XML before a
        single-stream file's first <page>)."""
        check = cls(path, offsets_of)
        check.feed(header)
        check.done()


_DECL_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def xml_encoding(path: str, first: bytes) -> str | None:
    """The codec to transcode from, or None when expat can read the bytes as they are."""
    if first.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if first.startswith(b"<\x00?\x00") or first.startswith(b"<\x00m\x00"):
        return "utf-16-le"
    if first.startswith(b"\x00<\x00?") or first.startswith(b"\x00<\x00m"):
        return "utf-16-be"
    m = _DECL_ENCODING.match(first[:1024])
    if not m:
        return None
    name = m.group(1).decode("ascii").lower()
    if name in _EXPAT_NATIVE:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        raise UserError(f"{path} declares an unknown encoding {name!r}") from None
    return name


def transcode(path: str, chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Re-encode to UTF-8 (UTF-16 dumps exist: split points are found by byte search, and expat
    reads only UTF-8/ASCII/Latin-1 itself); the declaration is rewritten to say so."""
    decoder = codecs.getincrementaldecoder(encoding)()
    first = True
    for data in chunks:
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as e:
            raise Abort(f"{path} is not valid {encoding}: {e.reason}") from None
        if first and text:
            text = text.lstrip("\ufeff")
            text = re.sub(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""", r'\1"UTF-8"', text, count=1)
            first = False
        if text:
            yield text.encode("utf-8", "surrogatepass")
    tail = decoder.decode(b"", final=True) if not first else ""
    if tail:
        yield tail.encode("utf-8", "surrogatepass")
