"""Fuzz: mutated listings, checksum files, plans and configs end in success or one line — never a traceback.

Each case takes a valid input, applies seeded random mutations (a value swapped for a hostile one of
another type or an absurd size, a key dropped or invented, the text cut or a character inserted), and
runs the CLI in-process on it. `main()` may return, or exit with status 2 and a last stderr line that
starts `growgpt: error:`; any other exception escaping it, or a traceback on stderr, fails the test
and prints the seed and the mutated input. 50 mutations per kind, 200 in all; the seeds are fixed so
a failure reproduces with `pytest tests/test_fuzz.py -k <kind>-<seed>`; GROWGPT_FUZZ_CASES=N runs N
per kind.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from pathlib import Path

import pytest

from growgpt.cli import main

from test_dumps import DATE, WIKI, make_dump

# 50 per kind in the suite; GROWGPT_FUZZ_CASES=1000 hunts further (seeds past 50 are new cases).
CASES_PER_KIND = int(os.environ.get("GROWGPT_FUZZ_CASES", 50))

# Values a careless hand or a hostile mirror puts where a number, string or table belongs.
HOSTILE = [None, True, False, 0, -1, 1, 2, 3, 10**9, 2**62, -(2**62), 1.5, -0.5, 1e300, math.nan, math.inf,
           -math.inf, "", "abc", "1", "²", "0" * 40, "../../etc/passwd", "a\x00b", "\ud800", "é" * 300,
           [], [1, 2], ["x"], {}, {"a": 1}, {"size": "abc"}]


def _hostile(rng: random.Random):
    value = rng.choice(HOSTILE)
    return json.loads(json.dumps(value)) if isinstance(value, (list, dict)) else value


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list, the root included."""
    yield prefix, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


def mutate_tree(tree, rng: random.Random, toml_safe: bool = False):
    """`tree` with 1-3 structural mutations; toml_safe keeps values TOML can write (no None, no
    non-string keys at the top)."""
    tree = json.loads(json.dumps(tree))
    for _ in range(rng.randint(1, 3)):
        spots = list(_paths(tree))
        root_too = not toml_safe and rng.random() < 0.05  # a listing that is [1, 2, 3] or "x" at the top
        path, node = rng.choice(spots if root_too or len(spots) == 1 else spots[1:])
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        value = _hostile(rng)
        while toml_safe and value is None:
            value = _hostile(rng)
        if not path:
            tree = value
        elif action < 0.6:
            parent[path[-1]] = value
        elif action < 0.8:
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "size", "sha1", "files", "jobs", "status", "n_layer", "name"])] = value
        else:
            parent.append(value)
    return tree


def mutate_text(text: str, rng: random.Random) -> str:
    """`text` cut short, with a character inserted, or with a character deleted."""
    at = rng.randrange(len(text) + 1)
    action = rng.random()
    if action < 0.4:
        return text[:at]
    if action < 0.8:
        return text[:at] + rng.choice(['"', "{", "}", "[", "]", "=", "\n", "\x00", "é", "9", ",", "#", "'"]) + text[at:]
    return text[:at] + text[at + 1:]


def run_cli(argv: list[str], capsys, what: str) -> None:
    """main(argv): success, or exit 2 with a last stderr line `growgpt: error: ...`."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as e:
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert e.code == 2, f"{what}: exit {e.code}\n{err}"
        assert lines and lines[-1].startswith("growgpt: error: "), f"{what}: no one-line error\n{err}"
    except BaseException as e:  # noqa: BLE001 - any escape is the failure this test looks for
        raise AssertionError(f"{what}: {type(e).__name__} escaped the CLI: {e}") from e
    else:
        err = capsys.readouterr().err
    assert "Traceback" not in err, f"{what}: traceback on stderr\n{err}"


def _to_toml(tree: dict) -> str:
    """A minimal TOML writer for the mutated trees (tables, arrays of tables, scalars, arrays)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, int):
            return str(max(min(v, 2**63 - 1), -(2**63)))  # TOML integers are 64-bit
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {value(i)}" for k, i in v.items()) + "}"
        raise TypeError(type(v))

    scalars = [f"{json.dumps(str(k))} = {value(v)}" for k, v in tree.items()
               if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(i, dict) for i in v))]
    out = scalars
    for k, v in tree.items():
        if isinstance(v, dict):
            out.append(f"[{json.dumps(str(k))}]")
            out += [f"{json.dumps(str(ik))} = {value(iv)}" for ik, iv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
            for item in v:
                out.append(f"[[{json.dumps(str(k))}]]")
                out += [f"{json.dumps(str(ik))} = {value(iv)}" for ik, iv in item.items()]
    return "\n".join(out) + "\n"


# --- dumpstatus.json and sha1sums.txt: `dumps list` and `fetch` over a local mirror -----------------

@pytest.fixture(scope="module")
def mirror_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    make_dump(root, WIKI, DATE, parts={1: [(1, 3)], 2: [(4, 6)]})
    return root


def _mirror_copy(template: Path, where: Path) -> Path:
    shutil.copytree(template, where)
    return where / WIKI / DATE


def _dump_commands(mirror: Path, to: Path) -> list[list[str]]:
    common = ["--wiki", WIKI, "--date", DATE, "--mirror", str(mirror)]
    return [["dumps", "list", *common], ["fetch", *common, "--parts", "1", "--to", str(to), "--quiet"]]


def _check_fetched(to: Path, listing_text: str) -> None:
    """Nothing fetched is bigger than the real file it claims to be (no runaway download)."""
    for path in to.glob("*") if to.exists() else ():
        assert path.stat().st_size <= 10**6, f"{path} grew to {path.stat().st_size} bytes\n{listing_text}"


@pytest.mark.parametrize("seed", range(CASES_PER_KIND), ids=lambda s: f"dumpstatus-{s}")
def test_mutated_dumpstatus(seed, mirror_template, tmp_path, capsys):
    rng = random.Random(seed)
    folder = _mirror_copy(mirror_template, tmp_path / "mirror")
    status_path = folder / "dumpstatus.json"
    if seed % 5 == 4:  # some byte-level damage besides the structural kind
        text = mutate_text(status_path.read_text(), rng)
    else:
        text = json.dumps(mutate_tree(json.loads(status_path.read_text()), rng))
    status_path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for argv in _dump_commands(tmp_path / "mirror", tmp_path / "to"):
        run_cli(argv, capsys, f"{argv[0]} with dumpstatus.json:\n{text[:2000]}")
    _check_fetched(tmp_path / "to", text[:2000])


@pytest.mark.parametrize("seed", range(CASES_PER_KIND), ids=lambda s: f"sha1sums-{s}")
def test_mutated_checksum_listing(seed, mirror_template, tmp_path, capsys):
    rng = random.Random(1000 + seed)
    folder = _mirror_copy(mirror_template, tmp_path / "mirror")
    (folder / "dumpstatus.json").unlink()  # the fallback listing: the sums files
    sums = folder / f"{WIKI}-{DATE}-sha1sums.txt"
    lines = sums.read_text().splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        kind = rng.random()
        if kind < 0.3:
            lines[i] = mutate_text(lines[i], rng)
        elif kind < 0.5:
            digest, _, name = lines[i].partition("  ")
            lines[i] = f"{rng.choice(['', 'zz', '0' * 39, 'Ǆ' * 40, digest.upper()])}  {name}"
        elif kind < 0.7:
            lines.insert(i, rng.choice(["", " ", "  ", "*", "0" * 40, f"{'0' * 40}  ../{WIKI}-{DATE}-x.bz2",
                                        f"{'0' * 40}  {WIKI}-{DATE}-pages-articles1.xml-p1p3.bz2"]))
        else:
            del lines[i]
    text = "\n".join(lines) + rng.choice(["\n", "", "\r\n"])
    sums.write_text(text, encoding="utf-8")
    if rng.random() < 0.5:
        (folder / f"{WIKI}-{DATE}-md5sums.txt").unlink()
    for argv in _dump_commands(tmp_path / "mirror", tmp_path / "to"):
        run_cli(argv, capsys, f"{argv[0]} with sha1sums.txt:\n{text[:2000]}")
    _check_fetched(tmp_path / "to", text[:2000])


# --- plans: `estimate --no-probe` loads and checks everything a plan says ------------------------

@pytest.fixture(scope="module")
def plan_tree(tmp_path_factory) -> tuple[Path, dict]:
    import tomllib

    from conftest import write_plan

    root = tmp_path_factory.mktemp("plan")
    return root, tomllib.loads(write_plan(root).read_text())


@pytest.mark.parametrize("seed", range(CASES_PER_KIND), ids=lambda s: f"plan-{s}")
def test_mutated_plan(seed, plan_tree, tmp_path, capsys):
    rng = random.Random(2000 + seed)
    root, tree = plan_tree
    text = _to_toml(tree)
    text = mutate_text(text, rng) if seed % 5 == 4 else _to_toml(mutate_tree(tree, rng, toml_safe=True)) \
        if isinstance(tree, dict) else text
    plan = root / f"fuzz-{seed}.toml"  # beside the dumps its `files` name
    plan.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        run_cli(["estimate", str(plan), "--no-probe", "--workdir", str(tmp_path / "work")], capsys,
                f"estimate with plan:\n{text}")
    finally:
        plan.unlink()


# --- training configs: `train` checks keys, values, dataset and memory before the first step ------

@pytest.mark.parametrize("seed", range(CASES_PER_KIND), ids=lambda s: f"config-{s}")
def test_mutated_config(seed, tiny_settings, tmp_path, capsys, monkeypatch):
    import growgpt.train

    # Everything up to the first step runs (config, dataset, model built and placed, memory checks);
    # the loop itself is replaced, so 50 configs cost seconds, not minutes.
    def run_nothing(self):
        # A config that got this far must hold only sane numbers: finite floats, integral ints.
        for key, value in self.cfg.to_dict().items():
            assert not isinstance(value, float) or math.isfinite(value), f"{key} = {value} accepted\n{text}"
        return {"iter_num": 0, "best_val_loss": 0.0, "out_dir": str(self.out_dir)}

    monkeypatch.setattr(growgpt.train.Trainer, "run", run_nothing)
    rng = random.Random(3000 + seed)
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b" / "c")  # relative out_dirs like ../../x stay in tmp_path
    tree = {k: v for k, v in tiny_settings(max_iters=4, eval_iters=1).items()}
    text = mutate_text(_to_toml(tree), rng) if seed % 5 == 4 else _to_toml(mutate_tree(tree, rng, toml_safe=True))
    config = tmp_path / "train.toml"
    config.write_text(text, encoding="utf-8", errors="surrogatepass")
    run_cli(["train", str(config)], capsys, f"train with config:\n{text}")


# --- what the fuzzer found with GROWGPT_FUZZ_CASES=400, kept as fixed cases -----------------------

def test_a_lone_surrogate_from_a_mirror_is_printed_escaped(mirror_template, tmp_path, capsys):
    """dumpstatus-122: a job status of "\\ud800" (valid JSON, not encodable) made `dumps list` die
    printing its table; the CLI's streams escape what they cannot encode."""
    folder = _mirror_copy(mirror_template, tmp_path / "mirror")
    status = json.loads((folder / "dumpstatus.json").read_text())
    status["jobs"]["articlesdump"]["status"] = "\ud800"
    (folder / "dumpstatus.json").write_text(json.dumps(status))
    run_cli(_dump_commands(tmp_path / "mirror", tmp_path / "to")[0], capsys, "dumps list")
