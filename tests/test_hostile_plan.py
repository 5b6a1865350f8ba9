"""Hostile plans (issue 11, C13): every value is checked when the plan is loaded, before any download,
extract or training, and a bad one is a one-line UserError naming the key, its table and the plan file."""

from __future__ import annotations

from pathlib import Path

import pytest

from growgpt.cli import main
from growgpt.errors import UserError
from growgpt.plan import load_plan

from conftest import LOAD_ONLY_PLAN

# A valid plan over three local dump files (conftest.PLAN with every key a mutation below needs). The
# dump files only have to exist: loading a plan does not read them. Every mutation below replaces one
# unique piece of this text.
BASE = LOAD_ONLY_PLAN
FILES = 'files = ["p1.xml.bz2", "p2.xml.bz2", "p3.xml.bz2"]'
STAGES = BASE[BASE.index("[[stage]]"):]
MODEL = BASE[BASE.index("[model]"):BASE.index("[data]")]
EVAL = BASE[BASE.index("[eval]"):BASE.index("[[stage]]")]
WIKI = 'wiki = "testwiki"\ndate = "20250101"'  # a plan that would download a dump instead


def write(folder: Path, text: str = BASE, *edits: tuple[str, str]) -> Path:
    for old, new in edits:
        assert text.count(old) == 1, f"the base plan has no unique {old!r}"
        text = text.replace(old, new)
    for name in ("p1.xml.bz2", "p2.xml.bz2", "p3.xml.bz2"):
        (folder / name).write_bytes(b"BZh9")
    plan = folder / "plan.toml"
    plan.write_text(text, encoding="utf-8")
    return plan


# (id, edits, key, table): the error must name the key (as 'key') and the table.
CASES = [
    # [eval]
    ("eval-batch-size-negative", [("batch_size = 8", "batch_size = -1")], "batch_size", "[eval]"),
    ("eval-batch-size-absurd", [("batch_size = 8", "batch_size = 100000000")], "batch_size", "[eval]"),
    ("eval-batches-zero", [("batches = 3", "batches = 0")], "batches", "[eval]"),
    ("temperature-negative", [("temperature = 0.8", "temperature = -0.5")], "temperature", "[eval]"),
    ("temperature-nan", [("temperature = 0.8", "temperature = nan")], "temperature", "[eval]"),
    ("temperature-inf", [("temperature = 0.8", "temperature = inf")], "temperature", "[eval]"),
    ("temperature-text", [("temperature = 0.8", 'temperature = "hot"')], "temperature", "[eval]"),
    ("eval-seed-negative", [("seed = 1234", "seed = -1")], "seed", "[eval]"),
    ("eval-seed-too-big", [("seed = 1234", "seed = 18446744073709551616")], "seed", "[eval]"),
    ("top-k-negative", [("top_k = 200", "top_k = -1")], "top_k", "[eval]"),
    ("top-k-float", [("top_k = 200", "top_k = 2.5")], "top_k", "[eval]"),
    ("max-new-tokens-absurd", [("max_new_tokens = 5", "max_new_tokens = 1000000000000")], "max_new_tokens", "[eval]"),
    ("prompt-nul", [('prompts = ["The"]', 'prompts = ["The\\u0000end"]')], "prompts", "[eval]"),
    ("prompt-escape-char", [('prompts = ["The"]', 'prompts = ["\\u001b[31mred"]')], "prompts", "[eval]"),
    ("prompt-empty", [('prompts = ["The"]', 'prompts = ["The", ""]')], "prompts", "[eval]"),
    ("prompt-blank", [('prompts = ["The"]', 'prompts = ["  "]')], "prompts", "[eval]"),
    ("prompt-not-text", [('prompts = ["The"]', "prompts = [5]")], "prompts", "[eval]"),
    ("prompts-not-a-list", [('prompts = ["The"]', 'prompts = "The"')], "prompts", "[eval]"),
    ("prompt-reads-a-file", [('prompts = ["The"]', 'prompts = ["FILE:/etc/passwd"]')], "prompts", "[eval]"),
    # [[stage]]
    ("learning-rate-nan", [("learning_rate = 3e-3", "learning_rate = nan")], "learning_rate", "[[stage]] 1"),
    ("learning-rate-inf", [("learning_rate = 2e-3", "learning_rate = inf")], "learning_rate", "[[stage]] 2"),
    ("learning-rate-text", [("learning_rate = 3e-3", 'learning_rate = "fast"')], "learning_rate", "[[stage]] 1"),
    ("min-lr-nan", [("min_lr = 1e-4", "min_lr = nan")], "min_lr", "[[stage]] 2"),
    ("min-lr-inf", [("min_lr = 1e-4", "min_lr = -inf")], "min_lr", "[[stage]] 2"),
    ("min-lr-negative", [("min_lr = 1e-4", "min_lr = -1e-4")], "min_lr", "[[stage]] 2"),
    ("new-fraction-nan", [("new_fraction = 0.5", "new_fraction = nan")], "new_fraction", "[[stage]] 2"),
    ("warmup-negative", [("warmup_iters = 3", "warmup_iters = -1")], "warmup_iters", "[[stage]] 1"),
    ("warmup-past-iters", [("warmup_iters = 3", "warmup_iters = 12")], "warmup_iters", "[[stage]] 1"),
    ("iters-absurd", [("iters = 12", "iters = 1000000000000")], "iters", "[[stage]] 1"),
    ("part-absurd", [("parts = [1]\n", "parts = [1000000000]\n")], "parts", "[[stage]] 1"),
    ("part-bool", [("parts = [1]\n", "parts = [true]\n")], "parts", "[[stage]] 1"),
    ("name-nul", [('name = "s1"', 'name = "s\\u00001"')], "name", "[[stage]] 1"),
    ("name-newline", [('name = "s1"', 'name = "s\\n1"')], "name", "[[stage]] 1"),
    ("name-too-long", [('name = "s1"', f'name = "{"s" * 300}"')], "name", "[[stage]] 1"),
    ("name-blank", [('name = "s1"', 'name = " "')], "name", "[[stage]] 1"),
    ("name-dot-dot", [('name = "s1"', 'name = ".."')], "name", "[[stage]] 1"),
    ("name-baseline", [('name = "s2"', 'name = "jump"')], "name", "[[stage]] 2"),
    ("names-differ-in-case", [('name = "s2"', 'name = "S1"')], "name", "[[stage]] 2"),
    ("init-from-resume", [("warmup_iters = 3", 'warmup_iters = 3\ninit_from = "resume"')], "init_from", "[[stage]] 1"),
    ("init-from-missing", [("warmup_iters = 3", 'warmup_iters = 3\ninit_from = "no/such/gpt2"')], "init_from",
     "[[stage]] 1"),
    # the top level: tables must be tables
    ("model-not-a-table", [(MODEL, ""), ('title = "hostile"', 'title = "hostile"\nmodel = 5')], "model",
     "the top level"),
    ("data-not-a-table", [("[data]\n" + FILES, ""), ('title = "hostile"', 'title = "hostile"\ndata = "enwiki"')],
     "data", "the top level"),
    ("eval-not-a-table", [(EVAL, ""), ('title = "hostile"', 'title = "hostile"\neval = [1, 2]')], "eval",
     "the top level"),
    ("stage-not-an-array", [(STAGES, ""), ("title = \"hostile\"", "title = \"hostile\"\nstage = 5")], "stage",
     "the top level"),
    ("stage-one-table", [(STAGES, STAGES.replace("[[stage]]", "[stage]", 1).split("[[stage]]")[0])], "stage",
     "the top level"),
    ("title-not-text", [('title = "hostile"', "title = 5")], "title", "the top level"),
    # [model] and [train]: TrainConfig's checks, with the table and the file added
    ("model-value-text", [("n_layer = 1", 'n_layer = "one"')], "n_layer", "[model]"),
    ("model-dropout", [("block_size = 32", "block_size = 32\ndropout = 1.5")], "dropout", "[model]"),
    ("train-negative", [("batch_size = 4", "batch_size = -4")], "batch_size", "[train]"),
    # [data]
    ("val-fraction-nan", [(FILES, FILES + "\nval_fraction = nan")], "val_fraction", "[data]"),
    ("val-fraction-one", [(FILES, FILES + "\nval_fraction = 1.0")], "val_fraction", "[data]"),
    ("min-chars-negative", [(FILES, FILES + "\nmin_chars = -2")], "min_chars", "[data]"),
    ("min-chars-absurd", [(FILES, FILES + "\nmin_chars = 100000000000")], "min_chars", "[data]"),
    ("split-seed-negative", [(FILES, FILES + "\nsplit_seed = -1")], "split_seed", "[data]"),
    ("split-seed-too-big", [(FILES, FILES + "\nsplit_seed = 18446744073709551616")], "split_seed", "[data]"),
    ("file-missing", [('"p3.xml.bz2"]', '"p3.xml.bz2", "gone.xml.bz2"]')], "files", "[data]"),
    ("file-twice", [('"p3.xml.bz2"]', '"p1.xml.bz2"]')], "files", "[data]"),
    ("file-nul", [('"p3.xml.bz2"]', '"p3\\u0000.xml.bz2"]')], "files", "[data]"),
    ("file-is-a-folder", [('"p3.xml.bz2"]', '"."]')], "files", "[data]"),
    ("dump-key-with-files", [(FILES, FILES + '\ndate = "20250101"')], "date", "[data]"),
    ("require-checksum-text", [(FILES, WIKI + '\nrequire_checksum = "no"')], "require_checksum", "[data]"),
    ("mirror-bad-scheme", [(FILES, WIKI + '\nmirror = "ftp://mirror.example.org"')], "mirror", "[data]"),
    ("mirror-control-char", [(FILES, WIKI + '\nmirror = "https://example.org/\\u0000"')], "mirror", "[data]"),
    ("wiki-malformed", [(FILES, 'wiki = "en wiki"')], "wiki", "[data]"),
    ("date-malformed", [(FILES, 'wiki = "testwiki"\ndate = "2025-01-01"')], "date", "[data]"),
    ("date-toml-date", [(FILES, 'wiki = "testwiki"\ndate = 2025-01-01')], "date", "[data]"),
    ("wiki-part-absurd", [(FILES, WIKI), ("parts = [1]\n", "parts = [99999999999]\n")], "parts", "[[stage]] 1"),
]


@pytest.mark.parametrize("edits, key, table", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_plan_is_refused_at_load_naming_key_table_and_file(tmp_path, edits, key, table):
    plan = write(tmp_path, BASE, *edits)
    with pytest.raises(UserError) as error:
        load_plan(plan)
    message = str(error.value)
    # plan's own checks, or TrainConfig's (for [model] and [train]) with the table and file put first
    assert (f"key '{key}' in {table}" in message and str(plan) in message
            or message.startswith(f"{table} of {plan}: config key '{key}'")), message
    assert "\n" not in message


def test_the_base_plan_and_edge_values_load(tmp_path):
    plan = load_plan(write(tmp_path))
    assert [s.name for s in plan.stages] == ["s1", "s2"] and plan.data.require_checksum is True
    edge = load_plan(write(tmp_path, BASE, ("temperature = 0.8", "temperature = 0"), ("top_k = 200", "top_k = 0"),
                           ('prompts = ["The"]', 'prompts = ["Chapter 1\\n\\n\\tThe"]'),
                           ('name = "s1"', 'name = "étape 1"'), ("batch_size = 8", "batch_size = 0"),
                           ("seed = 1234", "seed = 18446744073709551615")))
    assert edge.eval.temperature == 0.0 and edge.eval.top_k == 0 and edge.eval.prompts == ["Chapter 1\n\n\tThe"]
    assert edge.stages[0].name == "étape 1" and edge.eval.seed == 2**64 - 1


def test_require_checksum_is_a_data_key_of_dump_plans(tmp_path):
    plan = load_plan(write(tmp_path, BASE, (FILES, WIKI + "\nrequire_checksum = false")))
    assert plan.data.require_checksum is False and plan.data.wiki == "testwiki"
    assert load_plan(write(tmp_path, BASE, (FILES, WIKI))).data.require_checksum is True


def test_a_part_the_local_files_do_not_have_fails_at_load(tmp_path):
    plan = write(tmp_path, BASE, ("parts = [1, 2, 3]", "parts = [1, 2, 4]"))
    with pytest.raises(UserError, match=r"stage 's2' of .*plan\.toml names part 4, which the dump does not have"):
        load_plan(plan)


def _cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with one 'growgpt: error:' line on stderr, no traceback."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("growgpt: error: "), err
    return err


@pytest.mark.parametrize("edits, key", [
    ([("temperature = 0.8", "temperature = nan")], "temperature"),
    ([('name = "s1"', 'name = "s\\u00001"')], "name"),
    ([(MODEL, ""), ('title = "hostile"', 'title = "hostile"\nmodel = 5')], "model"),
    ([('"p3.xml.bz2"]', '"p3.xml.bz2", "gone.xml.bz2"]')], "files"),
], ids=["temperature-nan", "name-nul", "model-not-a-table", "file-missing"])
def test_cli_grow_and_estimate_fail_in_one_line_and_touch_nothing(tmp_path, capsys, edits, key):
    plan = write(tmp_path, BASE, *edits)
    before = sorted(p.name for p in tmp_path.iterdir())
    workdir = tmp_path / "work"
    assert f"'{key}'" in _cli_error(capsys, ["grow", str(plan), "--workdir", str(workdir), "--quiet"])
    assert f"'{key}'" in _cli_error(capsys, ["estimate", str(plan), "--no-probe"])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no workdir (estimate's default: next to the plan)
