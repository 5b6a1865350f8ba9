"""Disambiguation pages are dropped on exact evidence only: growgpt.wiki.disambiguation (the curated
table, MediaWiki's name rules, the wiki a dump is) and extract learning a wiki's own
disambiguation templates from the Template pages of its dump."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growgpt.wiki import tasks
from growgpt.wiki.disambiguation import Detector, LearnedTemplates, Wiki, is_disambiguation, load_table, transcluded
from growgpt.wiki.extract import extract
from growgpt.wiki.partwriter import PartWriter

from wikidump import PROSE, wiki_dump

DAB_LIST = ("'''Mercury''' may refer to:\n* [[Mercury (planet)]], the planet closest to the Sun\n"
            "* [[Mercury (element)]], a chemical element\n* [[Mercury (mythology)]], a Roman god\n")


def run(tmp_path, files: dict[str, str], out: str = "out", processes: int = 1, **kw) -> list[dict]:
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return extract(paths, str(tmp_path / out), processes=processes, progress=False, **kw)


def kept_ids(tmp_path, m: dict, out: str = "out") -> list[int]:
    return pq.read_table(tmp_path / out / m["parquet"]).column("id").to_pylist()


def dropped(tmp_path, m: dict, out: str = "out") -> list[dict]:
    return pq.read_table(tmp_path / out / m["dropped"]).to_pylist()


# --- the two false positives that made matching exact -------------------------------------------


def test_a_references_template_whose_name_ends_in_dis_drops_nothing(tmp_path):
    # Samogitian Wikipedia's {{Nūruodis}} is its {{Reflist}}: a "name ends in dis" rule dropped a
    # third of that wiki's articles as disambiguation pages
    pages = [(i, f"Straipsnis {i}", f"{PROSE} Nr. {i}.\n\n== Nūruodas ==\n{{{{Nūruodis}}}}") for i in range(1, 31)]
    pages.append((40, "Vėlnė", DAB_LIST + "{{Disambig}}"))
    [m] = run(tmp_path, {"bat_smgwiki-pages-articles.xml": wiki_dump(pages, dbname="bat_smgwiki", lang="bat-smg")})
    assert m["articles_written"] == 30 and m["filtered"]["disambiguation"] == 1
    assert m["wiki"] == {"key": "bat_smgwiki", "language": "bat-smg", "project": "wikipedia"}
    assert [(r["id"], r["detail"]) for r in dropped(tmp_path, m) if r["reason"] == "disambiguation"] == \
        [(40, "template {{Disambig}}")]
    assert is_disambiguation("x {{Nūruodis}}", "X", language="bat-smg") is None


def test_an_inline_dp_template_keeps_a_long_enwiki_article(tmp_path):
    # enwiki's {{dp|...}} has nothing to do with disambiguation; it dropped "Asteroid" (164 KB)
    asteroid = ("'''Asteroids''' are minor planets of the inner Solar System. " * 500
                + "\nCeres is about {{dp|940|km}} across.\n\n{{Reflist}}")
    pages = [(1, "Asteroid", asteroid), (2, "Mercury (disambiguation)", DAB_LIST + "{{disambiguation}}")]
    [m] = run(tmp_path, {"enwiki-pages-articles.xml": wiki_dump(pages)})
    assert kept_ids(tmp_path, m) == [1] and m["filtered"]["disambiguation"] == 1
    assert is_disambiguation("x {{dp|940|km}}", "Asteroid", language="en") is None
    # the same name IS the disambiguation template of nlwiki: names are per wiki, never shared
    assert is_disambiguation("x\n{{dp}}", "Mercurius", language="nl") == "template {{Dp}}"


# --- true disambiguation pages of many wikis ------------------------------------------------------


@pytest.mark.parametrize("language, wikitext, title", [
    ("en", "{{Disambiguation|geo}}", "Aberdeen"), ("en", "{{hndis|Smith, John}}", "John Smith"),
    ("en", "{{Template:Geodis}}", "Aa River"), ("en", "x", "Mercury (disambiguation)"),
    ("de", "{{Begriffsklärung}}", "Merkur"), ("de", "x", "Merkur (Begriffsklärung)"),
    ("fr", "{{Homonymie}}", "Mercure"), ("fr", "x", "Mercure (homonymie)"),
    ("es", "{{Desambiguación}}", "Mercurio"), ("it", "{{Disambigua}}", "Mercurio"),
    ("nl", "{{Dp}}", "Mercurius"), ("pl", "{{Ujednoznacznienie}}", "Merkury"),
    ("ru", "{{Неоднозначность}}", "Меркурий"), ("ru", "x", "Меркурий (значения)"),
    ("ja", "{{曖昧さ回避}}", "メルクリウス"), ("ja", "{{Aimai}}", "水星 (曖昧さ回避)"),
    ("sv", "{{Förgrening}}", "Merkurius"), ("pt", "{{Desambiguação}}", "Mercúrio"),
    ("zh", "{{Disambig}}", "水星"), ("uk", "{{Неоднозначність}}", "Меркурій"),
    ("ar", "{{توضيح}}", "عطارد"), ("ko", "{{동음이의}}", "수성"), ("he", "{{פירושונים}}", "מרקורי"),
    ("el", "{{Αποσαφήνιση}}", "Ερμής"), ("fi", "x __DISAMBIG__", "Merkurius"),
    ("de", "x __BEGRIFFSKLÄRUNG__", "Merkur"),  # the magic word's alias in the wiki's language
])
def test_disambiguation_pages_of_many_languages(language, wikitext, title):
    assert is_disambiguation(DAB_LIST + wikitext, title, language=language)


def test_disambiguation_pages_of_six_wikis_are_dropped_by_extract(tmp_path):
    wikis = {"enwiki": ("en", "{{Disambiguation}}"), "dewiki": ("de", "{{Begriffsklärung}}"),
             "frwiki": ("fr", "{{Homonymie}}"), "nlwiki": ("nl", "{{DP}}"), "ruwiki": ("ru", "{{Неоднозначность}}"),
             "jawiki": ("ja", "{{Aimai}}"), "eswiki": ("es", "{{Desambiguación}}")}
    files = {f"{db}-pages-articles.xml": wiki_dump([(1, "Article", f"{PROSE} ({db})"), (2, "Mercury", DAB_LIST + call)],
                                                   dbname=db, lang=lang)
             for db, (lang, call) in wikis.items()}
    for m in run(tmp_path, files):
        assert kept_ids(tmp_path, m) == [1], m["parquet"]
        [row] = [r for r in dropped(tmp_path, m) if r["reason"] == "disambiguation"]
        assert row["id"] == 2 and row["detail"].startswith("template {{"), m["parquet"]


@pytest.mark.parametrize("wikitext, title", [
    ("Mercury is a planet.{{disambiguation needed|date=May 2020}}", "Mercury"),
    ("{{Distinguish|Mercury (element)}} Mercury is a planet.", "Mercury"),
    ("{{About|the planet|other uses|Mercury (disambiguation)}} Mercury is a planet.", "Mercury"),
    ("{{PAGESINCATEGORY:Disambiguation}} pages", "Statistics"),
    ("{{Paradise}} text {{Surname}} {{Given name}} {{Set index article}}", "Smith"),  # set indexes are articles
    ("Text <!-- {{disambiguation}} was here --> more", "Mercury"),  # commented out: MediaWiki ignores it
    ("Text <!-- __DISAMBIG__", "Mercury"),  # an unclosed comment hides the rest
    ("{{DISAMBIGUATION}} {{Disambiguation needed}} {{disambig-help}}", "X"),  # only the first letter is free
])
def test_articles_are_not_disambiguation(wikitext, title):
    assert is_disambiguation(wikitext, title, language="en") is None


def test_other_languages_hatnotes_and_lists_are_not_disambiguation():
    assert is_disambiguation("{{Begriffsklärungshinweis}} Merkur ist ein Planet.", "Merkur", language="de") is None
    assert is_disambiguation("{{Voir homonymes|Mercure}} Mercure est une planète.", "Mercure", language="fr") is None
    assert is_disambiguation("x", "Mercury (disambiguation)", language="de") is None  # en's title rule is en's
    # the table records names known NOT to mark disambiguation pages, with why; none is in its language's list
    table = load_table()
    for language, entries in table["not_disambiguation"].items():
        listed = {t["name"] for t in table["languages"].get(language, {}).get("templates", [])}
        assert not listed & {e["name"] for e in entries}, language


def test_names_match_as_mediawiki_matches_titles():
    d = Detector(Wiki("de", "wikipedia", "dewiki"), template_ns=("Vorlage",))
    assert d.call_key(" begriffsklärung\n") == "Begriffsklärung"
    for call in ("{{Vorlage:Begriffsklärung}}", "{{vorlage : begriffsklärung|x}}", "{{Template:Begriffsklärung}}",
                 "{{begriffsklärung\n}}", "{{safesubst:Begriffsklärung}}"):
        assert d.evidence(call, "X", d.template_keys(call)) == "template {{Begriffsklärung}}", call
    en = Detector(Wiki("en", "wikipedia", "enwiki"))
    assert en.template_keys("{{Hospital_disambiguation}} {{Hospital  disambiguation|x}}") == {"Hospital disambiguation"}
    assert en.template_keys("{{:Main Page}} {{#if:x|y}} {{{1}}}") == frozenset({"1"})  # no template called by name
    # a wiki whose Template namespace is case-sensitive (Wiktionary-like) keeps the first letter too
    cs = Detector(Wiki("en", "wikipedia", "x"), case_sensitive=True)
    assert cs.template_keys("{{disambiguation}}") == {"disambiguation"}
    assert cs.evidence("{{disambiguation}}", "X", cs.template_keys("{{disambiguation}}")) is None


@pytest.mark.parametrize("dbname, base, xml_lang, expected", [
    ("enwiki", "https://en.wikipedia.org/wiki/Main_Page", "en", ("en", "wikipedia", "enwiki")),
    ("bat_smgwiki", "", "", ("bat-smg", "wikipedia", "bat_smgwiki")),
    ("", "https://simple.wikipedia.org/wiki/Main_Page", "en", ("simple", "wikipedia", "simple.wikipedia.org")),
    ("zh_min_nanwiki", "https://zh-min-nan.wikipedia.org/wiki/", "nan", ("zh-min-nan", "wikipedia", "zh_min_nanwiki")),
    ("elwikivoyage", "http://localhost/elwv/index.php/Main", "el", ("el", "wikivoyage", "elwikivoyage")),
    ("", "", "de", ("de", "", "")),
    ("commonswiki", "https://commons.wikimedia.org/wiki/Main_Page", "en", ("en", "", "commonswiki")),
    ("tmp-wp", "https://ltg.wikipedia.org/wiki/Suoku_puslopa", "ltg", ("ltg", "wikipedia", "tmp-wp")),
])
def test_the_wiki_comes_from_the_dump(dbname, base, xml_lang, expected):
    w = Wiki.from_siteinfo(dbname, base, xml_lang)
    assert (w.language, w.project, w.key) == expected


def test_curated_names_apply_to_wikipedias_and_two_names_to_any_wikipedia():
    voyage = Detector(Wiki("en", "wikivoyage", "enwikivoyage"))
    assert voyage.evidence("{{Dab}}", "X (disambiguation)", voyage.template_keys("{{Dab}}")) is None
    assert voyage.evidence("x __DISAMBIG__", "X", frozenset()) == "__DISAMBIG__"
    small = Detector(Wiki("lij", "wikipedia", "lijwiki"))  # not in the table: {{Disambig}}/{{Disambiguation}}
    assert small.evidence("{{disambig}}", "X", small.template_keys("{{disambig}}")) == "template {{Disambig}}"
    assert small.evidence("{{Dab}}", "X", small.template_keys("{{Dab}}")) is None


def test_a_template_marks_pages_only_with_the_magic_word_in_what_it_transcludes():
    d = Detector(Wiki("en", "wikipedia", "enwiki"))
    assert d.defines_disambiguation("<div>This page lists...</div>__DISAMBIG__[[Category:Dab]]")
    assert d.defines_disambiguation("box<includeonly>__disambig__</includeonly>")
    assert not d.defines_disambiguation("box<noinclude>__DISAMBIG__ (documentation)</noinclude>")
    assert not d.defines_disambiguation("<onlyinclude>box</onlyinclude> __DISAMBIG__")
    assert not d.defines_disambiguation("box <!-- __DISAMBIG__ -->")
    assert d.page_key("Template:Mehrdeutig") == "Mehrdeutig" and d.page_key("Mehrdeutig") is None


def test_learned_templates_follow_redirects_in_any_order():
    learned = LearnedTemplates(curated=frozenset({"Disambiguation"}))
    assert learned.redirect("Dab2", "Disambiguation") == ["Dab2"]  # a redirect to a curated name
    assert learned.redirect("Alias", "Mehrdeutig") == []  # not known yet
    assert learned.redirect("Alias2", "Alias") == []
    assert sorted(learned.define("Mehrdeutig", "page 3 of P")) == ["Alias", "Alias2", "Mehrdeutig"]
    assert learned.define("Mehrdeutig", "again") == [] and learned.define("Disambiguation", "x") == []
    assert learned.extra["Alias2"] == "redirect to {{Alias}}"


# --- learning a wiki's templates from its dump ----------------------------------------------------

NO_TABLE = dict(dbname="lijwiki", lang="lij", template_ns="Modello")  # a Wikipedia the table does not cover


def learning_pages() -> list[tuple]:
    return [
        (1, "Merlin", DAB_LIST + "Merlin. {{Mehrdeutig}}"),  # before the template page: written, read again
        (2, "Fox", PROSE),
        (3, "Modello:Mehrdeutig", "''This page lists...''<includeonly>__DISAMBIG__</includeonly>", 10),
        (4, "Venus", DAB_LIST + "Venus. {{modello:mehrdeutig|geo}}"),
        (5, "Modello:Mdt", "#REDIRECT [[Modello:Mehrdeutig]]", 10, "Modello:Mehrdeutig"),
        (6, "Mars", DAB_LIST + "Mars. {{Mdt}}"),
        (7, "Cheese", PROSE.replace("fox", "cheese") + "{{Nomehr}}"),
        (8, "Modello:Nomehr", "A box. <noinclude>__DISAMBIG__</noinclude>", 10),
    ]


@pytest.mark.parametrize("processes", [1, 2])
def test_templates_learned_from_the_dump_drop_the_pages_that_call_them(tmp_path, monkeypatch, processes):
    monkeypatch.setattr(tasks, "PLAIN_READ_BYTES", 300)  # chunks of a page or two: learning crosses chunks
    monkeypatch.setattr(tasks, "CHUNK_XML_BYTES", 600)
    [m] = run(tmp_path, {"lijwiki-pages-articles.xml": wiki_dump(learning_pages(), **NO_TABLE)}, processes=processes)
    assert kept_ids(tmp_path, m) == [2, 7]
    rows = {r["id"]: r for r in dropped(tmp_path, m)}
    assert {i for i, r in rows.items() if r["reason"] == "disambiguation"} == {1, 4, 6}
    assert rows[1]["detail"] == "template {{Mehrdeutig}} (page 3 of lijwiki-pages-articles)"
    assert rows[6]["detail"] == "template {{Mdt}} (redirect to {{Mehrdeutig}})"
    d = m["disambiguation"]
    assert d["templates_defined_here"] == ["Mdt", "Mehrdeutig"] and d["read_twice"]  # page 1 came first
    assert set(d["templates_applied"]) == {"Mdt", "Mehrdeutig"} and m["filtered"]["disambiguation"] == 3
    if processes == 2:  # the same output whatever the processes and chunking
        monkeypatch.undo()
        [m1] = extract([str(tmp_path / "lijwiki-pages-articles.xml")], str(tmp_path / "one"), processes=1,
                       progress=False)
        assert pq.read_table(tmp_path / "one" / m1["parquet"]).equals(pq.read_table(tmp_path / "out" / m["parquet"]))
        assert pq.read_table(tmp_path / "one" / m1["dropped"]).equals(pq.read_table(tmp_path / "out" / m["dropped"]))


def test_a_template_met_before_its_pages_needs_no_second_reading(tmp_path):
    pages = learning_pages()
    pages = [pages[2], pages[4]] + [p for p in pages if len(p) == 3]  # template pages first
    [m] = run(tmp_path, {"lijwiki-pages-articles.xml": wiki_dump(pages, **NO_TABLE)})
    assert kept_ids(tmp_path, m) == [2, 7] and not m["disambiguation"]["read_twice"]


def test_templates_learned_in_one_part_apply_to_later_parts_and_runs(tmp_path, capsys):
    first = [(3, "Modello:Mehrdeutig", "__DISAMBIG__", 10), (4, "Alpha", PROSE)]
    second = [(11, "Merlin", DAB_LIST + "{{Mehrdeutig}}"), (12, "Beta", PROSE.replace("fox", "wolf"))]
    a = wiki_dump(first, **NO_TABLE)
    b = wiki_dump(second, **NO_TABLE)
    # part 2 alone first: it cannot know the template, which is in part 1
    [mb] = run(tmp_path, {"lijwiki-pages-articles.xml-p11p20": b})
    assert kept_ids(tmp_path, mb) == [11, 12]
    # then part 1: it teaches the template, and names the finished part that did not know it
    ma, mb2 = run(tmp_path, {"lijwiki-pages-articles.xml-p1p10": a, "lijwiki-pages-articles.xml-p11p20": b})
    assert mb2["skipped"] and ma["disambiguation"]["templates_defined_here"] == ["Mehrdeutig"]
    err = capsys.readouterr().err
    assert "defines disambiguation template(s) {{Mehrdeutig}}" in err and "lijwiki-pages-articles-p11p20" in err
    assert any("lijwiki-pages-articles-p11p20" in w for w in ma["warnings"])
    # as the warning says: delete part 2's manifest and run again; it learns from part 1's manifest
    (tmp_path / "out" / "lijwiki-pages-articles-p11p20.manifest.json").unlink()
    _, mb3 = run(tmp_path, {"lijwiki-pages-articles.xml-p1p10": a, "lijwiki-pages-articles.xml-p11p20": b})
    assert kept_ids(tmp_path, mb3) == [12]
    assert mb3["disambiguation"]["templates_applied"] == {"Mehrdeutig": "page 3 of lijwiki-pages-articles-p1p10"}
    # in one run, parts in page order: the same as above
    together = run(tmp_path, {"lijwiki-pages-articles.xml-p11p20": b, "lijwiki-pages-articles.xml-p1p10": a},
                   out="together")
    assert [kept_ids(tmp_path, m, "together") for m in together] == [[4], [12]]


def test_an_interrupted_learning_run_writes_what_an_uninterrupted_one_does(tmp_path, monkeypatch):
    first = [(3, "Modello:Mehrdeutig", "__DISAMBIG__", 10), (4, "Alpha", PROSE)]
    second = [(11, "Merlin", DAB_LIST + "{{Mehrdeutig}}"), (12, "Beta", PROSE.replace("fox", "wolf"))]
    files = {"lijwiki-pages-articles.xml-p1p10": wiki_dump(first, **NO_TABLE),
             "lijwiki-pages-articles.xml-p11p20": wiki_dump(second, **NO_TABLE)}
    whole = run(tmp_path, files, out="whole")
    add = PartWriter.add

    def killed_in_part_two(self, result):
        if "p11p20" in self.part.stem:
            raise KeyboardInterrupt
        return add(self, result)

    monkeypatch.setattr(PartWriter, "add", killed_in_part_two)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, files, out="killed")
    monkeypatch.undo()
    again = run(tmp_path, files, out="killed")
    assert [m.get("skipped", False) for m in again] == [True, False]
    for w, a in zip(whole, again):
        for key in ("parquet", "dropped"):
            assert pq.read_table(tmp_path / "whole" / w[key]).equals(pq.read_table(tmp_path / "killed" / a[key]))


def test_keep_disambiguation_keeps_them_all(tmp_path):
    [m] = run(tmp_path, {"lijwiki-pages-articles.xml": wiki_dump(learning_pages(), **NO_TABLE)},
              keep_disambiguation=True)
    assert kept_ids(tmp_path, m) == [1, 2, 4, 6, 7] and m["filtered"]["disambiguation"] == 0
    assert m["disambiguation"]["filter"] is False and m["options"]["keep_disambiguation"] is True
    [again] = run(tmp_path, {"lijwiki-pages-articles.xml": wiki_dump(learning_pages(), **NO_TABLE)})
    assert not again.get("skipped") and kept_ids(tmp_path, again) == [2, 7]  # other options: redone


def test_the_table_is_well_formed_and_sourced():
    table = load_table()
    assert len(table["languages"]) >= 20
    for language, entry in table["languages"].items():
        for item in entry["templates"] + entry["title_suffixes"] + entry["magic_words"]:
            keys = [k.strip() for k in item["source"].split(";")]
            assert all(k in table["sources"] for k in keys), (language, item)
        names = [t["name"] for t in entry["templates"]]
        assert len(names) == len(set(names)), language
        assert all(n == n.strip() and "_" not in n and ":" not in n for n in names), language
    json.dumps(table)  # plain data


@pytest.mark.parametrize("template, expected", [
    ("a<noinclude>b</noinclude>c", "ac"), ("a<noinclude>b", "a"), ("a<NOINCLUDE >b</noinclude>c", "ac"),
    ("a<onlyinclude>b</onlyinclude>c<onlyinclude>d", "bd"), ("a</noinclude>b", "a</noinclude>b"),
    ("<onlyinclude>a<noinclude>b</noinclude>c</onlyinclude>d", "ac"), ("plain", "plain"),
])
def test_what_a_template_page_transcludes(template, expected):
    assert transcluded(template) == expected


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="{}|[]<>!-_:_ aDdisbmgnouclerfT\n", max_size=200),
       language=st.sampled_from(["en", "de", "nl", "lij", ""]))
def test_any_text_gives_evidence_or_none(text, language):
    evidence = is_disambiguation(text, text[:20], language=language)
    assert evidence is None or isinstance(evidence, str) and evidence
    d = Detector(Wiki(language, "wikipedia", "x"))
    assert isinstance(d.defines_disambiguation(text), bool)
    assert all(isinstance(k, str) and k for k in d.template_keys(text))


@pytest.mark.parametrize("make", [
    lambda n: "{{" * n, lambda n: "{{a" * n, lambda n: "{{ " + " " * n, lambda n: "<!--" * n,
    lambda n: "<noinclude>" * n + "__DISAMBIG__", lambda n: "<onlyinclude>" * n, lambda n: "__" * n,
    lambda n: "{{Template:" * n, lambda n: "{{subst:" * n + "x}}",
])
def test_detection_is_linear(make):
    """Ten times the input must cost about ten times the time (not a hundred): best of 3."""
    import time

    d = Detector(Wiki("en", "wikipedia", "enwiki"))

    def seconds(n: int) -> float:
        text = make(n)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            d.evidence(text, "X", d.template_keys(text))
            d.defines_disambiguation(text)
            best = min(best, time.perf_counter() - t)
        return best

    small, big = seconds(20_000), seconds(200_000)
    assert big < 25 * max(small, 1e-4), (small, big)
