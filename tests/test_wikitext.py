"""growgpt.wiki.wikitext (and .templates): one test per cleaning rule, real dump samples, and generated wikitext."""

from __future__ import annotations

import bz2
import html
import html.entities
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growgpt.wiki import templates
from growgpt.wiki import wikitext as wt
from growgpt.wiki.wikitext import markup_leaks, wikitext_to_text

from conftest import SHARED_DUMPS, dump_sample

ENWIKI = "gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

def leaks(text: str) -> list[str]:
    return markup_leaks(text)


def clean(wikitext: str, **kw) -> str:
    return wikitext_to_text(wikitext, "Title", **kw)


# --- links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("wikitext, text", [
    ("a [[target|label]] b", "a label b"),
    ("a [[target]] b", "a target b"),
    ("[[bank]]s and [[Greek]]ς", "banks and Greekς"),
    ("[[New_York]]", "New York"),
    ("see [[:Category:People from Bodmin]]", "see People from Bodmin"),
    ("a [[wikt:word]] b", "a word b"),
    ("a [[Paris#History|history of Paris]] b", "a history of Paris b"),
])
def test_wiki_links_keep_their_text(wikitext, text):
    assert clean(wikitext) == text


@pytest.mark.parametrize("wikitext", [
    "a [[Category:Physics]] b", "a [[Category:Physics|Sort key]] b", "a [[fr:Paris]] b",
    "a [[zh-min-nan:Paris]] b", "a [[Κατηγορία:Πόλεις]] b", "a [[Категория:Города]] b",
    "a [[commons:Category:Paris]] b", "a [[wikipedia:el:Αθήνα]] b",
])
def test_category_and_interlanguage_links_go(wikitext):
    assert clean(wikitext) == "a b"


def test_file_links_go_with_their_nested_captions():
    assert clean("a [[File:x.jpg|thumb|a [[link]] in caption]] b") == "a b"
    assert clean("a [[Image:x.png|thumb|[[A|b]] and [http://e.com ext] and {{convert|5|km}}]] b") == "a b"
    assert clean("a [[Αρχείο:x.jpg|thumb|λεζάντα]] b [[Fichier:y.jpg|vignette|légende]] c") == "a b c"
    # a caption may run over several lines
    assert clean("Types\n[[File:World.png|460px|thumb\n | caption [[on]]\n two lines]]\nText") == "Types\n\nText"


def test_unclosed_file_link_loses_only_its_line():
    assert clean("[[Category:Epirus]\nNext line.") == "Next line."


def test_external_links():
    assert clean("a [http://example.com the label] b") == "a the label b"
    assert clean("a [http://example.com] b [//example.org/x] c") == "a b c"
    assert clean("bare http://example.com stays") == "bare http://example.com stays"


# --- templates -----------------------------------------------------------------------------------


def test_templates_vanish_nested_and_multiline():
    assert clean("a {{b|{{c|{{d}}}}|e=[[f|g]]}} h") == "a h"
    assert clean("{{Infobox person\n| name = X\n| born = {{birth date|1950|1|2}}\n}}\nText.") == "Text."
    assert clean("a {{{1|default}}} b") == "a default b"


@pytest.mark.parametrize("wikitext, text", [
    ("{{convert|5|km|mi}}", "5 km"),
    ("{{convert|5|to|10|km|mi}}", "5 to 10 km"),
    ("{{convert|100|km2|sqmi}}", "100 km²"),
    ("{{lang|fr|texte}}", "texte"),
    ("{{lang-de|Wort}}", "Wort"),
    ("{{nowrap|5 km}}", "5 km"),
    ("{{as of|2010}}", "As of 2010"),
    ("{{as of|2010|5|lc=y}}", "as of May 2010"),
    ("{{birth date|1950|1|2}}", "January 2, 1950"),
    ("{{death date and age|2001|12|3|1950|1|2|df=y}}", "3 December 2001"),
    ("{{circa|1850}}", "c. 1850"),
    ("{{frac|3|1|2}}", "3 1/2"),
    ("{{ill|Foo|de|Foo (Begriff)}}", "Foo"),
    ("{{nihongo|Tokyo|東京|Tōkyō}}", "Tokyo (東京, Tōkyō)"),
    ("{{PAGENAME}}", "Title"),
    ("{{formatnum:12345}}", "12345"),
    ("x{{ndash}}y", "x–y"),
    ("{{date|1|janvier|2000}}", "1 janvier 2000"),
    ("le {{XIXe siècle}}", "le XIXe siècle"),
    ("{{quote|To be or not to be.}}", "To be or not to be."),
])
def test_text_bearing_templates_render(wikitext, text):
    assert clean(wikitext) == text


@pytest.mark.parametrize("wikitext", [
    "{{IPA|/ˈæ/}}", "{{IPAc-en|ˈ|æ}}", "{{cite web|url=http://x|title=T}}", "{{citation needed}}",
    "{{reflist}}", "{{DEFAULTSORT:X}}", "{{#if:a|b|c}}", "{{Authority control}}",
    "{{citation|last=Smith|title=Book}}",
])
def test_other_templates_vanish(wikitext):
    assert clean(f"a {wikitext} b") == "a b"


def test_wikivoyage_listing_keeps_name_and_description():
    listing = ("* {{see\n| name=Temple of Hera | alt=Tempio di Hera | url=http://x | lat=37.2 | long=13.6\n"
               "| hours=9:00-19:00 | price=\n| content=A Doric temple.\n}}")
    assert clean(listing) == "Temple of Hera (Tempio di Hera). 9:00-19:00. A Doric temple."


@pytest.mark.parametrize("name", ["proorismos", "city", "prosvasi", "event", "vCard"])
def test_other_wikivoyages_listings_keep_their_text(name):
    # elwikivoyage's destination/city/access listings and dewikivoyage's vCard: dropped whole before,
    # which cost articles all their destinations (and made some "too short")
    listing = f"* {{{{{name} | name=[[Σαιν-Ντενί (Ρεϋνιόν)|Σαιν-Ντενί]] | lat=1 | content=Πρωτεύουσα του νησιού.}}}}"
    assert clean(listing.replace("content", "description" if name == "vCard" else "content")) == \
        "Σαιν-Ντενί. Πρωτεύουσα του νησιού."


def test_removed_template_leaves_no_empty_brackets():
    assert clean("Albert ({{IPAc-en|ˈ|æ}}; born 1950) was.") == "Albert (born 1950) was."
    assert clean("Albedo ({{IPAc-en|æ}}) is.") == "Albedo is."
    assert clean("X ({{IPA|a}}, {{IPA|b}}) y ( , ) z.") == "X y z."
    assert clean("such as {{chem|A}}, {{chem|B}}, and C.") == "such as, and C."
    assert clean("Paris {{small|}} , France .") == "Paris, France."


# --- elements ------------------------------------------------------------------------------------


def test_references_go():
    assert clean('a<ref>x {{cite web|url=y}}</ref> b<ref name=x/> c<ref name="y" /> d') == "a b c d"
    assert clean("a<ref group=n>x</ref> b <references/> c <references>\n<ref>z</ref>\n</references>") == "a b c"


def test_unclosed_ref_loses_only_its_tag():
    # <ref name=x> that should have been <ref name=x/>: the next ref must not swallow the text between
    assert clean("First.<ref name=x> Middle text.<ref>cite</ref> End.") == "First. Middle text. End."


@pytest.mark.parametrize("element", [
    "<math>x^2</math>", "<gallery>\nFile:a.jpg|caption\n</gallery>", "<timeline>Colors=</timeline>",
    '<syntaxhighlight lang="c">int x = {0};</syntaxhighlight>', "<source lang=python>x = {}</source>",
    "<pre>code</pre>", "<chem>H2O</chem>", "<imagemap>Image:x.png\nrect 0 0 1 1 [[A]]\n</imagemap>",
])
def test_non_prose_elements_go(element):
    assert clean(f"a {element} b") == "a b"


def test_comments_go_and_unclosed_comment_hides_only_its_line():
    assert clean("a <!-- hidden\n== note ==\n --> b") == "a b"
    assert clean("a <!-- never closed\nnext line") == "a\nnext line"


def test_html_tags_go_text_stays():
    assert clean('a <span style="color:red">b</span> <small>c</small> H<sub>2</sub>O x<sup>2</sup>') == \
        "a b c H2O x2"
    assert clean("line one<br>line two<br />three") == "line one\nline two\nthree"
    assert clean("<div class=x>\n<blockquote>Quoted.</blockquote>\n</div>") == "Quoted."


def test_nowiki_content_is_literal():
    assert clean("<nowiki>''not italic'' [http://x]</nowiki> and <nowiki/>x") == "''not italic'' [http://x] and x"


def test_entities_unescaped():
    assert clean("a&nbsp;b &amp; c&ndash;d &lt;tag&gt; &quot;q&quot; &#233; &amp;nbsp;") == 'a b & c–d <tag> "q" é'


def test_bold_italic_quotes_go():
    assert clean("'''''both''''' ''it'' '''bold''' l''''apostrophe") == "both it bold l'apostrophe"


def test_chinese_variant_markup():
    assert (clean("a -{zh-hans:计算机; zh-hant:電腦;}- b -{A|软件}- c -{H|zh-cn:打印; zh-tw:列印;}-d")
            == "a 计算机 b 软件 c d")


def test_magic_words_go():
    assert clean("__NOTOC__a __TOC__ b __БЕЗ_ОГЛАВЛЕНИЯ__ c __init__") == "a b c __init__"


# --- structure -----------------------------------------------------------------------------------


def test_headings_become_plain_lines():
    text = clean("Intro.\n\n== History ==\nOld.\n=== Early years===\nYoung.\n====Sub====\nText.")
    assert text == "Intro.\n\nHistory\nOld.\nEarly years\nYoung.\nSub\nText."


def test_headings_of_empty_sections_go():
    assert clean("== A ==\n{{empty}}\n== B ==\nText.\n=== C ===\n<gallery>x</gallery>\n") == "B\nText."


def test_lists_become_lines():
    assert clean("* one\n** two [[x|three]]\n# four\n#: five\n; six : seven\n: eight") == \
        "one\ntwo three\nfour\nfive\nsix : seven\neight"


@pytest.mark.parametrize("heading", ["References", "External links", "See also", "Further reading", "Notes",
                                     "Sources", "Bibliography", "Notes and references", "Références",
                                     "Liens externes", "Източници", "Παραπομπές"])
def test_reference_sections_are_dropped_with_their_content(heading):
    wikitext = (f"Text.\n== {heading} ==\n* [[A link]]\n{{{{reflist}}}}\n=== Sub ===\nMore links.\n"
                "== Life ==\nKept.")
    assert clean(wikitext) == "Text.\nLife\nKept."


@pytest.mark.parametrize("heading", ["See also", "Δείτε επίσης", "Voir aussi", "Siehe auch"])
def test_see_also_is_dropped_only_as_a_top_level_section(heading):
    # on Wikivoyage "=== See also ===" is a subsection of "What to see", full of sights
    sights = f"== What to see ==\nThe old town.\n=== {heading} ===\nThe castle by the sea, open daily.\n"
    assert clean(sights) == f"What to see\nThe old town.\n{heading}\nThe castle by the sea, open daily."
    assert clean(f"Text.\n== {heading} ==\n* [[A link]]\n== Life ==\nKept.") == "Text.\nLife\nKept."


def test_tables_dropped_or_kept():
    table = '{| class="wikitable"\n|+ Caption\n|-\n! H1 !! H2\n|-\n| style="x" | a || [[b|B]]\n|}\nAfter.'
    assert clean(table) == "After."
    assert clean(table, keep_tables=True) == "Caption\nH1\nH2\na\nB\n\nAfter."
    assert clean(":{|\n| indented table\n|}\nAfter.") == "After."


def test_tables_inside_templates_and_templates_inside_tables():
    assert clean("{{Collapse|\n{|\n| a\n|}}}\nAfter.") == "After."  # |}}} = table end + template end
    assert clean("{|\n| {{flag|France}} || {{convert|5|km}}\n|}\nAfter.") == "After."
    assert clean("{{foo\n|}}\nAfter.") == "After."  # |}} = empty last argument + template end


# --- unbalanced markup and worst cases -----------------------------------------------------------


def test_unclosed_markup_does_not_eat_the_article():
    # the `{{` and its name go; the argument line goes as debris (it starts with a pipe)
    assert clean("{{Infobox\n| a = 1\nFirst paragraph.\n\nSecond paragraph.") == \
        "First paragraph.\n\nSecond paragraph."
    assert clean("{|\n| cell\nRest of the article.") == "Rest of the article."
    assert clean("[[unclosed link\nRest.") == "unclosed link\nRest."
    assert clean("Stray }} and ]] and |} closers.") == "Stray and and closers."


@pytest.mark.parametrize("junk", [
    "{{", "}}", "[[", "]]", "{|\n", "|}\n", "<ref>", "<!--", "[[File:", "{{a|", "<nowiki>", "{{{",
    "=", "\n=", "[http://x ", "<", "(", ";", "__A", "&amp;",
])
def test_pathological_input_finishes(junk):
    # 100k repetitions: a quadratic pass would take minutes here, every pass is linear instead
    assert not leaks(wikitext_to_text(junk * 100_000))


def test_pathological_nesting_finishes():
    for text in ("{{a|" * 30_000 + "}}" * 30_000, "[[a|" * 30_000 + "]]" * 30_000,
                 "[[File:a|" * 30_000 + "]]" * 30_000, "<ref>a" * 30_000 + "</ref>",
                 "=" * 100_000 + "x\n" + "=\n" * 100_000, "[http://x " * 20_000 + " " * 20_000):
        assert not leaks(wikitext_to_text(text))


# --- real samples --------------------------------------------------------------------------------


def _articles(path: Path):
    """(title, wikitext) of the namespace-0, non-redirect pages of a dump sample (bz2 or plain, any
    encoding: the XML parser reads the bytes; schema 0.3 has no <ns>, its samples hold articles)."""
    with (bz2.open if path.suffix == ".bz2" else open)(path, "rb") as f:
        page: dict = {}
        for _, el in ET.iterparse(f, events=("end",)):
            tag = el.tag.rsplit("}", 1)[-1]
            if tag in ("title", "ns", "text"):
                page[tag] = el.text or ""
            elif tag == "redirect":
                page["redirect"] = True
            elif tag == "page":
                if page.get("ns", "0") == "0" and not page.get("redirect"):
                    yield page["title"], page["text"]
                page = {}
                el.clear()


@pytest.fixture(scope="module")
def enwiki() -> dict[str, str]:
    return {title: wikitext_to_text(text, title) for title, text in _articles(dump_sample(ENWIKI))}


def test_enwiki_sample_has_no_leaks(enwiki):
    assert len(enwiki) == 106
    leaky = {title: leaks(text) for title, text in enwiki.items() if leaks(text)}
    assert not leaky


def test_enwiki_sample_reads_like_text(enwiki):
    anarchism = enwiki["Anarchism"]
    assert anarchism.startswith("Anarchism is a political philosophy that advocates self-governed societies "
                                "based on voluntary institutions.")
    lines = anarchism.split("\n")
    assert "History" in lines and "Etymology and terminology" in lines  # headings alone on their lines
    assert "References" not in lines and "External links" not in lines
    assert "Category" not in anarchism and "thumb|" not in anarchism
    # most of the article survives: the text is prose, not a skeleton
    assert len(anarchism) > 30_000
    assert not any(line.startswith(("|", "*", "#", "==")) for text in enwiki.values() for line in text.split("\n"))


@pytest.mark.parametrize("sample", [
    "gensim/bgwiki-latest-pages-articles-shortened.xml.bz2", "gensim/enwiki-table-markup.xml.bz2",
    "mwbzutils-elwikivoyage/sample-pages-articles.xml.bz2", "pignlproc/enwiki-20090902-pages-articles-sample.xml",
    "pignlproc/frwiki-20101103-pages-articles-sample.xml", "wikipedia2vec/enwiki-pages-articles-sample.xml.bz2",
    "dumpster-dive/tinywiki-latest-pages-articles.xml",
])
def test_other_samples_have_no_leaks(sample):
    if sample.startswith("gensim/"):
        path = dump_sample(sample)  # (gensim, a dev dependency, ships these)
    else:
        path = SHARED_DUMPS / sample
        if not path.is_file():  # not vendored: a clean clone (CI) has no ../shared, and no package ships it
            pytest.skip(f"dump sample {sample} is only in {SHARED_DUMPS} (not vendored, no package ships it), "
                        "which a clean clone lacks")
    for keep_tables in (False, True):
        leaky = {title: leaks(wikitext_to_text(text, title, keep_tables=keep_tables))
                 for title, text in _articles(path)}
        assert not {title: found for title, found in leaky.items() if found}


# --- generated wikitext --------------------------------------------------------------------------

# Plain text holds no markup characters, so that two fragments side by side cannot form markup.
WORDS = st.text(alphabet="abcdefghij XYZéΩж中,.-–()", max_size=10)
ENTITIES = st.sampled_from(["&amp;", "&nbsp;", "&ndash;", "&quot;", "&eacute;", "&#233;", "&lt;b&gt;"])
NAMES = st.sampled_from(["cite web", "convert", "lang", "nowrap", "IPA", "IPAc-en", "as of", "birth date",
                         "reflist", "Infobox person", "see", "!", "small", "lang-fr", "flag", "quote", "sfn",
                         "#if:x", "formatnum:12", "PAGENAME", "-", "ill", "nihongo", "frac"])
TARGETS = st.text(alphabet="abcdefXYZ _()é", min_size=1, max_size=8)
ARG_KEYS = st.sampled_from(["name", "content", "text", "1", "2", "u", "lt", "alt", "url"])


def _inline(children):
    def template(name, args):
        return "{{" + name + "".join("|" + a for a in args) + "}}"

    return st.one_of(
        st.builds(template, NAMES, st.lists(children, max_size=3)),
        st.builds(lambda n, k, v: f"{{{{{n}|{k}={v}}}}}", NAMES, ARG_KEYS, children),
        st.builds(lambda t, label: f"[[{t}|{label}]]", TARGETS, children),
        st.builds(lambda t: f"[[{t}]]", TARGETS),
        st.builds(lambda c: f"[[File:X.jpg|thumb|{c}]]", children),
        st.builds(lambda label: f"[http://example.com {label}]", WORDS),
        st.builds(lambda c: f"<ref>{c}</ref>", children),
        st.just('<ref name="n"/>'),
        st.builds(lambda c: f'<span class="x">{c}</span>', children),
        st.builds(lambda c: f"<small>{c}</small><br/>", children),
        st.builds(lambda c: f"'''{c}'''", children),
        st.builds(lambda c: f"''{c}''", children),
        st.builds(lambda c: f"<!-- {c} -->", children),
        st.just("<math>x^{2}</math>"),
        st.builds(lambda w: f"<nowiki>{w}</nowiki>", WORDS),
        st.builds(lambda a, b: a + b, children, children),
    )


INLINE = st.recursive(st.one_of(WORDS, ENTITIES), _inline, max_leaves=12)


def _table(rows):
    return '\n{| class="wikitable"\n' + "".join(f"|-\n| {a} || {b}\n" for a, b in rows) + "|}\n"


BLOCK = st.one_of(
    INLINE,
    st.builds(lambda t: f"\n== {t} ==\n", WORDS),
    st.builds(lambda items: "\n" + "".join(f"* {i}\n" for i in items), st.lists(INLINE, max_size=3)),
    st.builds(_table, st.lists(st.tuples(INLINE, INLINE), max_size=3)),
    st.builds(lambda args: "\n{{Infobox\n" + "".join(f"| k{i} = {a}\n" for i, a in enumerate(args)) + "}}\n",
              st.lists(INLINE, max_size=3)),
    st.builds(lambda t: "\n{{Collapse|\n" + _table([(t, t)]) + "}}\n", INLINE),
)
DOCUMENT = st.lists(BLOCK, max_size=8).map("".join)

HARD = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=1500, deadline=None, suppress_health_check=HARD)
@given(before=DOCUMENT, after=DOCUMENT)
def test_generated_balanced_wikitext_leaves_no_markup(before, after):
    text = wikitext_to_text(before + "\n\nSENTINEL\n\n" + after, "T")
    assert not [t for t in ("{{", "}}", "[[", "]]", "{|", "|}", "<ref") if t in text]
    assert "\x01" not in text and "\x02" not in text  # internal markers never escape
    assert "SENTINEL" in text  # balanced markup never swallows the text that follows it


JUNK = st.lists(st.sampled_from([
    "{{", "}}", "[[", "]]", "{|", "|}", "|", "\n", "<ref>", "</ref>", "<ref name=x/>", "<!--", "-->", "==", "=",
    "'''", "&amp;", "&#91;", "[http://x ", "[", "]", "{", "}", "<nowiki>", "</nowiki>", "{{{", "}}}", "<math>",
    "a", "b c", "*", "#", ":", ";", "(", ")", ",", " ", "<", ">", "<span>", "File:", "[[File:", "__NOTOC__",
    "!", "{{!}}", "\x01", "\x02", "\ue000", "<br>", "&lt;", "ref", "{{convert|", "{{see|name=", "\r",
]), max_size=60).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=HARD)
@given(junk=JUNK, keep_tables=st.booleans())
def test_generated_junk_never_crashes_or_leaks_markup(junk, keep_tables):
    text = wikitext_to_text(junk, "T", keep_tables=keep_tables)
    assert not [t for t in ("{{", "}}", "[[", "]]", "{|", "|}", "<ref") if t in text]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_never_crashes(text):
    assert isinstance(wikitext_to_text(text), str)


# --- the fast paths match what they replace -----------------------------------------------------
# Each speed-up in growgpt.wiki.wikitext and .templates replaced a plain regex; these keep the plain regex as the
# reference and check the fast version against it on generated text.

_TOKEN_REGEX = re.compile(r"\{\{|\}\}|\{\||\|\}")
_PAREN_CLOSE_DEBRIS_REGEX = re.compile(r"[,;:](?<![,;:][,;:])(?<![,;:] [,;:])[ ,;:]*\)")


def _expand_reference(s: str, title: str, keep_tables: bool, params: bool = False) -> str:
    """What `templates.expand` does, without its fast paths: a regex search per token (`{|` and `|}`
    inside a line are text, as they are there), a walk down the stack to the template for each
    `}}`, every kept frame's text joined and read again (nested tables too), every opening pushed
    one by one, and every unclosed table's attribute line dropped through a frame."""
    out, stack, ignored, pos, n = [], [], set(), 0, len(s)
    attrs = None  # the frame of an unclosed table's attribute line in the rerun, while it lasts

    def dropping():
        return any(f["dropped"] and not f.get("dead") for f in stack)

    def kept():
        return sum(not f["dropped"] for f in stack)

    def purge():
        while stack and stack[-1].get("dead"):
            stack.pop()

    while True:
        m = _TOKEN_REGEX.search(s, pos)
        i, tok = (m.start(), m.group()) if m else (-1, "")
        if attrs is not None and (i < 0 or i >= attrs["end"]):
            pos, attrs["dead"], attrs = attrs["end"], True, None
            purge()
        if i < 0:
            if not stack:
                out.append(s[pos:])
                return "".join(out)
            ignored.update(f["at"] for f in stack if f["kind"] != "attrs")
            del out[stack[0]["start"]:]
            pos, stack = stack[0]["at"], []
            continue
        if not dropping():
            out.append(s[pos:i])
        pos = i + 2
        if tok == "{{":
            if not params and s.startswith("{", pos):
                return _expand_reference(templates.PARAM.sub(templates.param_default, s), title, keep_tables, True)
            if i in ignored:
                pos = templates.NAME_ON_LINE.match(s, pos).end()
                continue
            render = None if dropping() else templates.renderer(templates.TEMPLATE_NAME.match(s, pos).group())
            if kept() >= templates.MAX_KEPT_DEPTH:
                render = None
            stack.append({"kind": "template", "start": len(out), "dropped": render is None, "at": i,
                          "render": render})
        elif tok == "}}":
            j = len(stack) - 1
            while j >= 0 and stack[j]["kind"] != "template":
                j -= 1
            if j < 0:
                continue
            while len(stack) > j:
                f = stack.pop()
                if f["dropped"] or f.get("dead"):
                    if f is attrs:
                        attrs = None
                    continue
                body = "".join(out[f["start"]:])
                del out[f["start"]:]
                if f["kind"] == "table":
                    out.append("\n" + "\n".join(templates.table_text([body])) + "\n")
                else:
                    out.append(f["render"](body, title))
            purge()
        elif tok == "{|":
            if not templates.at_line_start(s, i, " \t:"):
                if not dropping():
                    out.append(tok)
                continue
            if i in ignored:
                nl = s.find("\n", pos)
                attrs = {"kind": "attrs", "start": len(out), "dropped": True, "at": i, "end": n if nl < 0 else nl}
                stack.append(attrs)
                continue
            dropped = not keep_tables or dropping() or kept() >= templates.MAX_KEPT_DEPTH
            stack.append({"kind": "table", "start": len(out), "dropped": dropped, "at": i})
        else:
            at_start = templates.at_line_start(s, i, " \t")
            if at_start and stack and stack[-1]["kind"] == "table":
                f = stack.pop()
                if not f["dropped"]:
                    body = "".join(out[f["start"]:])
                    del out[f["start"]:]
                    out.append("\n" + "\n".join(templates.table_text([body])) + "\n")
                purge()
            elif pos < n and s[pos] == "}":
                pos = i + 1
                if not dropping():
                    out.append("|")
            elif not dropping() and not at_start:
                out.append(tok)


# Token soup for the scan: pieces repeated up to 40 times, so that stretches of openings (taken in
# bulk _BULK deep), runs of braces and of `}}`, nested kept tables, deep templates all come up.
SCAN_PIECES = st.sampled_from([
    "{{", "}}", "{|", "|}", "\n{|", "\n|}", "\n:{|", " |}", "{", "}", "|", "\n", "a", "{{a", "{{a|", "{{nowrap|",
    "{{lang|x|", "{{!}}", "{{{", "}}}", "{{{1|", "\n{| {{x\n", "|}}", "\n| c || d", "\n! h", "\n|-", "[[", "]]", "=",
    "{{a}}", "{{ndash}}", "{{nowrap|b}}",
])
SCAN_SOUP = st.lists(st.tuples(SCAN_PIECES, st.integers(1, 40)), max_size=12).map(
    lambda pieces: "".join(p * k for p, k in pieces))


@settings(max_examples=1500, deadline=None, suppress_health_check=HARD)
@given(text=SCAN_SOUP, keep_tables=st.booleans())
def test_expand_matches_the_plain_scan(text, keep_tables):
    assert templates.expand("\n" + text, "T", keep_tables) == _expand_reference("\n" + text, "T", keep_tables)


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="{}|a\n :", max_size=40), keep_tables=st.booleans())
def test_expand_matches_the_plain_scan_on_any_braces(text, keep_tables):
    assert templates.expand(text, "T", keep_tables) == _expand_reference(text, "T", keep_tables)


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet=" ,;:()a\n", max_size=40))
def test_reversed_paren_debris_regex_matches_the_forward_one(text):
    assert (wt.PAREN_CLOSE_DEBRIS_REV.sub(")", text[::-1])[::-1]
            == _PAREN_CLOSE_DEBRIS_REGEX.sub(")", text))


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="{}[]|a", max_size=12))
def test_has_leftover_matches_the_leftover_regex(text):
    assert wt.has_leftover(text) == bool(wt.LEFTOVER.search(text))


def test_plain_links_take_the_quick_path_with_the_same_text():
    assert clean("a [[ New_York ]] b") == "a New York b"
    assert clean("see [[#History]] and [[Foo (bar)|]]") == "see History and Foo"
    assert clean("x [[Foo| ]] y") == "x Foo y"  # a blank label is the pipe trick too
    assert clean("x [[Foo|the foo]] y [[Category:Bar]]") == "x the foo y"


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="[]|a:#_ \nF", max_size=40))
def test_resolve_links_matches_a_callback_per_link(text):
    assert wt.resolve_links(text) == wt.LINK.subn(lambda m: wt.link_text(*m.groups()), text)


def _elements_the_general_way(text: str) -> str:
    """`strip_elements` with both of its shortcuts (a whole <ref> in the search regex, the
    str.find for the closing tag) switched off: every element takes the general path."""
    plain = re.compile(rf"<({'|'.join(wt.DROP_ELEMENTS)})\b([^<>]*)>", re.I)
    saved = wt.ELEMENT_OPEN, wt.CLOSE_TAG
    wt.ELEMENT_OPEN, wt.CLOSE_TAG = plain, {n: "\x00never" for n in wt.DROP_ELEMENTS}
    try:
        return wt.strip_elements(text)
    finally:
        wt.ELEMENT_OPEN, wt.CLOSE_TAG = saved


ELEMENT_SOUP = st.lists(st.sampled_from([
    "<ref>", "<ref name=x>", "<REF>", "<ref/>", "<ref name=y />", "<ref-x>", "</ref>", "</REF >", "</ref >",
    "<nowiki>", "</nowiki>", "<math>", "</math>", "<references/>", "<span>", "<", ">", "/", "a", " ", "\n",
]), max_size=25).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=ELEMENT_SOUP)
def test_element_shortcuts_change_nothing(text):
    assert wt.strip_elements(text) == _elements_the_general_way(text)


def _strip_elements_plain(s: str) -> str:
    """`strip_elements` as it was: a search for the closing tag and one for a reopening tag per
    element, no shortcut, no chain of reopened tags taken at once."""
    plain = re.compile(rf"<({'|'.join(wt.DROP_ELEMENTS)})\b([^<>]*)>", re.I)
    out, pos, unclosed = [], 0, set()
    while m := plain.search(s, pos):
        out.append(s[pos : m.start()])
        pos = m.end()
        name = m.group(1).lower()
        if m.group(2).endswith("/") or name in unclosed:
            continue
        close = wt.ELEMENT_CLOSE[name].search(s, pos)
        if close is None:
            unclosed.add(name)
            continue
        if wt.ELEMENT_REOPEN[name].search(s, pos, close.start()):
            continue
        if name == "nowiki":
            out.append(s[pos : close.start()].translate(wt.NOWIKI_ESCAPE))
        pos = close.end()
    out.append(s[pos:])
    return "".join(out)


@settings(max_examples=2000, deadline=None)
@given(text=st.lists(st.tuples(st.sampled_from(["<ref>", "<ref name=x>", "<REF a>", "<ref/>", "</ref>", "<math>",
                                                 "</math>", "<nowiki>", "</nowiki>", "a", "<", " ", "<span>", "\n"]),
                               st.integers(1, 12)), max_size=12).map(lambda ps: "".join(p * k for p, k in ps)))
def test_elements_match_the_plain_loop(text):
    assert wt.strip_elements(text) == _strip_elements_plain(text)


@settings(max_examples=1500, deadline=None)
@given(text=st.lists(st.sampled_from(["{{{1|a}}}", "{{{", "}}}", "{{x|", "}}", "{|", "|}", "\n", "a", "|", "{",
                                      "\n{| c={{{2|y}}}\n", "}"]), max_size=25).map("".join),
       keep_tables=st.booleans())
def test_template_parameters_substituted_on_the_way_as_if_first(text, keep_tables):
    first = templates.expand(templates.PARAM.sub(lambda m: m.group(2) or "", text), "T", keep_tables, params=True)
    assert templates.expand(text, "T", keep_tables) == first


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="'ab", max_size=30))
def test_quote_regex_removes_what_three_replaces_remove(text):
    Q5, Q3, Q2 = "'" * 5, "'" * 3, "'" * 2
    assert wt.QUOTES.sub("", text) == text.replace(Q5, "").replace(Q3, "").replace(Q2, "")


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet=", a(\n", max_size=30))
def test_space_and_comma_regexes_match_their_str_versions(text):
    assert bool(wt.COMMA_PAIR.search(text)) == (",," in text or ", ," in text)
    assert wt.OPEN_PAREN_SPACE.sub("(", text) == text.replace("( ", "(")
    assert wt.LINE_START_SPACE.sub("\n", text) == text.replace("\n ", "\n")


# --- linear-time rewrites: each against the plain version it replaced -----------------------------

_NAME_LISTS = [  # (names, flags) as the module's tries are built
    (sorted(wt.FILE_NS | wt.CATEGORY_NS), re.I), (wt.DROP_ELEMENTS, re.I), (wt.BLOCK_TAGS, re.I),
    (wt.INLINE_TAGS, re.I), (sorted(html.entities.html5), 0),
]


@pytest.mark.parametrize("names, flags", _NAME_LISTS, ids=["ns", "elements", "block", "inline", "html5"])
def test_tries_match_what_the_flat_alternations_match(names, flags):
    """`trie` is atomic: safe only if no two branches of a node match the same character (under
    re.I the long s is an s, the Kelvin sign a k); and it matches what the flat list matches."""
    children: dict[str, set[str]] = {}
    for name in names:
        for k in range(len(name)):
            children.setdefault(name[:k], set()).add(name[k])
    for chars in children.values():
        for a in chars:
            for b in chars:
                if a < b:
                    assert not re.fullmatch(re.escape(a), b, flags) and not re.fullmatch(re.escape(b), a, flags)
    trie = re.compile(wt.trie(names), flags)
    flat = re.compile("|".join(map(re.escape, names)), flags)
    for name in names:
        for text in {name, name.upper(), name.title(), name[:-1], name + "x", name + "s", name[1:], name[:2]}:
            assert bool(trie.fullmatch(text)) == bool(flat.fullmatch(text)), text


_FLAT_NS = "|".join(sorted(map(re.escape, wt.FILE_NS | wt.CATEGORY_NS), key=len, reverse=True))
_FILE_LINK_PLAIN = re.compile(rf"\[\[[ \t]*(?:{_FLAT_NS})[ \t]*:[^\[\]]*(?:(?:\[(?!\[)|\](?!\]))[^\[\]]*)*\]\]",
                              re.I)
_UNCLOSED_NS_LINK_PLAIN = re.compile(rf"\[\[[ \t]*(?:{_FLAT_NS})[ \t]*:[^\n]*", re.I)


def test_namespace_lookahead_and_trie_turn_no_link_away():
    """The namespace pattern (a shape lookahead, then a trie) finds what the flat alternation of names found:
    every name, its case variants, with spaces and tabs around, and near misses."""
    for name in wt.FILE_NS | wt.CATEGORY_NS:
        for variant in {name, name.upper(), name.title(), name + "x", name[:-1], "x" + name}:
            for text in (f"[[{variant}:a]]", f"[[ \t{variant} \t:a|b [c] d]]", f"[[{variant}\t\t\t:a",
                         f"[[{variant}:a\nb]]"):
                assert (wt.FILE_LINK.sub("", text) == _FILE_LINK_PLAIN.sub("", text)
                        and wt.UNCLOSED_NS_LINK.sub("", text) == _UNCLOSED_NS_LINK_PLAIN.sub("", text)), text


@pytest.mark.parametrize("names, rx", [(wt.DROP_ELEMENTS, "ELEMENT_OPEN"), (wt.BLOCK_TAGS, "BLOCK_TAG"),
                                       (wt.INLINE_TAGS, "INLINE_TAG")])
def test_tag_lookaheads_and_tries_turn_no_tag_away(names, rx):
    """The first-letter lookahead and the trie of tag names: checked for every first letter up to
    U+3000 (one name per letter), as the other lookaheads are."""
    fast = getattr(wt, rx)
    flat = "|".join(map(re.escape, names))
    plain = re.compile(fast.pattern.replace(wt.first_letters(names), "").replace(wt.trie(names), f"(?:{flat})"), re.I)
    assert plain.pattern != fast.pattern
    for name in {name[0]: name for name in names}.values():
        for c in map(chr, range(0x20, 0x3000)):
            text = f"<{c}{name[1:]} a=b>x</{name}>"
            m, p = fast.search(text), plain.search(text)
            assert (m and (m.span(), m.groups())) == (p and (p.span(), p.groups())), text


_HEADING_PLAIN = re.compile(r"\n(={1,6})([^\n]+?)(={1,6})[ \t]*(?=\n|$)")
_HEADING_LINE_PLAIN = re.compile(r"\n(={1,6})([^\n]*?)={1,6}[ \t]*(?=\n|$)")


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet="= \ta\n", max_size=30))
def test_heading_regexes_match_their_plain_versions(text):
    assert ([(m.span(), m.groups()[1:]) for m in wt.HEADING.finditer(text)]
            == [(m.span(), m.groups()) for m in _HEADING_PLAIN.finditer(text)])
    assert ([(m.span(), m.groups()) for m in wt.HEADING_LINE.finditer(text)]
            == [(m.span(), m.groups()) for m in _HEADING_LINE_PLAIN.finditer(text)])


def _drop_sections_plain(s: str) -> str:
    """`drop_sections` as a loop over every heading, one name at a time."""
    out, pos, skip_level = [], 0, 0
    for m in _HEADING_PLAIN.finditer(s):
        level = min(len(m.group(1)), len(m.group(3)))
        if skip_level and level > skip_level:
            continue
        if skip_level:
            skip_level = 0
            pos = m.start()
        name = re.sub(r"'{2,}|\[\[|\]\]|<[^<>]*>|&nbsp;", "", m.group(2)).strip(" \t=:").lower()
        if name in wt.DROP_SECTIONS or (level <= 2 and name in wt.DROP_TOP_SECTIONS):
            out.append(s[pos : m.start()])
            skip_level = level
    if not skip_level:
        out.append(s[pos:])
    return "".join(out)


def _headings_plain(s: str) -> str:
    """`finish_headings` as a loop over every heading with a list of flags."""
    parts = wt.HEADING_ROW.split(s)
    marks, titles, texts = parts[1::3], parts[2::3], parts[3::3]
    shown, seen = [""] * len(titles), [False] * 7
    for i in range(len(titles) - 1, -1, -1):
        if texts[i] and not texts[i].isspace():
            seen = [True] * 7
        if wt.WORDLESS.fullmatch(titles[i]):
            continue
        level = len(marks[i])
        if seen[level]:
            shown[i] = "\n" + titles[i].strip()
        seen[level:] = [False] * (7 - level)
    parts[1::3] = shown
    del parts[2::3]
    return "".join(parts)


HEADED = st.lists(st.one_of(
    st.builds(lambda a, t, b, ws: f"\n{a}{t}{b}{ws}", st.sampled_from(["=", "==", "===", "====", "=" * 7]),
              st.sampled_from([" References ", "Notes", "x", " '''See also''' ", "[[Notes]]",
                               "Литература", "",
                               "<span>Sources</span>", " = ", "=", "Refer''ences", "ΠΗΓΕΣ", "See&nbsp;also"]),
              st.sampled_from(["=", "==", "===", "======"]), st.sampled_from(["", " ", "\t "])),
    st.sampled_from(["\ntext", "\n", " ", "\n\n", "\n* item", "\n\x02==\x02T", "\n\x02=\x02", "\n\x02===\x02 ."]),
), max_size=25).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=HEADED)
def test_section_and_heading_passes_match_their_loops(text):
    assert wt.drop_sections(text) == _drop_sections_plain(text)
    rows = "\n" + text.replace("\x02", "")
    rows = _HEADING_LINE_PLAIN.sub(lambda m: "\n\x02" + m[1] + "\x02" + m[2], rows)
    assert wt.finish_headings(rows) == _headings_plain(rows)


def _glue_links_plain(parts: list[str]) -> list[str]:
    glued, depth = [], 0
    for part in parts:
        if depth > 0:
            glued[-1] += "|" + part
        else:
            glued.append(part)
        depth = max(0, depth + part.count("[[") - part.count("]]"))
    return glued


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet="[]|a", max_size=40))
def test_link_gluing_matches_the_piece_by_piece_loop(text):
    assert templates.glue_links(text.split("|")) == _glue_links_plain(text.split("|"))


@settings(max_examples=2000, deadline=None)
@given(text=st.lists(st.one_of(st.sampled_from(["&", "&#", "&#x", ";", "a", " ", "1", "\n", "&a", "&amp", "&#9;"]),
                              st.sampled_from(sorted(html.entities.html5)).map(lambda e: "&" + e),
                              st.sampled_from(sorted(html.entities.html5)).map(lambda e: "&" + e[:-1])),
                     max_size=12).map("".join))
def test_unescape_changes_what_html_unescape_changes(text):
    assert wt.unescape(text) == html.unescape(text)


def test_numbered_arguments_that_are_no_position():
    # {{x|0=a}} and {{x|²=a}} crashed (IndexError, ValueError); {{x|99999999=a}} padded a list for seconds
    assert clean("a {{nowrap|0=x}} b {{nowrap|²=y}} c {{transl|99999999=z}} d") == "a b c d"
    assert clean("{{lang|fr|2=texte}} {{transl|ar|3=x}}") == "texte x"


_EXT_LINK_PLAIN = re.compile(wt.EXT_LINK.pattern.replace("(?=[hfmnigs/])", ""), re.I)


@pytest.mark.parametrize("scheme", ["http:", "https:", "ftp:", "//", "mailto:", "news:", "irc:", "ircs:",
                                    "gopher:", "sftp:"])
def test_first_letter_lookaheads_turn_nothing_away(scheme):
    """The lookaheads only skip what no alternative could match: checked for every first letter
    (and its case variants under re.I, e.g. the long s and the Kelvin sign) up to U+3000."""
    assert _EXT_LINK_PLAIN.pattern != wt.EXT_LINK.pattern
    for c in map(chr, range(0x20, 0x3000)):
        text = f"[{c}{scheme[1:]}x y]"
        assert bool(wt.EXT_LINK.search(text)) == bool(_EXT_LINK_PLAIN.search(text)), text
