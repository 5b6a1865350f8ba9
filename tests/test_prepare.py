"""prepare: every input kind, a split by whole documents that is stable, exact shards, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import growgpt.prepare as prep
from growgpt.errors import UserError
from growgpt.prepare import is_val, prepare
from growgpt.readers import BLOCK_CHARS
from growgpt.shards import ShardWriter, load_manifest
from growgpt.tokenizer import GPT2Tokenizer, from_spec

DOCS = [f"Document number {i}. " + f"Some words about topic {i}, and more words.\n" * (1 + i % 5) for i in range(60)]


def split_documents(data_dir: Path, split: str) -> list[str]:
    """Decode a split's shards back into its documents (each one follows a separator; a re-cut block
    that continues the one before it comes back joined to it). Other prepare tests use it too."""
    manifest = load_manifest(data_dir)
    tok = from_spec(manifest["tokenizer"])
    ids = np.concatenate([np.fromfile(data_dir / s["file"], dtype=manifest["dtype"])
                          for s in manifest["splits"][split]["shards"]])
    cuts = list(np.flatnonzero(ids == tok.separator_id)) + [len(ids)]
    assert cuts[0] == 0
    return [tok.decode(ids[a + 1:b].tolist()) for a, b in zip(cuts, cuts[1:])]


def all_documents(data_dir: Path) -> list[str]:
    """Every document of a dataset: train's, then val's."""
    return split_documents(data_dir, "train") + split_documents(data_dir, "val")


def _write_inputs(folder: Path) -> list[str]:
    """The same 60 documents as 20 .txt files, a .jsonl of 20 lines and a .parquet of 20 rows."""
    (folder / "txt").mkdir(parents=True)
    for i in range(20):
        (folder / "txt" / f"doc{i:02d}.txt").write_text(DOCS[i], encoding="utf-8")
    with open(folder / "more.jsonl", "w", encoding="utf-8") as f:
        for text in DOCS[20:40]:
            f.write(json.dumps({"text": text, "meta": 1}) + "\n")
    pq.write_table(pa.table({"text": DOCS[40:60]}), folder / "rest.parquet")
    return [str(folder / "txt"), str(folder / "more.jsonl"), str(folder / "rest.parquet")]


@pytest.mark.parametrize("tokenizer", ["gpt2", "char"])
def test_all_input_kinds_split_by_document(tmp_path, tokenizer):
    inputs = _write_inputs(tmp_path / "in")
    m = prepare(inputs, tmp_path / "data", tokenizer=tokenizer, val_fraction=0.25, seed=7, progress=False)
    train, val = split_documents(tmp_path / "data", "train"), split_documents(tmp_path / "data", "val")
    # Every document is whole on exactly one side, and the side is the hash's verdict.
    assert sorted(train + val) == sorted(DOCS)
    assert sorted(val) == sorted(d for d in DOCS if is_val(d.encode(), 7, 0.25))
    assert 5 <= len(val) <= 25
    assert m["dtype"] == "uint16" and m["splits"]["val"]["documents"] == len(val)
    assert [s["documents"] for s in m["sources"]] == [1] * 20 + [20, 20]
    assert m["tokenizer"]["name"] == tokenizer
    if tokenizer == "gpt2":
        assert m["vocab_size"] == 50257
        assert m["splits"]["train"]["tokens"] == sum(len(GPT2Tokenizer().encode(d)) + 1 for d in train)
    else:
        assert m["vocab_size"] == len(set("".join(DOCS))) + 1


def test_split_is_stable_when_inputs_grow_and_order_changes(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    for i in range(30):
        (a / f"{i}.txt").write_text(DOCS[i])
    b = tmp_path / "b"
    b.mkdir()
    for i in range(30, 60):
        (b / f"{i}.txt").write_text(DOCS[i])
    prepare([a], tmp_path / "d1", tokenizer="char", progress=False, val_fraction=0.3)
    prepare([b, a], tmp_path / "d2", tokenizer="char", progress=False, val_fraction=0.3)
    val1, val2 = set(split_documents(tmp_path / "d1", "val")), set(split_documents(tmp_path / "d2", "val"))
    assert val1 and val1 == {d for d in val2 if d in set(DOCS[:30])}


def test_parquet_page_ids_decide_the_split(tmp_path):
    table = pa.table({"id": list(range(100, 160)), "text": DOCS})
    pq.write_table(table, tmp_path / "part.parquet")
    prepare([tmp_path / "part.parquet"], tmp_path / "d", tokenizer="char", progress=False, val_fraction=0.3, seed=3)
    expected = {DOCS[i] for i in range(60) if is_val(b"id:%d" % (100 + i), 3, 0.3)}
    assert set(split_documents(tmp_path / "d", "val")) == expected


def test_shuffle_buffer_and_shards_do_not_change_the_content(tmp_path, monkeypatch):
    inputs = _write_inputs(tmp_path / "in")
    prepare(inputs, tmp_path / "big", tokenizer="gpt2", progress=False)
    monkeypatch.setattr(prep, "BUFFER_BYTES", 500)  # many small shuffle buffers
    m = prepare(inputs, tmp_path / "small", tokenizer="gpt2", progress=False, shard_tokens=500)
    assert len(m["splits"]["train"]["shards"]) >= 4
    assert all(s["tokens"] <= 500 for s in m["splits"]["train"]["shards"])
    for split in ("train", "val"):
        assert sorted(split_documents(tmp_path / "big", split)) == sorted(split_documents(tmp_path / "small", split))
    # Same seed, same inputs: byte-identical shards.
    again = prepare(inputs, tmp_path / "again", tokenizer="gpt2", progress=False, shard_tokens=500)
    assert again["splits"] == m["splits"]
    for shard in m["splits"]["train"]["shards"] + m["splits"]["val"]["shards"]:
        assert (tmp_path / "again" / shard["file"]).read_bytes() == (tmp_path / "small" / shard["file"]).read_bytes()


def test_txt_docs_modes(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(DOCS[i].replace("\n", " ") for i in range(60)) + "\n\n")
    m = prepare([lines], tmp_path / "lines", tokenizer="char", progress=False, txt_docs="line")
    assert m["sources"][0]["documents"] == 60
    # auto: one small file is cut into blocks, and the manifest says so; "file" keeps it whole: no val split.
    m = prepare([lines], tmp_path / "auto", tokenizer="char", progress=False)
    assert m["recut"]["documents"] == 1 and m["splits"]["val"]["documents"] > 0
    with pytest.raises(UserError, match=r"split is empty .* --txt-docs blocks or line"):
        prepare([lines], tmp_path / "file", tokenizer="char", progress=False, txt_docs="file")


def test_blocks_keep_the_whole_text(tmp_path):
    text = "".join(f"Line {i} of paragraph {i // 7}.\n" + ("\n" if i % 7 == 6 else "") for i in range(3000))
    (tmp_path / "t.txt").write_text(text)
    prepare([tmp_path / "t.txt"], tmp_path / "d", tokenizer="char", progress=False, txt_docs="blocks", val_fraction=0.3)
    docs = all_documents(tmp_path / "d")
    assert len(docs) > 3
    # Blocks are cut only after a blank line, and together they are the file.
    assert all(d.endswith("\n\n") for d in docs if not text.endswith(d))
    assert sorted(docs) == sorted(_cut_blocks(text))


def _cut_blocks(text: str) -> list[str]:
    out, cur = [], ""
    for line in text.splitlines(keepends=True):
        cur += line
        if not line.strip() and len(cur) >= BLOCK_CHARS:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


def test_large_char_vocabulary_uses_uint32(tmp_path):
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 21000)] + [chr(c) for c in range(0xAC00, 0xAC00 + 11000)] \
        + [chr(c) for c in range(0x20000, 0x20000 + 34000)]
    docs = [(f"mem:{i}", "".join(chars[i::50])) for i in range(50)]
    m = prepare([], tmp_path / "d", tokenizer="char", documents=docs, progress=False, val_fraction=0.3)
    assert m["vocab_size"] == 66001 and m["dtype"] == "uint32"
    got = all_documents(tmp_path / "d")
    assert sorted(got) == sorted(t for _, t in docs)


def test_non_utf8_names_file_and_offset_and_replace_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i}.txt").write_text(DOCS[i])
    bad = folder / "5.txt"
    bad.write_bytes(b"good text here " + b"\xff\xfe" + b" more")
    with pytest.raises(UserError, match=r"5\.txt: not UTF-8 at byte offset 15 .*--errors replace"):
        prepare([folder], tmp_path / "d", tokenizer="char", progress=False, val_fraction=0.3)
    assert not (tmp_path / "d" / "manifest.json").exists()
    (folder / "lines.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "bad \xc3"}\n')
    with pytest.raises(UserError, match=r"lines\.jsonl: not UTF-8 at byte offset 29"):
        prepare([folder / "lines.jsonl"], tmp_path / "d", tokenizer="char", progress=False)
    prepare([folder], tmp_path / "d", tokenizer="char", progress=False, val_fraction=0.3, errors="replace")
    assert any("\ufffd" in d for d in all_documents(tmp_path / "d"))


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, r"missing: no such file or folder"),
    (lambda p: p.mkdir(), r"missing: no \.txt, \.jsonl or \.parquet files in this folder"),
    (lambda p: p.write_text("x"), r"missing: not a \.txt, \.jsonl or \.parquet file"),
])
def test_missing_or_unusable_input(tmp_path, setup, message):
    target = tmp_path / "missing"
    setup(target)
    if target.is_file():
        target.rename(tmp_path / "missing")
        target = tmp_path / "missing"
    with pytest.raises(UserError, match=message):
        prepare([target], tmp_path / "d", progress=False)


def test_bad_records_and_options(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "fine"}\n{"title": "no text"}\n')
    with pytest.raises(UserError, match=r"a\.jsonl:2: no string 'text' field"):
        prepare([tmp_path / "a.jsonl"], tmp_path / "d", progress=False)
    (tmp_path / "b.jsonl").write_text('{"text": "fine"}\n{oops\n')
    with pytest.raises(UserError, match=r"b\.jsonl:2: not valid JSON"):
        prepare([tmp_path / "b.jsonl"], tmp_path / "d", progress=False)
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "c.parquet")
    with pytest.raises(UserError, match=r"c\.parquet: no 'text' column \(columns: body\)"):
        prepare([tmp_path / "c.parquet"], tmp_path / "d", progress=False)
    (tmp_path / "d.parquet").write_text("not parquet")
    with pytest.raises(UserError, match=r"d\.parquet: not a readable Parquet file"):
        prepare([tmp_path / "d.parquet"], tmp_path / "d", progress=False)
    (tmp_path / "empty.txt").write_text("  \n\n")
    with pytest.raises(UserError, match="no input holds any text"):
        prepare([tmp_path / "empty.txt"], tmp_path / "d", progress=False)
    with pytest.raises(UserError, match="--val-fraction must be between 0 and 1"):
        prepare([tmp_path / "a.jsonl"], tmp_path / "d", val_fraction=1.0, progress=False)
    with pytest.raises(UserError, match="no manifest.json .*growgpt prepare"):
        load_manifest(tmp_path / "nowhere")


def test_interrupted_prepare_keeps_the_previous_dataset(tmp_path, monkeypatch):
    inputs = _write_inputs(tmp_path / "in")
    before = prepare(inputs, tmp_path / "d", tokenizer="gpt2", progress=False)
    shard = (tmp_path / "d" / "train-00000.bin").read_bytes()

    calls = {"n": 0}
    real = ShardWriter.write

    def dies(self, tokens):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt  # as if killed mid-way
        return real(self, tokens)

    monkeypatch.setattr(ShardWriter, "write", dies)
    with pytest.raises(KeyboardInterrupt):
        prepare(inputs, tmp_path / "d", tokenizer="gpt2", progress=False, seed=99)
    assert load_manifest(tmp_path / "d")["splits"] == before["splits"]
    assert (tmp_path / "d" / "train-00000.bin").read_bytes() == shard
    assert [p.name for p in (tmp_path / "d").iterdir() if p.name.startswith(".")] == []
