"""Hostile inputs to `prepare` (issue 11, C14): one-line UserErrors naming the file (and line or row) or
the flag, never a traceback; string page ids work. And bench/extract_speed.py's work folder (D15)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from growgpt.cli import main
from growgpt.errors import UserError
from growgpt.prepare import MAX_SEED, is_val, prepare, prepare_parts
from growgpt.tokenizer import CharTokenizer

from test_prepare import all_documents, split_documents

DOCS = [f"Document {i} says something about topic {i}.\n" * (1 + i % 3) for i in range(40)]


def write_jsonl(path: Path, records: list) -> Path:
    """One JSON object a line (other prepare tests use it too)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with one 'growgpt: error:' line on stderr, no traceback.
    (prepare's progress bar may have drawn and erased itself, with carriage returns, before that line.)"""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    line = err.rsplit("\r", 1)[-1]
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and line.startswith("growgpt: error: "), err
    return line


# --------------------------------------------------------------------------------------------
# Text that is not text


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
def test_a_lone_surrogate_in_jsonl_names_file_and_line(tmp_path, tokenizer):
    source = tmp_path / "s.jsonl"
    # json.dumps writes the lone surrogate as the escape \ud800, as other tools do
    records = [{"text": d} for d in DOCS]
    write_jsonl(source, records[:5] + [{"text": "half a pair: \ud800!"}] + records[5:])
    assert "\\ud800" in source.read_text()
    with pytest.raises(UserError, match=r"s\.jsonl:6: 'text' holds a lone surrogate '\\ud800' .*--errors replace"):
        prepare([source], tmp_path / "d", tokenizer=tokenizer, val_fraction=0.3, progress=False)
    assert not (tmp_path / "d" / "manifest.json").exists()
    prepare([source], tmp_path / "d", tokenizer=tokenizer, val_fraction=0.3, errors="replace", progress=False)
    assert "half a pair: \ufffd!" in all_documents(tmp_path / "d")


def test_cli_lone_surrogate_is_one_line(tmp_path, capsys):
    source = write_jsonl(tmp_path / "s.jsonl", [{"text": "ok"}, {"text": "\udc00"}])
    err = cli_error(capsys, ["prepare", str(source), "--out", str(tmp_path / "d"), "--tokenizer", "char"])
    assert "s.jsonl:2:" in err and not (tmp_path / "d").exists()


def test_a_char_vocabulary_refuses_a_lone_surrogate():
    with pytest.raises(UserError, match="lone surrogate"):
        CharTokenizer(["a", "\ud800"])
    with pytest.raises(UserError, match="lone surrogate"):  # in-memory documents have no file to name
        prepare([], "unused", tokenizer="char", documents=[("m", "a\udfffb")], progress=False)


@pytest.mark.parametrize("text, kind", [(5, "int"), (["a", "b"], "list"), (None, "NoneType"), ({"t": "x"}, "dict")])
def test_jsonl_text_that_is_not_a_string(tmp_path, text, kind):
    source = write_jsonl(tmp_path / "t.jsonl", [{"text": "fine"}, {"text": text}])
    with pytest.raises(UserError, match=rf"t\.jsonl:2: no string 'text' field \('text' is {kind}\)"):
        prepare([source], tmp_path / "d", progress=False)


def test_jsonl_nested_too_deeply(tmp_path):
    source = tmp_path / "deep.jsonl"
    source.write_text('{"text": "fine"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(UserError, match=r"deep\.jsonl:2: not valid JSON"):
        prepare([source], tmp_path / "d", progress=False)


@pytest.mark.parametrize("column, type_name", [
    (pa.array([1, 2, 3]), "int64"), (pa.array([["a"], ["b"], []]), "list<"), (pa.array([None, None, None]), "null"),
    (pa.array([b"x", b"y", b"z"]), "binary")], ids=["ints", "lists", "nulls", "bytes"])
def test_parquet_text_column_of_another_type(tmp_path, column, type_name):
    pq.write_table(pa.table({"text": column}), tmp_path / "c.parquet")
    with pytest.raises(UserError, match=rf"c\.parquet: column 'text' holds {type_name}.*, expected strings"):
        prepare([tmp_path / "c.parquet"], tmp_path / "d", progress=False)


def _string_array_of_bytes(values: list[bytes]) -> pa.Array:
    """A string column holding these exact bytes: pyarrow does not check them, and Parquet keeps them."""
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])


def test_parquet_text_that_is_not_utf8_names_the_row(tmp_path):
    values = [d.encode() for d in DOCS[:7]] + [b"bad \xff byte"] + [d.encode() for d in DOCS[7:]]
    pq.write_table(pa.table({"text": _string_array_of_bytes(values)}), tmp_path / "u.parquet")
    with pytest.raises(UserError, match=r"u\.parquet: row 7 \(from 0\): 'text' is not UTF-8 at byte 4 "
                                        r".*--errors replace"):
        prepare([tmp_path / "u.parquet"], tmp_path / "d", progress=False, val_fraction=0.3)
    prepare([tmp_path / "u.parquet"], tmp_path / "d", progress=False, val_fraction=0.3, errors="replace")
    assert "bad \ufffd byte" in all_documents(tmp_path / "d")


def test_parquet_id_of_another_type_or_not_whole(tmp_path):
    pq.write_table(pa.table({"id": [True] * 40, "text": DOCS}), tmp_path / "b.parquet")
    with pytest.raises(UserError, match=r"b\.parquet: column 'id' holds bool, expected integer or string page ids"):
        prepare([tmp_path / "b.parquet"], tmp_path / "d", progress=False)
    ids = [float(i) for i in range(39)] + [float("nan")]
    pq.write_table(pa.table({"id": ids, "text": DOCS}), tmp_path / "f.parquet")
    with pytest.raises(UserError, match=r"f\.parquet: row 39 \(from 0\): id nan is not a whole number"):
        prepare([tmp_path / "f.parquet"], tmp_path / "d", progress=False)


# --------------------------------------------------------------------------------------------
# Page ids: strings work, integers keep their assignment


def test_string_page_ids_decide_the_split_stably(tmp_path):
    ids = [f"Q{1000 + i}" for i in range(40)]
    pq.write_table(pa.table({"id": ids, "text": DOCS}), tmp_path / "s.parquet")
    prepare([tmp_path / "s.parquet"], tmp_path / "d", tokenizer="char", val_fraction=0.3, seed=5, progress=False)
    expected = {DOCS[i] for i in range(40) if is_val(b"id:" + ids[i].encode("utf-8"), 5, 0.3)}
    assert 0 < len(expected) < 40 and set(split_documents(tmp_path / "d", "val")) == expected
    # The same ids in another order, other rows, dictionary-encoded: each document stays on its side.
    table = pa.table({"id": pa.array(ids[::-1]).dictionary_encode(), "text": DOCS[::-1]})
    pq.write_table(table.slice(0, 30), tmp_path / "again.parquet")
    prepare([tmp_path / "again.parquet"], tmp_path / "again", tokenizer="char", val_fraction=0.3, seed=5,
            progress=False)
    assert set(split_documents(tmp_path / "again", "val")) == expected & set(DOCS[10:])


def test_integer_ids_keep_their_assignment_and_text_ids_of_numbers_match_them(tmp_path):
    numbers = list(range(500, 540))
    expected = {DOCS[i] for i in range(40) if is_val(b"id:%d" % numbers[i], 3, 0.3)}  # what prepare always did
    tables = {"int": pa.table({"id": pa.array(numbers, pa.int32()), "text": DOCS}),
              "float": pa.table({"id": [float(n) for n in numbers], "text": DOCS}),  # pandas' ints with gaps
              "str": pa.table({"id": [str(n) for n in numbers], "text": DOCS})}
    for kind, table in tables.items():
        pq.write_table(table, tmp_path / f"{kind}.parquet")
        prepare([tmp_path / f"{kind}.parquet"], tmp_path / kind, tokenizer="char", val_fraction=0.3, seed=3,
                progress=False)
        assert set(split_documents(tmp_path / kind, "val")) == expected, kind


def test_jsonl_with_string_ids_works_and_its_id_decides(tmp_path):
    source = write_jsonl(tmp_path / "ids.jsonl", [{"id": f"doc-{i}", "text": d} for i, d in enumerate(DOCS)])
    prepare([source], tmp_path / "d", tokenizer="char", val_fraction=0.3, seed=9, progress=False)
    assert set(split_documents(tmp_path / "d", "val")) == {d for i, d in enumerate(DOCS)
                                                       if is_val(b"id:doc-%d" % i, 9, 0.3)}


# --------------------------------------------------------------------------------------------
# Flags


@pytest.mark.parametrize("seed", [99999999999999999999999, MAX_SEED + 1, -1, -(2**70)])
def test_a_seed_out_of_range_names_the_flag(tmp_path, seed):
    source = write_jsonl(tmp_path / "ok.jsonl", [{"text": d} for d in DOCS])
    with pytest.raises(UserError, match=r"--seed must be an integer from 0 to 18446744073709551615"):
        prepare([source], tmp_path / "d", progress=False, seed=seed)
    with pytest.raises(UserError, match=r"--seed must be an integer"):
        prepare_parts(tmp_path, tmp_path / "tokens", progress=False, seed=seed)
    assert not (tmp_path / "d").exists() and not (tmp_path / "tokens").exists()


def test_the_largest_seed_works(tmp_path):
    source = write_jsonl(tmp_path / "ok.jsonl", [{"text": d} for d in DOCS])
    m = prepare([source], tmp_path / "d", tokenizer="char", progress=False, seed=MAX_SEED, val_fraction=0.3)
    assert m["seed"] == MAX_SEED


@pytest.mark.parametrize("flags", [["--seed", "99999999999999999999999"], ["--seed", "-5"], ["--val-fraction", "nan"],
                                   ["--val-fraction", "-0.1"], ["--val-fraction", "1"], ["--val-fraction", "inf"]])
def test_cli_bad_split_flags_are_one_line(tmp_path, capsys, flags):
    source = write_jsonl(tmp_path / "ok.jsonl", [{"text": d} for d in DOCS])
    err = cli_error(capsys, ["prepare", str(source), "--out", str(tmp_path / "d"), *flags])
    assert flags[0] in err and not (tmp_path / "d").exists()


# --------------------------------------------------------------------------------------------
# bench/extract_speed.py (D15): a fresh private folder by default, never deletes what it did not make


def _extract_speed():
    path = Path(__file__).resolve().parents[1] / "bench" / "extract_speed.py"
    spec = importlib.util.spec_from_file_location("extract_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_bench_uses_a_fresh_folder_and_removes_only_its_own(tmp_path, monkeypatch):
    bench = _extract_speed()
    seen = []
    monkeypatch.setattr(bench, "SAMPLE", Path(__file__))  # any existing file: the bench itself is not run
    monkeypatch.setattr(bench, "_bench", lambda args, workdir, out: seen.append((workdir, out, workdir.stat().st_mode)))
    monkeypatch.setattr(sys, "argv", ["extract_speed.py"])
    bench.main()
    bench.main()
    (first, first_out, mode), (second, _, _) = seen
    assert first != second and first_out.parent == first and mode & 0o077 == 0  # fresh, private
    assert not first.exists() and not second.exists()  # made by the bench, so removed by it

    # A given workdir: its own files, even a folder named "out", are left alone; the run's output
    # goes to a fresh subfolder, removed at the end.
    mine = tmp_path / "mine"
    (mine / "out").mkdir(parents=True)
    (mine / "out" / "keep.txt").write_text("mine")
    monkeypatch.setattr(sys, "argv", ["extract_speed.py", "--workdir", str(mine)])
    bench.main()
    workdir, out, _ = seen[-1]
    assert workdir == mine and out.parent == mine and out != mine / "out"
    assert (mine / "out" / "keep.txt").read_text() == "mine" and not out.exists()


def test_extract_bench_empties_its_output_folder_but_keeps_it(tmp_path):
    bench = _extract_speed()
    _, out, _ = bench.bench_folders(tmp_path)
    (out / "part").mkdir()
    (out / "part" / "x.parquet").write_bytes(b"x")
    (out / "manifest.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    bench._empty(out)
    assert out.is_dir() and list(out.iterdir()) == [] and (tmp_path / "elsewhere").is_dir()
