"""Shared fixtures: small real datasets prepared once per session, tiny model settings, the real
dump samples of ../shared/data/wikidumps (or gensim's copy of the enwiki ones), and small grow plans
over a local dump (write_dump_parts, write_mirror, PLAN, write_plan)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the network, and never use more threads than CI's 2 cores.
os.environ.setdefault("WANDB_MODE", "offline")

SHARED_DUMPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikidumps"
# CI (.ci/run sets CI=1) must not pass by skipping: a sample it lacks is a failure there.
IN_CI = bool(os.environ.get("CI"))


def gensim_test_data() -> Path | None:
    """gensim's test-data folder (a dev dependency), which ships the enwiki part-1 excerpt, the table
    markup sample and the bgwiki excerpt, byte for byte the files of ../shared/data/wikidumps/gensim."""
    try:
        import gensim
    except ImportError:
        return None
    folder = Path(gensim.__file__).parent / "test" / "test_data"
    return folder if folder.is_dir() else None


def dump_sample(name: str) -> Path:
    """The dump sample `name`, relative to ../shared/data/wikidumps ("gensim/enwiki-...bz2"). The
    gensim/ files fall back to gensim's own copy, so they are there wherever the dev extra is. A sample
    that is nowhere skips the test with the reason, or fails it under CI."""
    path = SHARED_DUMPS / name
    if path.exists():
        return path
    folder = gensim_test_data()
    if name.startswith("gensim/") and folder is not None and (folder / name.removeprefix("gensim/")).exists():
        return folder / name.removeprefix("gensim/")
    reason = f"dump sample {name} not found in {SHARED_DUMPS} (it lives in ../shared next to the repository)"
    if IN_CI:
        pytest.fail(reason + "; CI must run every test that does not need a GPU", pytrace=False)
    pytest.skip(reason)

# A model small enough that a training step takes milliseconds on one CPU core.
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, gradient_accumulation_steps=2,
            dropout=0.0, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5, lr_decay_iters=60, max_iters=60,
            eval_interval=20, eval_iters=4, log_interval=1, compile=False, device="cpu", beta2=0.99)


@pytest.fixture(scope="session", autouse=True)
def _private_growgpt_cache(tmp_path_factory):
    """The measured CPU peak is cached per machine: the suite's copy (and its subprocesses') stays out
    of ~/.cache."""
    os.environ["GROWGPT_CACHE_DIR"] = str(tmp_path_factory.mktemp("growgpt-cache"))


@pytest.fixture(scope="session")
def char_data(tmp_path_factory) -> Path:
    """The built-in corpus (Python language reference), char-level."""
    from growgpt.prepare import prepare

    from python_reference import python_reference_documents

    out = tmp_path_factory.mktemp("char_data")
    prepare([], str(out), tokenizer="char", documents=python_reference_documents(), progress=False)
    return out


@pytest.fixture(scope="session")
def gpt2_data(tmp_path_factory) -> Path:
    """A few documents of the built-in corpus, GPT-2 BPE."""
    from growgpt.prepare import prepare

    from python_reference import python_reference_documents

    out = tmp_path_factory.mktemp("gpt2_data")
    docs = list(python_reference_documents())[:30]
    prepare([], str(out), tokenizer="gpt2", documents=docs, progress=False, val_fraction=0.2)
    return out


@pytest.fixture
def tiny_settings(char_data, tmp_path):
    def make(**overrides):
        return {**TINY, "dataset": str(char_data), "out_dir": str(tmp_path / "run"), **overrides}
    return make


# --- grow plans over small dump parts (test_grow, test_grow_wsd, test_train_habits, test_cli, ...) ------------

WIKI_HEADER = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
               "<siteinfo><sitename>Testwiki</sitename><dbname>testwiki</dbname>"
               "<base>https://test.wikipedia.org/wiki/Main_Page</base>"
               '<namespaces><namespace key="0" case="first-letter" /></namespaces></siteinfo>\n')


def write_dump_parts(folder: Path, parts: int = 3) -> list[Path]:
    """Real prose (Python's language reference) as a wiki dump cut into page-id-range parts."""
    import bz2
    from xml.sax.saxutils import escape

    from python_reference import python_reference_documents

    docs = [(name.rsplit("/", 1)[-1], text) for name, text in python_reference_documents()]
    folder.mkdir(parents=True, exist_ok=True)
    per = len(docs) // parts
    paths = []
    for k in range(parts):
        chunk = docs[k * per:(k + 1) * per]
        first, last = 10 + k * per, 10 + (k + 1) * per - 1
        pages = "".join(
            f"<page><title>{escape(title)}</title><ns>0</ns><id>{10 + k * per + i}</id><revision><id>"
            f'{5000 + k * per + i}</id><text xml:space="preserve">{escape(text)}</text></revision></page>\n'
            for i, (title, text) in enumerate(chunk))
        path = folder / f"testwiki-20250101-pages-articles{k + 1}.xml-p{first}p{last}.bz2"
        path.write_bytes(bz2.compress((WIKI_HEADER + pages + "</mediawiki>\n").encode()))
        paths.append(path)
    return paths


def write_mirror(mirror: Path, checksums: bool = True) -> list[Path]:
    """A local dump mirror of testwiki 20250101 (three parts) with its dumpstatus.json listing."""
    import hashlib
    import json

    raw = write_dump_parts(mirror / "testwiki" / "20250101")
    files = {p.name: {"size": p.stat().st_size} for p in raw}
    if checksums:
        for p in raw:
            files[p.name].update(url=f"/testwiki/20250101/{p.name}", sha1=hashlib.sha1(p.read_bytes()).hexdigest(),
                                 md5=hashlib.md5(p.read_bytes()).hexdigest())
    (mirror / "testwiki" / "20250101" / "dumpstatus.json").write_text(json.dumps(
        {"jobs": {"articlesdump": {"status": "done", "files": files}}, "version": "0.8"}))
    return raw


# A two-stage plan over the three parts of write_dump_parts ({files}), small enough to train in seconds.
PLAN = """\
title = "test plan"
[model]
n_layer = 1
n_head = 2
n_embd = 32
block_size = 32
[data]
files = {files}
[train]
batch_size = 4
gradient_accumulation_steps = 2
device = "cpu"
compile = false
eval_iters = 2
eval_interval = 5
log_interval = 1
beta2 = 0.99
[eval]
batches = 3
prompts = ["The"]
max_new_tokens = 5
[[stage]]
name = "s1"
parts = [1]
iters = 12
learning_rate = 3e-3
warmup_iters = 3
[[stage]]
name = "s2"
parts = [1, 2, 3]
iters = 11
learning_rate = 2e-3
warmup_iters = 4
"""

# PLAN to be loaded, never trained, for tests that mutate one value at a time (test_hostile_plan): over
# three placeholder files, without the settings that only matter for training, with every [eval] key
# and stage 2's optional keys set, each once in the text.
LOAD_ONLY_PLAN = (PLAN.replace('title = "test plan"', 'title = "hostile"')
                  .replace("files = {files}", 'files = ["p1.xml.bz2", "p2.xml.bz2", "p3.xml.bz2"]')
                  .replace("gradient_accumulation_steps = 2\n", "")
                  .replace("eval_iters = 2\neval_interval = 5\nlog_interval = 1\nbeta2 = 0.99\n", "")
                  .replace("batches = 3\n", "batches = 3\nbatch_size = 8\n")
                  .replace("max_new_tokens = 5\n", "max_new_tokens = 5\ntemperature = 0.8\ntop_k = 200\nseed = 1234\n")
                  + "min_lr = 1e-4\nnew_fraction = 0.5\n")


def write_plan(folder: Path, text: str = PLAN, **replace) -> Path:
    """folder/plan.toml: `text` over folder/dumps (write_dump_parts), with each `old=new` of `replace` applied."""
    raw = write_dump_parts(folder / "dumps")
    body = text.format(files="[" + ", ".join(f'"dumps/{p.name}"' for p in raw) + "]")
    for old, new in replace.items():
        body = body.replace(old, new)
    plan = folder / "plan.toml"
    plan.write_text(body)
    return plan
