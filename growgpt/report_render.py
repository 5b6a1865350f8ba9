"""The grow report's two emitters: its sections (report_sections) as Markdown and as one self-contained
HTML page (the plot embedded, no external resources: open it anywhere).

Both walk the same sections; only escaping and layout differ. Samples are the one block laid out
differently: a subsection per prompt in Markdown, a table of prompts × models in HTML.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from growgpt.report_data import LOSS_PNG
from growgpt.report_format import RISE, f_bpb, f_loss, f_ppl, f_signed_pct
from growgpt.report_sections import (
    MARKDOWN,
    PLAIN,
    PROSE,
    Block,
    BulletList,
    Figure,
    Paragraph,
    Samples,
    Section,
    Table,
    sections,
)
from growgpt.report_verdicts import rise_mark

# The plan key and the grow options the report points to, as code in either format.
CODE_SPANS = ("`[eval] batches`", "`--repeat`", "`--repeat-grow`", "`--compare-schedules`")


def _cell_text(cell: dict) -> str:
    """A matrix cell's number: "bpb", or "loss (perplexity)"; a dash when the score is missing."""
    if cell["value"] is None:
        return "\u2013"
    if cell["metric"] == "bpb":
        return f_bpb(cell["value"])
    return f"{f_loss(cell['value'])} ({f_ppl(cell['ppl'])})"


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Inline Markdown text: special characters escaped, line breaks folded."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", "").replace("\n", " \u23ce ")


def _md_prose(text: str) -> str:
    """A sentence of the report as Markdown: escaped like _md, the plan key and options left as inline code."""
    text = _md(text)
    for span in CODE_SPANS:
        text = text.replace(_md(span), span)
    return text


def _md_text(text: str, style: str) -> str:
    return _md_prose(text) if style == PROSE else text if style == MARKDOWN else _md(text)


def _md_fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(cell: dict) -> str:
    text = _cell_text(cell)
    if cell["unseen"]:
        text = f"_{text}_ \u00b7unseen"
    mark = rise_mark(cell)
    if mark:
        text += f" {mark} {f_signed_pct(cell['rise'])}"
    return text


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _md_block(block: Block, png_name: str) -> list[str]:
    """A block as Markdown paragraphs (each is followed by a blank line)."""
    if isinstance(block, Paragraph):
        return [_md_text(block.text, block.style)]
    if isinstance(block, Table):
        style = PROSE if block.prose else PLAIN
        rows = [[_md_cell(c) if isinstance(c, dict) else _md_text(c, style) for c in row] for row in block.rows]
        return [_md_table([_md(h) for h in block.header], rows)]
    if isinstance(block, Figure):
        return [f"![{block.alt}]({png_name})"]
    if isinstance(block, Samples):
        out = []
        for i, prompt in enumerate(block.prompts, 1):
            out.append(f"### Prompt {i}: \u201c{_md(prompt)}\u201d")
            for label in block.columns:
                for text in block.texts[prompt].get(label, []):
                    out += [f"**{_md(label)}**", _md_fence(text)]
        return out
    assert isinstance(block, BulletList)
    return ["\n".join(f"- {_md_prose(v)}" for v in block.items) if block.items else _md(block.empty)]


def to_markdown(report: list[Section], png_name: str = LOSS_PNG) -> str:
    """The sections as Markdown; the plot is linked as `png_name`."""
    out = []
    for section in report:
        out += [f"{'#' * section.level} {_md(section.title)}", ""]
        for block in section.blocks:
            for paragraph in _md_block(block, png_name):
                out += [paragraph, ""]
    return "\n".join(out).rstrip() + "\n"


def render_markdown(results: dict, png_name: str = LOSS_PNG) -> str:
    return to_markdown(sections(results), png_name)


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.label, th.label { text-align: left; }
td.unseen { font-style: italic; color: #888; background: #fafafa; }
td.rise { background: #fde8e8; } .rise-mark { color: #c0392b; font-weight: 600; white-space: nowrap; }
.noise-mark { color: #999; white-space: nowrap; }
tr.baseline td { border-top: 2px solid #888; background: #fff8ec; }
.legend, .note { color: #555; font-size: .9em; }
table.samples td { text-align: left; min-width: 14em; max-width: 30em; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .88em; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _h_prose(text: str) -> str:
    """A sentence of the report as HTML: escaped, the plan key and options as <code>."""
    text = _h(text)
    for span in CODE_SPANS:
        text = text.replace(_h(span), f"<code>{_h(span.strip('`'))}</code>")
    return text


def _h_text(text: str, style: str) -> str:
    if style == PROSE:
        return _h_prose(text)
    return _h(text).replace("_Italic_", "<i>Italic</i>") if style == MARKDOWN else _h(text)


def _html_cell(cell: dict) -> str:
    mark = rise_mark(cell)
    # A rise within noise stays quiet: a grey mark, no red cell.
    classes = [c for c, on in (("unseen", cell["unseen"]), ("rise", mark == RISE)) if on]
    body = _h(_cell_text(cell))
    if cell["unseen"]:
        body += " \u00b7unseen"
    if mark:
        span = "rise-mark" if mark == RISE else "noise-mark"
        body += f' <span class="{span}">{mark} {_h(f_signed_pct(cell["rise"]))}</span>'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}>{body}</td>"


def _html_table(header: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f'<th class="label">{_h(h)}</th>' if i == 0 else f"<th>{_h(h)}</th>" for i, h in enumerate(header))
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _html_block(block: Block, png: bytes) -> str:
    if isinstance(block, Paragraph):
        cls = f' class="{block.css}"' if block.css else ""
        return f"<p{cls}>{_h_text(block.text, block.style)}</p>"
    if isinstance(block, Table):
        style = PROSE if block.prose else PLAIN
        rows = []
        for i, (label, *cells) in enumerate(block.rows):
            tr = ' class="baseline"' if block.baseline_from is not None and i >= block.baseline_from else ""
            rows.append(f'<tr{tr}><td class="label">{_h(label)}</td>'
                        + "".join(_html_cell(c) if isinstance(c, dict) else f"<td>{_h_text(c, style)}</td>"
                                  for c in cells) + "</tr>")
        return _html_table(block.header, rows, block.css)
    if isinstance(block, Figure):
        return f'<img alt="{_h(block.alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
    if isinstance(block, Samples):
        rows = []
        for prompt in block.prompts:
            cells = "".join("<td>" + "<hr>".join(f"<pre>{_h(t)}</pre>" for t in block.texts[prompt].get(c, []))
                            + "</td>" for c in block.columns)
            rows.append(f'<tr><td class="label"><pre>{_h(prompt)}</pre></td>{cells}</tr>')
        return _html_table(["Prompt"] + block.columns, rows, "samples")
    assert isinstance(block, BulletList)
    if not block.items:
        return f'<p class="note">{_h(block.empty)}</p>'
    return "<ul>" + "".join(f"<li>{_h_prose(v)}</li>" for v in block.items) + "</ul>"


def to_html(report: list[Section], png: bytes) -> str:
    """The sections as one HTML page, titled after the first section, the plot embedded."""
    title = _h(report[0].title)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{title}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>"]
    for section in report:
        out.append(f"<h{section.level}>{_h(section.title)}</h{section.level}>")
        out += [_html_block(block, png) for block in section.blocks]
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def render_html(results: dict, png: bytes) -> str:
    return to_html(sections(results), png)
