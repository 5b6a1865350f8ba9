"""Pass 3 of the wikitext cleaner: templates `{{...}}` and tables `{|...|}`, by one bracket-depth scan.

`expand` pairs `{{ }} {| |}` tokens with a stack, innermost first (nesting, tables in templates and `|}}}`
come out right; an unclosed opening loses only its name or attribute line), linear on any input. Most
templates are dropped; the few whose text belongs in the sentence (convert, lang, dates, listings, ...)
are rendered from their arguments (`_RENDER_ARGS`), never from their definitions (that needs the whole
Template namespace and Lua). Tables are dropped, or kept one cell per line (`keep_tables`)."""

from __future__ import annotations

import collections
import itertools
import operator
import re
from collections.abc import Callable

PARAM = re.compile(r"\{\{\{([^{}|]*)(?:\|([^{}]*))?\}\}\}")  # {{{1|default}}} -> default
TEMPLATE_NAME = re.compile(r"[^{}|\[\]]{0,200}")
NAME_ON_LINE = re.compile(r"[^{}|\[\]\n]*")
# Internal markers are ASCII control characters, which XML 1.0 (so every dump) cannot contain:
# unlike private-use characters they keep an ASCII article an ASCII string, CPython's fastest kind.
PIPE = "\x01"  # {{!}}: a literal pipe that must not split arguments; restored at the very end


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
        parts = glue_links(parts)
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


def glue_links(parts: list[str]) -> list[str]:
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


def param_default(m: re.Match) -> str:
    return m.group(2) or ""  # {{{1|default}}} -> default; {{{1}}} -> ""


# Frame kinds (see expand). _OPENS: a stretch of openings taken at once; _ATTRS: in the rerun, the
# attribute line of an unclosed table, dropped up to the line's end.
_TEMPLATE, _TABLE, _OPENS, _ATTRS = 0, 1, 2, 3
# Rendered templates and kept tables re-read what they hold (a template splits its body into
# arguments, a table its text into cells), so the work grows with their depth: `"{{nowrap|a" * k`
# was quadratic. The samples nest them at most 3 deep (a rendered template in a table in a table,
# with keep_tables); a deeper one is dropped like any other template, so that nothing is re-read
# more than this many times.
MAX_KEPT_DEPTH = 6
# Openings as the scan finds them: `{{`, and `{|` at the start of a line (after spaces, tabs, colons)
_OPENINGS = re.compile(r"\{\{|(?<![^\n])[ \t:]*+\{\|")
_TABLE_OPENING = re.compile(r"(?<![^\n])[ \t:]*+\{\|")
_CLOSINGS = re.compile(r"\}\}|(?<![^\n])[ \t]*+\|\}")  # `}}`, and `|}` at the start of a line
_NO_INDENT = str.maketrans("", "", " \t:")
# An unclosed `{{` as the rerun drops it (with its name), and an unclosed table's attribute line
# (its indent, the group, is kept)
_UNCLOSED_OPEN = re.compile(r"\{\{[^{}|\[\]\n]*")
_UNCLOSED_TABLE_LINE = re.compile(r"(?<![^\n])([ \t:]*+)\{\|[^\n]*")
_BULK = 8  # see expand
_CLOSING_BRACES = re.compile(r"\}+")
# The tokens (see expand): where the scan jumps past braces that form none
_TOKEN_PLACE = re.compile(r"\{\{|\}\}|(?<![^\n])(?:[ \t:]*+\{\||[ \t]*+\|\})")
_UNKNOWN = object()


def _join(items: list) -> str:
    """`expand`'s output items as one text: strings, and kept tables' lines (lists) as the text
    `table_text` used to return."""
    try:
        return "".join(items)
    except TypeError:
        return "".join(item if type(item) is str else "\n" + "\n".join(item) + "\n" for item in items)


def _stretch(s: str, pos: int, c: int, params: bool) -> tuple[tuple[str, int, int] | None, int]:
    """The openings from pos up to the next closing token, when there are many: their kinds ("{"
    for `{{`, "|" for `{|`), the position of the first one's brace, and the end of the last one
    (None when there are few, or a `{{{` that `expand` must see first); and where the stretch
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


def expand(s: str, title: str, keep_tables: bool, params: bool = False) -> str:
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
    out: list = []  # text, and the lines of kept tables (lists; see table_text)
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
                                     or s[o - 1] in " \t:" and at_line_start(s, o, " \t:")):
                        i, t = o, 1
                        break
                skipped = o  # a brace of no token: jump to the next place a token could be
            elif c >= 0:
                if c > pos and s[c - 1] == "|" and (c == 1 or s[c - 2] == "\n"
                                                    or s[c - 2] in " \t" and at_line_start(s, c - 1, " \t")):
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
                return expand(PARAM.sub(param_default, s), title, keep_tables, params=True)
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
                        upto = NAME_ON_LINE.match(s, last.end()).end()
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
                        pos = NAME_ON_LINE.match(s, pos).end()
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
                drop = dropping or t == 1 and (not keep_tables or kept >= MAX_KEPT_DEPTH)
                if not drop and t == 0:
                    drop = kept >= MAX_KEPT_DEPTH or renderer(TEMPLATE_NAME.match(s, pos).group()) is None
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
                    if not dropping and kept < MAX_KEPT_DEPTH:
                        name = TEMPLATE_NAME.match(s, pos).group()
                        render = _RENDERERS.get(name, _UNKNOWN)
                        if render is _UNKNOWN:
                            render = renderer(name)
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
                        drop = dropping or kept >= MAX_KEPT_DEPTH
                        if not drop:
                            name = TEMPLATE_NAME.match(s, pos).group()
                            render = _RENDERERS.get(name, _UNKNOWN)
                            drop = (renderer(name) if render is _UNKNOWN else render) is None
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
                if not keep_tables or kept >= MAX_KEPT_DEPTH:
                    stack.append((_TABLE, len(out), True, i, None, inner))
                    dropping += 1
                else:
                    stack.append((_TABLE, len(out), False, i, None, inner))
                    kept += 1
                continue
            name = TEMPLATE_NAME.match(s, pos).group()
            render = _RENDERERS.get(name, _UNKNOWN)
            if render is _UNKNOWN:
                render = renderer(name)
            if render is None or kept >= MAX_KEPT_DEPTH:
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
                    out.append(table_text(body))
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
                    out.append(table_text(body))
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


def at_line_start(s: str, i: int, indent: str) -> bool:
    """Only `indent` characters between the line's start and i."""
    i = _line_start(s, i, indent)
    return i == 0 or s[i - 1] == "\n"


def _ends_table(s: str, c: int, pos: int) -> bool:
    """The `}}` at c (after pos) starts with the `}` of a `|}` at the start of a line: a table's
    end, then a brace, not a template's close."""
    return s[c - 1] == "|" and c - 1 >= pos and at_line_start(s, c - 1, " \t")


_CELL_SEP = re.compile(r"\|\||!!")
_ROW_MARKS = frozenset("|!")
_first_char = operator.itemgetter(0)
# Where a nested kept table's lines go in its parent's text: a line of its own that no text can make
# (the heading mark is removed from the input and only set after this pass).
_NESTED = "\n\x02\n"


def table_text(body: list) -> list[str]:
    """keep_tables=True: one line per caption or cell, attributes dropped. `body` is `expand`'s
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
                lines += table_text(["\n" + "\n".join(inner)])
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
    "!": _const(PIPE), "=": _const("="), "·": _const(" · "), "dot": _const(" · "),
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


def renderer(name: str) -> Callable[[str, str], str] | None:
    """`_render_for` memoised on the raw name: the same few thousand names recur in every article."""
    try:
        return _RENDERERS[name]
    except KeyError:
        render = _render_for(_template_key(name))
        if len(_RENDERERS) < 50_000:  # bounded: a whole dump has far more distinct names
            _RENDERERS[name] = render
        return render
