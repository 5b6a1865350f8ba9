"""growgpt.wiki.wikitext on junk: cleaning time grows linearly with the input, and any mixture of
constructs comes out without markup.

The families are bench/clean_worst_case.py's (the bench also measures them against article text).
Timing here is relative, to stay meaningful on a slow or busy machine: each family is cleaned at
20 KB and at 200 KB, best of 3, and 10x the input must cost well under 100x the time (a quadratic
pass costs 100x; linear ones measure 9-13x here, the caches included).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growgpt.wiki.wikitext import wikitext_to_text

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "clean_worst_case.py"
_spec = importlib.util.spec_from_file_location("clean_worst_case", _BENCH)
clean_worst_case = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clean_worst_case)
FAMILIES = clean_worst_case.FAMILIES

SMALL, LARGE = 20_000, 200_000
MAX_GROWTH = 25  # for 10x the input; linear: ~10, quadratic: ~100


def _best_seconds(text: str, keep_tables: bool, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        wikitext_to_text(text, keep_tables=keep_tables)
        best = min(best, time.perf_counter() - start)
    return best


CASES = [(name, keep_tables) for name, (_, _, tables) in FAMILIES.items() for keep_tables in
         ((False, True) if tables else (False,))]


@pytest.mark.parametrize("name, keep_tables", CASES, ids=[f"{n}{'-keep_tables' if k else ''}" for n, k in CASES])
def test_cleaning_time_grows_linearly(name, keep_tables):
    build = FAMILIES[name][1]
    small, large = build(SMALL), build(LARGE)
    growth = (_best_seconds(large, keep_tables) / len(large)) / (_best_seconds(small, keep_tables) / len(small)) * 10
    if growth >= MAX_GROWTH:  # one retry: a busy machine can slow a single measurement
        growth = min(growth, (_best_seconds(large, keep_tables) / len(large))
                     / (_best_seconds(small, keep_tables) / len(small)) * 10)
    assert growth < MAX_GROWTH, f"{name}: 10x the input took {growth:.0f}x the time"


def test_redirect_check_is_linear_on_spaces():
    from growgpt.wiki.pages import is_redirect_text

    def seconds(n: int) -> float:
        text = "#REDIRECT" + " " * n
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            assert not is_redirect_text(text)
            best = min(best, time.perf_counter() - start)
        return best

    assert seconds(2_000_000) / seconds(200_000) < MAX_GROWTH


# Mixtures: the constructs of the families and raw markup, each repeated up to a few hundred times.
PIECES = sorted({desc.split('"')[1].encode().decode("unicode_escape")
                 for desc, _, _ in FAMILIES.values() if desc.count('"') >= 2} | {
    "{{", "}}", "[[", "]]", "{|", "|}", "|", "\n", "<ref>", "</ref>", "<ref name=x/>", "<!--", "-->", "==", "=",
    "'''", "&amp;", "&#91;", "[", "]", "{", "}", "<nowiki>", "</nowiki>", "{{{", "}}}", "<math>", "a", "b c", "*",
    "#", ":", ";", "(", ")", ",", " ", "<", ">", "<span>", "File:", "__NOTOC__", "!", "{{!}}", "\x01", "\x02",
    "\r", "\t", "\u00a0", "\u00ad", "&lt;ref&gt;", "-{a}-", "{{nowrap|", "{{lang|fr|", "{{see|name=", "\n{|",
    "\n|}", "\n|-", "\n! h", "\n| c || d", "{{{1|", "0=", "2=", "99999999=", "{{convert|1|to|2|km}}", "[[a|b]]",
})
MIXTURE = st.lists(st.tuples(st.sampled_from(PIECES), st.integers(1, 300)), max_size=10).map(
    lambda pieces: "".join(piece * count for piece, count in pieces))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=MIXTURE, keep_tables=st.booleans())
def test_any_mixture_finishes_and_leaves_no_markup(text, keep_tables):
    start = time.perf_counter()
    clean = wikitext_to_text(text, "T", keep_tables=keep_tables)
    # ~0.3 s/MB at worst here (bench/clean_worst_case.py); this only catches a blow-up
    assert time.perf_counter() - start < 0.5 + 10 * len(text) / 1e6
    assert not [t for t in ("{{", "}}", "[[", "]]", "{|", "|}", "<ref", "<REF") if t in clean]
    assert not [c for c in ("\x01", "\x02", "\r", "\t", "\u00a0", "\u00ad") if c in clean]  # markers, raw spacing
    assert "\n\n\n" not in clean and clean == clean.strip()
