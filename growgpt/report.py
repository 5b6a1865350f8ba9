"""The report of a grow run: did growing the corpus in stages work, and what did it cost?

`growgpt grow` records every finished stage in `RUN_DIR/grow.json` (its evaluation on the val set of
every part, seen or not, its cost and a few samples). `write_report(RUN_DIR)` turns that file and the
stages' `metrics.jsonl` files into three files in RUN_DIR, each written atomically:

* `report.md`   – the report as Markdown (it links `loss_curves.png`);
* `report.html` – the same report as one self-contained page (the plot is embedded; open it anywhere);
* `loss_curves.png` – train and val loss against iteration over all stages.

The console gets `console_summary` (the line `growgpt grow` prints), `console_matrix`, `verdicts` and
`schedule_comparison_lines` (the schedule comparison and the seed spread, for `growgpt demo`).

This module is the entry point and re-exports the public names of its parts, which depend on each
other in this order (no cycle): report_format (numbers and words) and report_data (grow.json) ←
report_compare (schedules, seeds) ← report_verdicts (matrices, verdicts, grow vs jump) ←
report_sections (`sections(results)`: the report as plain data) ← report_render (Markdown, HTML);
report_plot draws the curves.

Schedules: a cosine stage re-warms and decays; a wsd stage is a stretch of a constant-LR trunk (its folder
`trunk_dir`) whose scores, samples and matrix cells are those of a short cooldown branch off the trunk's
end (`run_dir`, the stage's "branch" record: iterations, tokens, time). The next stage continues the
trunk, so a wsd chain's final model has seen every trunk stretch plus the last branch, while its cost
counts every branch: the cost table shows trunk and branch as rows of their own and counts branches in
the totals, the plot draws each branch as a short side track off the trunk, and grow vs jump's tokens
and time include branches.
"""

from __future__ import annotations

from pathlib import Path

from growgpt.fsutil import atomic_write_bytes
from growgpt.report_compare import SeedSpread, Spread, schedule_comparison_lines, seed_spread
from growgpt.report_data import GROW_FILE, LOSS_PNG, REPORT_HTML, REPORT_MD, lineage_tokens, load_results, pair, totals
from growgpt.report_format import compact_parts, f_mfu
from growgpt.report_plot import Series, curves, loss_series, plot_loss_curves
from growgpt.report_render import render_html, render_markdown, to_html, to_markdown
from growgpt.report_sections import COST_HEADER, COST_NOTE, sections
from growgpt.report_verdicts import console_matrix, console_summary, grow_vs_jump, interval_note, verdicts

__all__ = ["COST_HEADER", "COST_NOTE", "GROW_FILE", "LOSS_PNG", "REPORT_HTML", "REPORT_MD", "SeedSpread", "Series",
           "Spread", "compact_parts", "console_matrix", "console_summary", "curves", "f_mfu", "grow_vs_jump",
           "interval_note", "lineage_tokens", "load_results", "loss_series", "pair", "plot_loss_curves",
           "render_html", "render_markdown", "schedule_comparison_lines", "sections", "seed_spread", "to_html",
           "to_markdown", "totals", "verdicts", "write_report"]


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html and loss_curves.png into run_dir; return their paths.

    Keys of the returned dict: "markdown", "html", "png".
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    png = plot_loss_curves(results, run_dir)
    report = sections(results)
    paths = {"png": run_dir / LOSS_PNG, "markdown": run_dir / REPORT_MD, "html": run_dir / REPORT_HTML}
    atomic_write_bytes(paths["png"], png)
    atomic_write_bytes(paths["markdown"], to_markdown(report, LOSS_PNG).encode("utf-8"))
    atomic_write_bytes(paths["html"], to_html(report, png).encode("utf-8"))
    return paths
