"""`growgpt demo`: a real, small grow plan on a CPU, with no network, in a few minutes.

The corpus is the real English Wikipedia part-1 excerpt that the `gensim` wheel ships as test data
(`pip install 'growgpt[demo]'`; 206 pages of the 2016 enwiki-...-pages-articles1.xml-p10p30302 file),
or any dump file given with `--dump`. It is cut into three page-id-range parts named like real dump
parts (`demo-pages-articles1.xml-pAAApBBB.bz2`, ...), each a complete XML document, so the whole
product runs as on real dumps: extract -> prepare per part -> stage 1 on part 1 -> stage 2 on parts
1-3 (resuming stage 1 with its own warmup and cosine decay and proportional replay) -> the same two
stages as a WSD trunk at constant learning rate with a cooldown branch per stage (`--compare-schedules`)
-> the same budget from scratch on parts 1-3 (`jump`) -> per-part evaluation -> report. A tiny GPT
(GPT-2 BPE) trains on the CPU. At the end it prints the stage × part matrix in bits per byte, the
report's verdicts and the grow-cosine / grow-WSD / jump comparison, each difference with the ± of
its 95 % paired interval over the val batches.

The budget is 5 minutes on 2 idle cores, for three training runs of 192 iterations (the WSD one
plus 20 % in branches); NOTES.md ("Verdicts (issue 12)") has the shapes and tokenizers measured to
pick this one, and why 2 bits per byte is out of reach at this size.

Re-running `growgpt demo` skips whatever is done; an interrupted run continues where it stopped.
"""

from __future__ import annotations

import bz2
import importlib.util
import re
from pathlib import Path

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_bytes

GENSIM_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
PARTS = 3

DEMO_PLAN = """\
# growgpt demo plan: written by `growgpt demo`; edit it and run `growgpt grow {plan} --workdir {workdir}`.
title = "growgpt demo: enwiki part-1 excerpt in three parts"

[model]
n_layer = 2
n_head = 4
n_embd = 64
block_size = 64
dropout = 0.0

[data]
files = {files}
tokenizer = "gpt2"

[train]
batch_size = 12
gradient_accumulation_steps = 1
device = "cpu"
compile = false
eval_iters = 4
eval_interval = 120
log_interval = 10
weight_decay = 0.1
beta2 = 0.99

[eval]
batches = 16
prompts = ["The history of", "Anarchism is"]
max_new_tokens = 40

[[stage]]
name = "part1"
parts = [1]
iters = {iters1}
learning_rate = 3e-3
warmup_iters = 20

[[stage]]
name = "parts1-3"
parts = [1, 2, 3]
iters = {iters2}
learning_rate = 2e-3
warmup_iters = 20
replay = "proportional"
"""


def gensim_dump() -> Path:
    """The enwiki excerpt inside an installed gensim, found without importing gensim (slow: scipy)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the demo corpus comes from the gensim package: pip install 'growgpt[demo]' "
                        "(or give any Wikipedia dump file with --dump)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "test" / "test_data" / GENSIM_DUMP
        if path.is_file():
            return path
    raise UserError(f"gensim is installed but has no {GENSIM_DUMP}; give a dump file with --dump")


_ID = re.compile(rb"<id>(\d+)</id>")


def split_dump(dump: Path, out_dir: Path, parts: int = PARTS, prefix: str = "demo") -> list[Path]:
    """Cut a (bz2) XML dump into `parts` page-id-range files of about equal size, like real parts.

    Each output is a complete XML document: the input's header (<mediawiki> + <siteinfo>), a run of
    consecutive <page> elements, and the closing tag. Existing outputs are kept (idempotent)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob(f"{prefix}-pages-articles*.xml-p*p*.bz2"))
    if len(existing) == parts:
        return sorted(existing, key=lambda p: int(re.search(r"articles(\d+)", p.name).group(1)))
    opener = bz2.open if dump.suffix == ".bz2" else open
    try:
        with opener(dump, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{dump}: cannot read the dump ({e})") from None
    first = data.find(b"<page>")
    last = data.rfind(b"</page>")
    if first < 0 or last < 0:
        raise UserError(f"{dump}: no <page> elements: not a MediaWiki XML dump")
    header = data[:first]
    body = data[first:last + len(b"</page>")]
    pages = [b"<page>" + chunk for chunk in body.split(b"<page>")[1:]]
    if len(pages) < parts:
        raise UserError(f"{dump}: {len(pages)} pages cannot make {parts} parts")
    target = len(body) / parts
    groups: list[list[bytes]] = [[]]
    size = 0
    for page in pages:
        if size >= target * len(groups) and len(groups) < parts:
            groups.append([])
        groups[-1].append(page)
        size += len(page)
    paths = []
    for number, group in enumerate(groups, 1):
        ids = [int(m.group(1)) for m in map(_ID.search, group) if m]
        name = f"{prefix}-pages-articles{number}.xml-p{min(ids)}p{max(ids)}.bz2"
        xml = header + b"\n  ".join(group) + b"\n</mediawiki>\n"
        atomic_write_bytes(out_dir / name, bz2.compress(xml, 9))
        paths.append(out_dir / name)
    return paths


DEFAULT_ITERS = 128  # stage 1; stage 2 gets half


def run_demo(workdir: str | Path = "growgpt-demo", dump: str | Path | None = None, iters: int = DEFAULT_ITERS,
             baseline: bool = True, progress: bool = True, verbose: bool = True,
             compare_schedules: bool = True) -> dict:
    from growgpt.grow import grow

    workdir = Path(workdir)
    source = Path(dump) if dump else gensim_dump()
    if not source.is_file():
        raise UserError(f"dump file not found: {source}")
    parts = split_dump(source, workdir / "raw")
    plan = workdir / "demo-plan.toml"
    if not plan.is_file():
        text = DEMO_PLAN.format(files="[" + ", ".join(f'"raw/{p.name}"' for p in parts) + "]",
                                iters1=iters, iters2=max(iters // 2, 21), plan=plan, workdir=workdir)
        atomic_write_bytes(plan, text.encode())
    results = grow(plan, workdir, baseline="jump" if baseline else None, progress=progress, verbose=verbose,
                   compare_schedules=compare_schedules)
    if verbose:
        for line in summary_lines(results):
            print(line)
        print(f"report: {workdir / 'run' / 'report.html'} (and report.md)")
    return results


def summary_lines(results: dict) -> list[str]:
    """What the demo prints at the end: the stage × part matrix in bits per byte (▲ a rise beyond
    evaluation noise, △ one within it), the verdicts, grow vs jump and the three-way schedule
    comparison with the ± of their 95 % paired intervals, and a sample of the last stage."""
    from growgpt import report

    lines = ["", *report.console_matrix(results), "", *report.verdicts(results)]
    comparison = report.grow_vs_jump(results)
    if comparison:
        lines.append(comparison)
    lines += report.schedule_comparison_lines(results)
    last = results["stages"][-1]
    if last.get("samples"):
        lines += ["", f"sample after stage '{last['name']}':", last["samples"][0]["text"], ""]
    return lines
