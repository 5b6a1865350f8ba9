"""prepare on Hugging Face shaped data and small text (issue 13 §3): string ids decide the split in
Parquet, JSONL and save_to_disk folders alike; --text-field; one small .txt file just works."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import growgpt.prepare as prep
from growgpt.cli import build_parser, main
from growgpt.errors import UserError
from growgpt.prepare import cut_blocks, is_val, prepare
from growgpt.shards import load_manifest

from python_reference import python_reference_documents
from test_hostile_prepare import cli_error, write_jsonl
from test_prepare import all_documents, split_documents

# Wikipedia-like rows as Hugging Face's wikipedia datasets hold them: every column a string.
ROWS = [{"id": str(1000 + 7 * i), "url": f"https://en.wikipedia.org/wiki?curid={1000 + 7 * i}",
         "title": f"Article {i}", "text": f"Article {i} is about topic {i}. " * (20 + i % 3)} for i in range(60)]


def _cli_has_text_field() -> bool:
    _, unknown = build_parser().parse_known_args(["prepare", "x.txt", "--out", "d", "--text-field", "content"])
    return not unknown


def _write_stream(path: Path, table: pa.Table, batch_rows: int = 7) -> None:
    with pa.ipc.new_stream(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)


def _save_to_disk_layout(folder: Path, table: pa.Table, shards: int = 2) -> None:
    """The layout of datasets.Dataset.save_to_disk, written by pyarrow: Arrow stream files + json."""
    folder.mkdir(parents=True)
    names = []
    size = -(-table.num_rows // shards)
    for k in range(shards):
        names.append(f"data-{k:05d}-of-{shards:05d}.arrow")
        _write_stream(folder / names[-1], table.slice(k * size, size))
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names],
                                                   "_fingerprint": "0", "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {c: {"dtype": "string", "_type": "Value"}
                                                                       for c in table.column_names}}))


# --------------------------------------------------------------------------------------------
# 1. Hugging Face's Wikipedia shape: string ids decide, the same in every container


def test_hf_wikipedia_shape_splits_by_string_id_in_parquet_jsonl_and_save_to_disk(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "wiki.parquet")
    write_jsonl(tmp_path / "wiki.jsonl", ROWS)
    _save_to_disk_layout(tmp_path / "saved", table)
    (tmp_path / "saved" / "cache-0123.arrow").write_bytes(b"not listed in state.json: never read")
    expected = {r["text"] for r in ROWS if is_val(b"id:" + r["id"].encode(), 11, 0.2)}
    assert 0 < len(expected) < len(ROWS)
    for name in ("wiki.parquet", "wiki.jsonl", "saved"):
        m = prepare([tmp_path / name], tmp_path / f"d-{name}", tokenizer="gpt2", val_fraction=0.2, seed=11,
                    progress=False)
        assert m["recut"] is None, name  # enough documents: split whole, by page id
        assert set(split_documents(tmp_path / f"d-{name}", "val")) == expected, name
        assert sorted(all_documents(tmp_path / f"d-{name}")) \
            == sorted(r["text"] for r in ROWS)
    # An edited article keeps its side: the id decides, not the text.
    edited = [{**r, "text": r["text"] + " Edited."} for r in ROWS]
    pq.write_table(pa.Table.from_pylist(edited), tmp_path / "edited.parquet")
    prepare([tmp_path / "edited.parquet"], tmp_path / "d-edited", tokenizer="char", val_fraction=0.2, seed=11,
            progress=False)
    assert set(split_documents(tmp_path / "d-edited", "val")) == {t + " Edited." for t in expected}


def test_jsonl_ids_key_like_parquet_ids(tmp_path):
    records = [{"id": 500 + i, "text": r["text"]} for i, r in enumerate(ROWS)]
    records[3]["id"] = "503"  # a number written as text lands where the number does
    records[4]["id"] = 504.0
    write_jsonl(tmp_path / "n.jsonl", records)
    prepare([tmp_path / "n.jsonl"], tmp_path / "d", tokenizer="char", val_fraction=0.3, seed=3, progress=False)
    assert set(split_documents(tmp_path / "d", "val")) == {r["text"] for i, r in enumerate(ROWS)
                                                    if is_val(b"id:%d" % (500 + i), 3, 0.3)}
    (tmp_path / "bad.jsonl").write_text('{"id": "1", "text": "a"}\n{"id": [2], "text": "b"}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:2: 'id' is \[2\], expected an integer or string page id"):
        prepare([tmp_path / "bad.jsonl"], tmp_path / "bad", progress=False)


# --------------------------------------------------------------------------------------------
# 2. --text-field


def test_text_field_reads_another_column_or_field(tmp_path):
    rows = [{"id": r["id"], "content": r["text"], "text": "not this"} for r in ROWS]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    write_jsonl(tmp_path / "c.jsonl", rows)
    for name in ("c.parquet", "c.jsonl"):
        m = prepare([tmp_path / name], tmp_path / f"d-{name}", tokenizer="char", text_field="content",
                    val_fraction=0.2, seed=1, progress=False)
        assert m["text_field"] == "content"
        got = all_documents(tmp_path / f"d-{name}")
        assert sorted(got) == sorted(r["text"] for r in ROWS)


def test_a_missing_text_field_is_one_line_naming_file_and_columns(tmp_path, capsys):
    pq.write_table(pa.Table.from_pylist(ROWS[:3]), tmp_path / "w.parquet")
    write_jsonl(tmp_path / "w.jsonl", ROWS[:3])
    with pytest.raises(UserError, match=r"w\.parquet: no 'content' column \(columns: id, url, title, text\)$"):
        prepare([tmp_path / "w.parquet"], tmp_path / "d", text_field="content", progress=False)
    with pytest.raises(UserError, match=r"w\.jsonl:1: no string 'content' field \(fields: id, url, title, text; "):
        prepare([tmp_path / "w.jsonl"], tmp_path / "d", text_field="content", progress=False)
    _save_to_disk_layout(tmp_path / "saved", pa.Table.from_pylist(ROWS[:3]), shards=1)
    with pytest.raises(UserError, match=r"data-00000-of-00001\.arrow: no 'content' column \(columns: id, url"):
        prepare([tmp_path / "saved"], tmp_path / "d", text_field="content", progress=False)
    # Through the CLI: one line, for the default field (and for --text-field once cli.py has it).
    pq.write_table(pa.table({"body": ["x"], "id": ["1"]}), tmp_path / "b.parquet")
    err = cli_error(capsys, ["prepare", str(tmp_path / "b.parquet"), "--out", str(tmp_path / "d"), "--quiet"])
    assert "b.parquet: no 'text' column (columns: body, id)" in err
    if _cli_has_text_field():
        err = cli_error(capsys, ["prepare", str(tmp_path / "w.parquet"), "--out", str(tmp_path / "d"),
                                  "--text-field", "content", "--quiet"])
        assert "w.parquet: no 'content' column (columns: id, url, title, text)" in err
    assert not (tmp_path / "d" / "manifest.json").exists()


# --------------------------------------------------------------------------------------------
# 3. Folders of datasets' save_to_disk


def test_save_to_disk_folders_and_arrow_files(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    _save_to_disk_layout(tmp_path / "dd" / "train", table.slice(0, 40), shards=3)
    _save_to_disk_layout(tmp_path / "dd" / "test", table.slice(40), shards=1)
    (tmp_path / "dd" / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    m = prepare([tmp_path / "dd"], tmp_path / "d", tokenizer="bytes", val_fraction=0.2, seed=11, progress=False)
    assert [Path(s["path"]).name for s in m["sources"]] == [
        "data-00000-of-00001.arrow", "data-00000-of-00003.arrow", "data-00001-of-00003.arrow",
        "data-00002-of-00003.arrow"]
    assert sorted(all_documents(tmp_path / "d")) == sorted(r["text"] for r in ROWS)
    # One Arrow file given directly, stream or file format.
    with pa.ipc.new_file(tmp_path / "f.arrow", table.schema) as w:
        w.write_table(table)
    m = prepare([tmp_path / "f.arrow"], tmp_path / "d2", tokenizer="char", val_fraction=0.2, seed=11, progress=False)
    assert m["splits"]["val"]["documents"] + m["splits"]["train"]["documents"] == len(ROWS)
    # What cannot be read says so in one line, with the Parquet way out.
    (tmp_path / "junk.arrow").write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match=r"junk\.arrow: not a readable Arrow .*dataset\.to_parquet"):
        prepare([tmp_path / "junk.arrow"], tmp_path / "d3", progress=False)
    (tmp_path / "dd" / "test" / "data-00000-of-00001.arrow").unlink()
    with pytest.raises(UserError, match=r"data-00000-of-00001\.arrow: listed in state\.json but missing"):
        prepare([tmp_path / "dd"], tmp_path / "d3", progress=False)


def test_a_real_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "saved"), num_shards=2)
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "same.parquet")
    for name in ("saved", "same.parquet"):
        prepare([tmp_path / name], tmp_path / f"d-{name}", tokenizer="char", val_fraction=0.2, seed=4, progress=False)
    assert set(split_documents(tmp_path / "d-saved", "val")) \
        == set(split_documents(tmp_path / "d-same.parquet", "val")) \
        == {r["text"] for r in ROWS if is_val(b"id:" + r["id"].encode(), 4, 0.2)}
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dict"))
    m = prepare([tmp_path / "dict"], tmp_path / "d-dict", tokenizer="char", val_fraction=0.2, seed=4, progress=False)
    assert sum(s["documents"] for s in m["sources"]) == len(ROWS)


# --------------------------------------------------------------------------------------------
# 4. One small .txt file just works


def _small_text(chars: int) -> str:
    """Real English-like text: topics of the Python language reference, up to `chars` characters."""
    out, size = [], 0
    for _, text in python_reference_documents():
        out.append(text)
        size += len(text)
        if size >= chars:
            break
    return "".join(out)[:chars]


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
def test_one_small_txt_file_prepares_with_the_default_command(tmp_path, tokenizer, capsys):
    text = _small_text(80_000)
    source = tmp_path / "input.txt"
    source.write_text(text, encoding="utf-8")
    main(["prepare", str(source), "--out", str(tmp_path / "d"), "--tokenizer", tokenizer, "--quiet"])
    assert "wrote" in capsys.readouterr().out
    m = load_manifest(tmp_path / "d")
    recut = m["recut"]
    assert recut["documents"] == 1 and recut["blocks"] >= 100 and 64 <= recut["block_chars"] <= 16384
    assert recut["message"].startswith(f"cut the text into {recut['blocks']:,} blocks of about")
    assert "1 document(s)" in recut["message"] and "\n" not in recut["message"]
    # val is near val_fraction, in bytes as in blocks
    total = m["splits"]["train"]["bytes"] + m["splits"]["val"]["bytes"]
    assert 0.05 <= m["splits"]["val"]["bytes"] / total <= 0.15
    assert m["splits"]["val"]["documents"] + m["splits"]["train"]["documents"] == recut["blocks"]
    # Every block on the side its own text says (the split stays a pure function of the block), in text
    # order, consecutive blocks of a side joined with no separator: the two sides together are the text.
    blocks = [b for b in cut_blocks(text, recut["block_chars"]) if b.strip()]
    assert len(blocks) == recut["blocks"]
    for split in ("train", "val"):
        pieces = split_documents(tmp_path / "d", split)
        mine = [b for b in blocks if is_val(b.encode(), 1337, 0.1) == (split == "val")]
        assert "".join(pieces) == "".join(mine)
        assert len(pieces) < len(mine) and all(p in text for p in pieces)


def test_small_texts_of_a_few_kb_and_several_files(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text(_small_text(4_000))
    m = prepare([tiny], tmp_path / "d", tokenizer="char", progress=False)
    assert m["recut"]["block_chars"] == prep.MIN_BLOCK_CHARS and m["splits"]["val"]["documents"] > 0
    # A few files: blocks never join across files.
    folder = tmp_path / "few"
    folder.mkdir()
    for i, (_, text) in enumerate(list(python_reference_documents())[:5]):
        (folder / f"{i}.txt").write_text(text)
    m = prepare([folder], tmp_path / "d2", tokenizer="bytes", progress=False)
    assert "5 document(s) (fewer than 20)" in m["recut"]["message"]
    size = m["recut"]["block_chars"]
    assert [s["documents"] for s in m["sources"]] == [sum(1 for b in cut_blocks(p.read_text(), size) if b.strip())
                                                      for p in sorted(folder.iterdir())]


def test_the_by_document_rule_is_kept_where_there_are_enough_documents(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    docs = [t for _, t in python_reference_documents()]
    for i, text in enumerate(docs):
        (folder / f"{i:03d}.txt").write_text(text)
    m = prepare([folder], tmp_path / "d", tokenizer="char", progress=False, val_fraction=0.2)
    assert m["recut"] is None
    assert sorted(split_documents(tmp_path / "d", "val")) == sorted(t for t in docs
                                                                    if t.strip() and is_val(t.encode(), 1337, 0.2))
    # An explicit --txt-docs keeps its rule, empty split and all.
    (tmp_path / "one.txt").write_text(_small_text(60_000))
    with pytest.raises(UserError, match=r"the (val|train) split is empty .*--txt-docs blocks or line"):
        prepare([tmp_path / "one.txt"], tmp_path / "d3", tokenizer="char", progress=False, txt_docs="file")


def test_a_big_corpus_is_never_recut(tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "RECUT_LIMIT_CHARS", 1000)
    (tmp_path / "one.txt").write_text(_small_text(20_000))
    with pytest.raises(UserError, match=r"split is empty"):
        prepare([tmp_path / "one.txt"], tmp_path / "d", tokenizer="char", progress=False)


def test_cut_blocks_keeps_the_text_and_ends_at_lines_or_words():
    text = "short line\n" * 50 + "word " * 2000 + "\n" + "x" * 1000 + "\nend"
    for size in (64, 256, 4096):
        blocks = cut_blocks(text, size)
        assert "".join(blocks) == text
        assert all(len(b) >= size for b in blocks[:-1])
        assert all(len(b) <= 3 * size or b.endswith("\n") for b in blocks)


def test_repetitive_text_keeps_a_working_document_split(tmp_path):
    """Equal blocks share a side (the key is their text), so cutting repetitive text can leave val empty;
    when the documents whole already give both splits, they are kept instead of failing."""
    from growgpt.prepare import prepare

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"{i}.txt").write_text(f"Document {i}. " + "The cat sat on the mat. " * 20, encoding="utf-8")
    m = prepare([str(docs)], tmp_path / "out", tokenizer="char", progress=False)
    assert m["recut"] is None
    assert m["splits"]["val"]["documents"] >= 1 and m["splits"]["train"]["documents"] >= 1
