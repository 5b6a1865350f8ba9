"""growgpt.wikitext: one test per cleaning rule, real dump samples, and generated wikitext."""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growgpt.wikitext import markup_leaks, is_disambiguation, wikitext_to_text

DUMPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikidumps"
ENWIKI = DUMPS / "gensim" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

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
    assert clean("a -{zh-hans:计算机; zh-hant:電腦;}- b -{A|软件}- c -{H|zh-cn:打印; zh-tw:列印;}-d") == "a 计算机 b 软件 c d"


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


# --- disambiguation ------------------------------------------------------------------------------


@pytest.mark.parametrize("wikitext, title", [
    ("'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n{{disambiguation}}", "Mercury"),
    ("x\n{{Disambiguation|geo}}", "X"), ("x {{dab}}", "X"), ("x {{disambig}}", "X"),
    ("x {{hndis|Smith, John}}", "John Smith"), ("x {{geodis}}", "Aa River"),
    ("x {{Template:Disambiguation}}", "X"), ("x __DISAMBIG__", "X"), ("x", "Mercury (disambiguation)"),
    ("x {{homonymie}}", "Mercure"), ("x {{Begriffsklärung}}", "Merkur"), ("x {{Αποσαφήνιση}}", "Τρίπολη"),
    ("x {{Пояснение}}", "Меркурий"), ("x {{неоднозначность}}", "Меркурий"),
])
def test_disambiguation_pages(wikitext, title):
    assert is_disambiguation(wikitext, title)


@pytest.mark.parametrize("wikitext, title", [
    ("Mercury is a planet.{{disambiguation needed|date=May 2020}}", "Mercury"),
    ("{{Distinguish|Mercury (element)}} Mercury is a planet.", "Mercury"),
    ("{{About|the planet|other uses|Mercury (disambiguation)}} Mercury is a planet.", "Mercury"),
    ("{{PAGESINCATEGORY:Disambiguation}} pages", "Statistics"),
    ("{{Paradise}} text", "Paradise"),
])
def test_articles_are_not_disambiguation(wikitext, title):
    assert not is_disambiguation(wikitext, title)


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
    if not ENWIKI.is_file():
        pytest.skip(f"dump samples not found ({ENWIKI}); they live in ../shared next to the repository")
    return {title: wikitext_to_text(text, title) for title, text in _articles(ENWIKI)}


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
    path = DUMPS / sample
    if not path.is_file():
        pytest.skip(f"dump sample not found ({path})")
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
        st.builds(lambda n, k, v: "{{%s|%s=%s}}" % (n, k, v), NAMES, ARG_KEYS, children),
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
    assert isinstance(is_disambiguation(text, text[:20]), bool)


# --- the fast paths match what they replace -----------------------------------------------------
# Each speed-up in growgpt.wikitext replaced a plain regex; these keep the plain regex as the
# reference and check the fast version against it on generated text.

from growgpt import wikitext as _wt  # noqa: E402

_TOKEN_REGEX = re.compile(r"\{\{|\}\}|\{\||\|\}")
_PAREN_CLOSE_DEBRIS_REGEX = re.compile(r"[,;:](?<![,;:][,;:])(?<![,;:] [,;:])[ ,;:]*\)")


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="{}|a\n ", max_size=40), steps=st.lists(st.integers(0, 3), max_size=40))
def test_token_scanner_finds_what_the_token_regex_finds(text, steps):
    scanner = _wt._token_scanner(text)
    next(scanner)
    pos = 0
    for step in steps + [0] * (len(text) + 2):
        pos = min(len(text), pos + step)
        m = _TOKEN_REGEX.search(text, pos)
        found = scanner.send(pos)
        assert found == ((m.start(), m.group()) if m else (-1, ""))
        if found[0] < 0:
            break
        pos = found[0] + 1 + (step > 0)  # the scan resumes after a token, or inside `|}}`


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet=" ,;:()a\n", max_size=40))
def test_reversed_paren_debris_regex_matches_the_forward_one(text):
    assert (_wt._PAREN_CLOSE_DEBRIS_REV.sub(")", text[::-1])[::-1]
            == _PAREN_CLOSE_DEBRIS_REGEX.sub(")", text))


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="{}[]|a", max_size=12))
def test_has_leftover_matches_the_leftover_regex(text):
    assert _wt._has_leftover(text) == bool(_wt._LEFTOVER.search(text))


def test_plain_links_take_the_quick_path_with_the_same_text():
    assert clean("a [[ New_York ]] b") == "a New York b"
    assert clean("see [[#History]] and [[Foo (bar)|]]") == "see History and Foo"
    assert clean("x [[Foo| ]] y") == "x Foo y"  # a blank label is the pipe trick too
    assert clean("x [[Foo|the foo]] y [[Category:Bar]]") == "x the foo y"


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="[]|a:#_ \nF", max_size=40))
def test_resolve_links_matches_a_callback_per_link(text):
    assert _wt._resolve_links(text) == _wt._LINK.subn(lambda m: _wt._link(*m.groups()), text)


def _elements_the_general_way(text: str) -> str:
    """`_strip_elements` with both of its shortcuts (a whole <ref> in the search regex, the
    str.find for the closing tag) switched off: every element takes the general path."""
    plain = re.compile(r"<(%s)\b([^<>]*)>" % "|".join(_wt._DROP_ELEMENTS), re.I)
    saved = _wt._ELEMENT_OPEN, _wt._CLOSE_TAG
    _wt._ELEMENT_OPEN, _wt._CLOSE_TAG = plain, {n: "\x00never" for n in _wt._DROP_ELEMENTS}
    try:
        return _wt._strip_elements(text)
    finally:
        _wt._ELEMENT_OPEN, _wt._CLOSE_TAG = saved


ELEMENT_SOUP = st.lists(st.sampled_from([
    "<ref>", "<ref name=x>", "<REF>", "<ref/>", "<ref name=y />", "<ref-x>", "</ref>", "</REF >", "</ref >",
    "<nowiki>", "</nowiki>", "<math>", "</math>", "<references/>", "<span>", "<", ">", "/", "a", " ", "\n",
]), max_size=25).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=ELEMENT_SOUP)
def test_element_shortcuts_change_nothing(text):
    assert _wt._strip_elements(text) == _elements_the_general_way(text)


@settings(max_examples=1500, deadline=None)
@given(text=st.lists(st.sampled_from(["{{{1|a}}}", "{{{", "}}}", "{{x|", "}}", "{|", "|}", "\n", "a", "|", "{",
                                      "\n{| c={{{2|y}}}\n", "}"]), max_size=25).map("".join),
       keep_tables=st.booleans())
def test_template_parameters_substituted_on_the_way_as_if_first(text, keep_tables):
    first = _wt._expand(_wt._PARAM.sub(lambda m: m.group(2) or "", text), "T", keep_tables, params=True)
    assert _wt._expand(text, "T", keep_tables) == first


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="'ab", max_size=30))
def test_quote_regex_removes_what_three_replaces_remove(text):
    Q5, Q3, Q2 = "'" * 5, "'" * 3, "'" * 2
    assert _wt._QUOTES.sub("", text) == text.replace(Q5, "").replace(Q3, "").replace(Q2, "")


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet=", a(\n", max_size=30))
def test_space_and_comma_regexes_match_their_str_versions(text):
    assert bool(_wt._COMMA_PAIR.search(text)) == (",," in text or ", ," in text)
    assert _wt._OPEN_PAREN_SPACE.sub("(", text) == text.replace("( ", "(")
    assert _wt._LINE_START_SPACE.sub("\n", text) == text.replace("\n ", "\n")


_EXT_LINK_PLAIN = re.compile(_wt._EXT_LINK.pattern.replace("(?=[hfmnigs/])", ""), re.I)
_DISAMBIG_PLAIN = re.compile(_wt._DISAMBIG_TEMPLATE.pattern.replace("(?=[dhptbufнмпзα多消동])", ""), re.I)


@pytest.mark.parametrize("scheme", ["http:", "https:", "ftp:", "//", "mailto:", "news:", "irc:", "ircs:",
                                    "gopher:", "sftp:"])
def test_first_letter_lookaheads_turn_nothing_away(scheme):
    """The lookaheads only skip what no alternative could match: checked for every first letter
    (and its case variants under re.I, e.g. the long s and the Kelvin sign) up to U+3000."""
    assert _EXT_LINK_PLAIN.pattern != _wt._EXT_LINK.pattern
    for c in map(chr, range(0x20, 0x3000)):
        text = f"[{c}{scheme[1:]}x y]"
        assert bool(_wt._EXT_LINK.search(text)) == bool(_EXT_LINK_PLAIN.search(text)), text


def test_disambiguation_lookahead_turns_nothing_away():
    assert _DISAMBIG_PLAIN.pattern != _wt._DISAMBIG_TEMPLATE.pattern
    words = ["dab", "homonymie", "patronymie", "toponymie", "begriffsklärung", "desambiguación", "dp",
             "ujednoznacznienie", "förgrening", "täsmennyssivu", "неоднозначность", "многозначность", "пояснение",
             "значения", "αποσαφήνιση", "多義語", "消歧义", "동음이의", "disambig", "hndis", "cite web"]
    for word in words:
        for c in map(chr, range(0x20, 0x3000)):
            text = "{{" + c + word[1:] + "}}"
            assert bool(_wt._DISAMBIG_TEMPLATE.search(text)) == bool(_DISAMBIG_PLAIN.search(text)), text
