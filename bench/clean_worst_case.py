"""Worst cases of the cleaner: is `wikitext_to_text` linear, and how slow is its slowest input?

Each family below is one way of writing junk (or extreme wikitext) many times over: unclosed and
nested braces, tables and links, runs of `=`, `<`, `&`, headings, ... (the construct is in the
table). Each is built at 10 KB, 100 KB and 1 MB and cleaned by `growgpt.wiki.wikitext.wikitext_to_text`
(with keep_tables=True too, for the families with tables), in this process, one core; the time is
the best of --repeat runs (this VM's speed drifts from one minute to the next).

Printed per family and size: seconds, seconds per MB, and the ratio to normal article text of the
same size, cleaned right before and right after the family (the best of the two: both sides of
the ratio from the same few seconds, as the VM's speed drifts; a baseline taken once at the start
turned 9x families into 12x ones when the machine slowed down mid-run). Normal text is the enwiki
sample's articles (../shared/data/wikidumps/gensim/..., else gensim's bundled copy) concatenated
and truncated: for a size N, the first max(N, 1 MB) cut into N-size pieces and cleaned piece by
piece, time per piece (a single 10 KB prefix is mostly one article's references and cleans 4x
faster per MB than the text as a whole). Then the growth
exponents log(t_100KB / t_10KB) / log(10) and log(t_1MB / t_100KB) / log(10): 1 is linear, 2
quadratic. Only a pass that does more per byte on longer inputs keeps it above 1 at every step;
the CPU caches also raise it once, between 100 KB and 1 MB, for families whose whole cost is a few
passes over the text (a run of commas: 0.015 s/MB at 100 KB, 0.065 s/MB from 1 MB to 10 MB, flat).
So where the 100 KB -> 1 MB exponent is over 1.2, the family is also run at --confirm-size (4 MB)
and the exponent 1 MB -> 4 MB printed: super-linear work shows there too, a cache step does not.

Verdict per family: PASS when the ratio at 1 MB is at most 10 (--max-ratio) and the exponent at
the largest sizes at most 1.2 (the smaller of 100 KB -> 1 MB and 1 MB -> 4 MB), else MISS. One extra
family measures `growgpt.wiki.pages.is_redirect_text` on "#REDIRECT" and a run of spaces (its
fallback regex was quadratic there), against the same article-text baseline.

Run: python bench/clean_worst_case.py [--repeat 3] [--sizes 10000 100000 1000000] [--only NAME ...]
     [--confirm-size 4000000] [--max-ratio 10] [--data DIR]
tests/test_clean_worst_case.py runs the same families at two sizes and checks the growth of the time.
"""

from __future__ import annotations

import argparse
import bz2
import math
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from growgpt.wiki.pages import is_redirect_text
from growgpt.wiki.wikitext import wikitext_to_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wikidumps"
ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: unit * max(1, size // len(unit))


def _nest(opening: str, closing: str) -> Callable[[int], str]:
    return lambda size: (opening * max(1, size // (len(opening) + len(closing)))
                         + closing * max(1, size // (len(opening) + len(closing))))


def _around(head: str, unit: str, tail: str = "") -> Callable[[int], str]:
    return lambda size: head + unit * max(1, (size - len(head) - len(tail)) // len(unit)) + tail


# name: (what it is, builder of about `size` characters, run with keep_tables=True too)
FAMILIES: dict[str, tuple[str, Callable[[int], str], bool]] = {
    # reported in the review (issue 10)
    "table_stray_closers": (r'"\n{|" * k + "}}" * k', _nest("\n{|", "}}"), True),
    "nested_tables": (r'"\n{|\n| a || b\n" * k + "\n|}" * k', _nest("\n{|\n| a || b\n", "\n|}"), True),
    "nested_templates": ('"{{nowrap|a" * k + "}}" * k', _nest("{{nowrap|a", "}}"), False),
    "link_pipes_unclosed": ('"{{nowrap|[[" + "|a" * k', _around("{{nowrap|[[", "|a"), False),
    "link_pipes_closed": ('"{{nowrap|[[" + "|a" * k + "]]}}"', _around("{{nowrap|[[", "|a", "]]}}"), False),
    "link_pipes_template_closed": ('"{{nowrap|[[" + "|a" * k + "}}"', _around("{{nowrap|[[", "|a", "}}"), False),
    "nested_links": ('"[[a|" * k + "]]" * k', _nest("[[a|", "]]"), False),
    "unclosed_links": ('"[[" * k', _repeat("[["), False),
    "unclosed_params": ('"{{{" * k', _repeat("{{{"), False),
    "unclosed_templates": ('"{{" * k', _repeat("{{"), False),
    "unclosed_tables": ('"{|" * k', _repeat("{|"), True),
    "lt_run": ('"<" * n', _repeat("<"), False),
    # found reading each pass
    "unclosed_table_lines": (r'"\n{|" * k', _repeat("\n{|"), True),
    "table_attribute_cascade": (r'"\n{| {{x\n{|\n}}" * k', _repeat("\n{| {{x\n{|\n}}"), True),
    "unclosed_template_words": ('"{{a" * k', _repeat("{{a"), False),
    "unclosed_template_pipes": ('"{{|" * k', _repeat("{{|"), False),
    "brace_link_mix": ('"{[[{" * k', _repeat("{[[{"), False),
    "braces_and_pipes": ('"{}|" * k', _repeat("{}|"), True),
    "closed_braces": ('"{{" * k + "}}" * k', _nest("{{", "}}"), False),
    "param_defaults": ('"{{{1|" * k', _repeat("{{{1|"), False),
    "nested_params": ('"{{{1|" * k + "}}}" * k', _nest("{{{1|", "}}}"), False),
    "rendered_templates": ('"{{nowrap|a}}" * k', _repeat("{{nowrap|a}}"), False),
    "pipe_templates": ('"{{!}}" * k', _repeat("{{!}}"), True),
    "convert_range": ('"{{convert|1" + "|to|1" * k + "}}"', _around("{{convert|1", "|to|1", "}}"), False),
    "kept_table_cells": (r'"{|" + "\n|a" * k + "\n|}"', _around("{|", "\n|a", "\n|}"), True),
    "file_captions_nested": ('"[[File:a|" * k + "]]" * k', _nest("[[File:a|", "]]"), False),
    "file_links_unclosed": ('"[[File:" * k', _repeat("[[File:"), False),
    "link_spaces": ('"[[" + " " * n', _around("[[", " "), False),
    "bracket_run": ('"[" * n', _repeat("["), False),
    "external_links_unclosed": ('"[http://x " * k', _repeat("[http://x "), False),
    "eq_run": ('"=" * n', _repeat("="), False),
    "eq_line": (r'"\n" + "=" * n + "x"', _around("\n", "=", "x"), False),
    "many_headings": (r'"\n== a ==\nb" * k', _repeat("\n== a ==\nb"), False),
    "tiny_headings": (r'"\n=a=" * k', _repeat("\n=a="), False),
    "heading_marks": (r'"\n==" * k', _repeat("\n=="), False),
    "list_markers": (r'"\n*#:; " * k', _repeat("\n*#:; "), False),
    "quote_run": ("\"'\" * n", _repeat("'"), False),
    "amp_run": ('"&" * n', _repeat("&"), False),
    "amp_words": ('"&a" * k', _repeat("&a"), False),
    "numeric_refs": ('"&#1" * k', _repeat("&#1"), False),
    "pipe_run": ('"|" * n', _repeat("|"), True),
    "bang_lines": (r'"\n!" * k', _repeat("\n!"), True),
    "variant_opens": ('"-{" * k', _repeat("-{"), False),
    "underscore_run": ('"_" * n', _repeat("_"), False),
    "magic_word_starts": ('"__A" * k', _repeat("__A"), False),
    "paren_run": ('"(" * n', _repeat("("), False),
    "paren_debris": ('"( ; , : " * k', _repeat("( ; , : "), False),
    "comma_run": ('"," * n', _repeat(","), False),
    "space_run": ('" " * n', _repeat(" "), False),
    "newline_run": (r'"\n" * n', _repeat("\n"), False),
    "ref_opens": ('"<ref" * k', _repeat("<ref"), False),
    "refs_closed_at_end": ('"<ref>" * k + "</ref>"', _around("", "<ref>", "</ref>"), False),
    "element_reopens": ('"<math>" * k + "</math>"', _around("", "<math>", "</math>"), False),
    "comment_opens": ('"<!--" * k', _repeat("<!--"), False),
    "tag_opens": ('"<br " * k', _repeat("<br "), False),
}
REDIRECT = "redirect_spaces"  # is_redirect_text("#REDIRECT" + " " * n), see the docstring


def normal_text(data: Path) -> str:
    """The enwiki sample's article wikitext, concatenated (the shared copy, else gensim's)."""
    path = data / "gensim" / ENWIKI
    if not path.is_file():
        try:
            import gensim.test.utils  # noqa: F401  (its test data ships with the package)
            path = Path(sys.modules["gensim.test.utils"].__file__).parent / "test_data" / ENWIKI
        except ImportError:
            pass
    if not path.is_file():
        sys.exit(f"enwiki sample not found under {data} nor in gensim's test data")
    texts, page = [], {}
    with bz2.open(path, "rb") as f:
        for _, el in ET.iterparse(f, events=("end",)):
            tag = el.tag.rsplit("}", 1)[-1]
            if tag in ("ns", "text"):
                page[tag] = el.text or ""
            elif tag == "redirect":
                page["redirect"] = True
            elif tag == "page":
                if page.get("ns") == "0" and not page.get("redirect"):
                    texts.append(page.get("text", ""))
                page = {}
                el.clear()
    return "\n\n".join(texts)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def normal_seconds(text: str, size: int, repeat: int) -> float:
    """Seconds to clean `size` characters of article text (see the docstring)."""
    while len(text) < max(size, 1_000_000):
        text += "\n\n" + text
    pieces = [text[k : k + size] for k in range(0, max(size, 1_000_000), size)]
    return best_of(lambda: [wikitext_to_text(p) for p in pieces], repeat) / len(pieces)


def family_seconds(name: str, size: int, keep_tables: bool, repeat: int) -> tuple[float, int]:
    if name == REDIRECT:
        text = "#REDIRECT" + " " * (size - 9)
        return best_of(lambda: is_redirect_text(text), repeat), len(text)
    text = FAMILIES[name][1](size)
    return best_of(lambda: wikitext_to_text(text, keep_tables=keep_tables), repeat), len(text)


def exponent(t_small: float, t_large: float, n_small: int, n_large: int) -> float:
    return math.log(max(t_large, 1e-9) / max(t_small, 1e-9)) / math.log(n_large / n_small)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of dump samples")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, the best counts")
    ap.add_argument("--confirm-size", type=int, default=4_000_000,
                    help="size for a second exponent when the one below it is over 1.2 (0: never)")
    ap.add_argument("--max-ratio", type=float, default=10.0, help="PASS: at most this x article text")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these families only")
    args = ap.parse_args(argv)
    sizes = sorted(args.sizes)
    names = args.only or [*FAMILIES, REDIRECT]
    unknown = [n for n in names if n not in FAMILIES and n != REDIRECT]
    if unknown:
        print(f"unknown families: {', '.join(unknown)}", file=sys.stderr)
        return 2

    text = normal_text(args.data)
    normal = {size: normal_seconds(text, size, args.repeat) for size in sizes}
    print("normal article text: " + ", ".join(f"{s // 1000} KB {normal[s] / s * 1e6:.4f} s/MB" for s in sizes),
          flush=True)
    rows = []
    for name in names:
        for keep_tables in ((False, True) if name in FAMILIES and FAMILIES[name][2] else (False,)):
            t, base = {}, {}
            for size in sizes:
                # article text right before and after, the best of both: the ratio compares runs
                # a second apart (this VM's speed drifts 1.7x from one minute to the next)
                before = normal_seconds(text, size, args.repeat)
                t[size] = family_seconds(name, size, keep_tables, args.repeat)
                base[size] = min(before, normal_seconds(text, size, args.repeat))
            rows.append((name, keep_tables, t, base))
            print(f"  {name}{' (keep_tables)' if keep_tables else ''}: "
                  + ", ".join(f"{t[s][0]:.4f} s" for s in sizes), flush=True)

    big = sizes[-1]
    print()
    head = " | ".join(f"{s // 1000} KB s | {s // 1000} KB s/MB | x text" for s in sizes)
    steps = [f"exp {a // 1000}K->{b // 1000}K" for a, b in zip(sizes, sizes[1:])]
    print(f"| family | construct | keep_tables | {head} | {' | '.join(steps)} | exp {big // 1000}K->"
          f"{args.confirm_size // 1000}K | verdict |")
    print("|---" * (4 + 3 * len(sizes) + len(steps) + 1) + "|")
    verdicts = []
    for name, keep_tables, t, base in rows:
        cells = []
        for s in sizes:
            seconds, n = t[s]
            cells += [f"{seconds:.4f}", f"{seconds / n * 1e6:.3f}", f"{seconds / n / (base[s] / s):.1f}"]
        exps = [exponent(t[a][0], t[b][0], t[a][1], t[b][1]) for a, b in zip(sizes, sizes[1:])]
        last = exps[-1] if exps else 1.0
        confirm = ""
        if last > 1.2 and args.confirm_size > big:
            seconds, n = family_seconds(name, args.confirm_size, keep_tables, args.repeat)
            second = exponent(t[big][0], seconds, t[big][1], n)
            confirm = f"{second:.2f}"
            last = min(last, second)
        ratio = t[big][0] / t[big][1] / (base[big] / big)
        ok = ratio <= args.max_ratio and last <= 1.2
        construct = FAMILIES[name][0] if name in FAMILIES else '"#REDIRECT" + " " * n'
        print(f"| {name} | `{construct}` | {'yes' if keep_tables else ''} | {' | '.join(cells)} | "
              f"{' | '.join(f'{e:.2f}' for e in exps)} | {confirm} | {'PASS' if ok else 'MISS'} |")
        verdicts.append((ok, name, keep_tables, ratio, last))
    print()
    for ok, name, keep_tables, ratio, last in verdicts:
        print(f"[{'PASS' if ok else 'MISS'}] {name}{' (keep_tables)' if keep_tables else ''}: "
              f"{ratio:.1f}x article text per MB at {big // 1000} KB, growth exponent {last:.2f}")
    passed = sum(v[0] for v in verdicts)
    print(f"\n{passed}/{len(verdicts)} pass (ratio <= {args.max_ratio:g}, exponent <= 1.2)")
    print(f"rerun: {Path(sys.executable).name} bench/clean_worst_case.py --repeat {args.repeat} --sizes "
          f"{' '.join(map(str, sizes))} --confirm-size {args.confirm_size}"
          + (f" --only {' '.join(args.only)}" if args.only else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
