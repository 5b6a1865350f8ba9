"""Input files to documents: what `growgpt prepare` reads, and what a document of each kind is.

Inputs are .txt, .jsonl (one JSON object a line, with a `text` field), .parquet and .arrow files (a
`text` column: what `extract` writes, or a Hugging Face dataset's files), folders of them (searched
recursively, in sorted order), and `datasets` save_to_disk folders (exactly the files state.json
lists). A .jsonl line or a Parquet/Arrow row is one document; a .txt file is one or many (`txt_docs`).
Each document carries its split key: its page id when it has one ("id:" + the decimal of an integer
or integral float, or + a string's UTF-8 bytes: "123" and 123 land alike), else its text. Everything is
streamed: nothing holds more than one document (or one record batch) of a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from growgpt.errors import UserError
from growgpt.tokenizer import LONE_SURROGATE

SUFFIXES = (".txt", ".jsonl", ".parquet", ".arrow")
TXT_DOCS = ("auto", "file", "blocks", "line")
AUTO_FILE_LIMIT = 1 << 20
BLOCK_CHARS = 16_384
SAVE_TO_DISK_STATE = "state.json"  # with dataset_info.json and data-*.arrow: datasets.Dataset.save_to_disk


@dataclass
class Source:
    path: Path
    bytes: int
    documents: int = 0


@dataclass
class Document:
    source: int  # index into the sources list
    key: bytes  # what the split hash is taken of
    text: str
    # Re-cut blocks only: (number of the document cut, block number in it). A block written right after
    # the block before it in the same split continues it with no separator in between.
    run: tuple[int, int] | None = None

    @classmethod
    def of_text(cls, source: int, text: str, run: tuple[int, int] | None = None) -> Document:
        """A document keyed by its text (no page id): exact duplicates land on the same side."""
        return cls(source, text.encode("utf-8", "surrogatepass"), text, run)


def find_sources(inputs: Iterable[str | Path]) -> list[Source]:
    """Expand files and folders into the list of input files, in a stable order."""
    sources: list[Source] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # (extract's lists of dropped pages are no text to train on)
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and (p.suffix.lower() in SUFFIXES or p.name == SAVE_TO_DISK_STATE)
                           and not p.name.endswith(".dropped.parquet")
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            found = _save_to_disk_files(found)
            if not found:
                raise UserError(f"{path}: no .txt, .jsonl or .parquet files in this folder "
                                "(nor .arrow files of datasets' save_to_disk)")
            sources.extend(Source(p, p.stat().st_size) for p in found)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise UserError(f"{path}: not a .txt, .jsonl or .parquet file "
                                "(nor an .arrow file of datasets' save_to_disk)")
            sources.append(Source(path, path.stat().st_size))
        else:
            raise UserError(f"{path}: no such file or folder")
    return sources


def _save_to_disk_files(found: list[Path]) -> list[Path]:
    """`found` (sorted input files and state.json files) with the .arrow files of each save_to_disk
    folder (one holding state.json) replaced by exactly the data files its state.json lists, in its
    order (not stray cache-*.arrow files), where its state.json sorts."""
    states = {p.parent for p in found if p.name == SAVE_TO_DISK_STATE and (p.parent / "dataset_info.json").is_file()}
    out: list[Path] = []
    for p in found:
        if p.parent not in states:
            if p.name != SAVE_TO_DISK_STATE:  # (another program's state.json is no input)
                out.append(p)
            continue
        if p.name != SAVE_TO_DISK_STATE:
            if p.suffix.lower() != ".arrow":
                out.append(p)
            continue  # an .arrow file next to a save_to_disk state.json: only what it lists is read
        folder = p.parent
        state_path = p
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            names = [entry["filename"] for entry in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{state_path}: not a readable state.json of datasets' save_to_disk ({e}); "
                            "write the dataset as Parquet instead: dataset.to_parquet(\"data.parquet\")") from None
        files = [folder / name for name in names]
        for f in files:
            if not f.is_file():
                raise UserError(f"{f}: listed in {state_path.name} but missing; save the dataset again, "
                                "or write it as Parquet: dataset.to_parquet(\"data.parquet\")")
        out.extend(files)
    return out


def _decode(data: bytes, path: Path, offset: int, errors: str) -> str:
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 at byte offset {offset + e.start} "
                        "(use --errors replace to replace bad bytes and go on)") from None


def _open_input(path: Path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None


def _read_txt(source: Source, txt_docs: str, errors: str) -> Iterator[str]:
    """The documents of a .txt file, by `txt_docs`: "file", the whole file (a folder of articles or
    books); "blocks", runs of whole paragraphs (blank-line separated) of about BLOCK_CHARS characters,
    for one big file such as Shakespeare: fine enough to give a val set, coarse enough that train and
    val do not share most of their context; "line", every non-empty line (one document a line);
    "auto", "file" up to AUTO_FILE_LIMIT bytes and "blocks" above (and prepare may re-cut a small corpus)."""
    mode = txt_docs
    if mode == "auto":
        mode = "file" if source.bytes <= AUTO_FILE_LIMIT else "blocks"
    with _open_input(source.path) as f:
        if mode == "file":
            yield _decode(f.read(), source.path, 0, errors)
            return
        offset = 0
        block: list[str] = []
        block_chars = 0
        for raw in f:  # binary lines: bounded by the longest line, offsets exact for errors
            line = _decode(raw, source.path, offset, errors)
            offset += len(raw)
            if mode == "line":
                if line.strip():
                    yield line.rstrip("\r\n")
                continue
            block.append(line)
            block_chars += len(line)
            if not line.strip() and block_chars >= BLOCK_CHARS:  # a paragraph ends here
                yield "".join(block)
                block, block_chars = [], 0
        if block:
            yield "".join(block)


def _fields(names, limit: int = 20) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "") or "none"


def _json_id_key(value, where: str) -> bytes | None:
    """The split key of a JSONL record's `id` (None: no id, the text decides); the same keys as Parquet's."""
    if value is None:
        return None
    if isinstance(value, str):
        return b"id:" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, int) and not isinstance(value, bool):
        return b"id:%d" % value
    if isinstance(value, float) and value.is_integer():
        return b"id:%d" % int(value)
    raise UserError(f"{where}: 'id' is {value!r}, expected an integer or string page id")


def _read_jsonl(source: Source, errors: str, text_field: str = "text") -> Iterator[tuple[bytes | None, str]]:
    offset = 0
    with _open_input(source.path) as f:
        for number, raw in enumerate(f, 1):
            line = _decode(raw, source.path, offset, errors)
            offset += len(raw)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{source.path}:{number}: not valid JSON ({e.msg})") from None
            except RecursionError:
                raise UserError(f"{source.path}:{number}: not valid JSON (nested too deeply)") from None
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                if not isinstance(record, dict):
                    got = f" (the line holds a JSON {type(record).__name__}, not an object)"
                elif text_field in record:
                    got = f" ('{text_field}' is {type(text).__name__})"
                else:
                    got = f" (fields: {_fields(record)}; choose one with --text-field)"
                raise UserError(f"{source.path}:{number}: no string '{text_field}' field{got}")
            if "\\u" in line:  # a lone surrogate can only come from a \u escape: skip the search otherwise
                text = check_surrogates(text, f"{source.path}:{number}", errors)
            yield _json_id_key(record.get("id"), f"{source.path}:{number}"), text


def check_surrogates(text: str, where: str, errors: str) -> str:
    """`text` with no lone surrogates: an error naming `where`, or (errors="replace") U+FFFD for each."""
    found = LONE_SURROGATE.search(text)
    if found is None:
        return text
    if errors == "replace":
        return LONE_SURROGATE.sub("\ufffd", text)
    raise UserError(f"{where}: 'text' holds a lone surrogate {found.group()!r} at character {found.start()}, "
                    "which is not Unicode text (use --errors replace to replace it and go on)")


def _value_kind(arrow_type) -> str | None:
    """What a Parquet column's values are to prepare: "str", "bytes", "int", "float" or None (anything else)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    is_string_view = getattr(pa.types, "is_string_view", lambda _: False)  # pyarrow >= 16
    is_binary_view = getattr(pa.types, "is_binary_view", lambda _: False)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or is_string_view(t):
        return "str"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or is_binary_view(t):
        return "bytes"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    return None


def _as_bytes(column) -> list[bytes | None]:
    """A string or binary column's values as raw bytes, without decoding (or validating) UTF-8."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.cast(pa.large_binary()).to_pylist()


def _parquet_texts(column, source: Source, first_row: int, errors: str, text_field: str = "text") -> list[str | None]:
    try:
        return column.to_pylist()
    except UnicodeDecodeError:  # Parquet does not check that a string column holds UTF-8
        pass
    texts: list[str | None] = []
    for row, data in enumerate(_as_bytes(column), first_row):
        if data is None:
            texts.append(None)
            continue
        try:
            texts.append(data.decode("utf-8", errors=errors))
        except UnicodeDecodeError as e:
            raise UserError(f"{source.path}: row {row} (from 0): '{text_field}' is not UTF-8 at byte {e.start} "
                            "(use --errors replace to replace bad bytes and go on)") from None
    return texts


def _id_keys(column, kind: str, source: Source, first_row: int) -> list[bytes | None]:
    """The split keys of a batch's page ids (None: no id, the text decides)."""
    if kind in ("str", "bytes"):
        return [None if v is None else b"id:" + v for v in _as_bytes(column)]  # str: its UTF-8 bytes
    keys: list[bytes | None] = []
    for row, page_id in enumerate(column.to_pylist(), first_row):
        if kind == "float" and page_id is not None and not page_id.is_integer():
            raise UserError(f"{source.path}: row {row} (from 0): id {page_id!r} is not a whole number")
        keys.append(None if page_id is None else b"id:%d" % page_id)  # an integral float as its integer
    return keys


def _open_columnar(source: Source):
    """(kind, schema, batches(columns)) of a Parquet file or an Arrow IPC file (stream or file format:
    datasets' save_to_disk writes streams), read a record batch at a time."""
    import pyarrow as pa

    if source.path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(source.path)
        except Exception as e:  # pyarrow raises several types for a file that is not Parquet
            raise UserError(f"{source.path}: not a readable Parquet file ({e})") from None
        return "Parquet", pf.schema_arrow, lambda columns: pf.iter_batches(batch_size=1024, columns=columns)
    hint = "; write the dataset as Parquet instead: dataset.to_parquet(\"data.parquet\")"
    try:
        data = pa.memory_map(str(source.path))
    except OSError as e:
        raise UserError(f"{source.path}: cannot read: {e.strerror or e}") from None
    try:
        reader = pa.ipc.open_stream(data)
        batches = iter(reader)
    except (OSError, pa.ArrowException):
        try:
            data.seek(0)
            file_reader = pa.ipc.open_file(data)
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"{source.path}: not a readable Arrow stream or file ({e}){hint}") from None
        reader = file_reader
        batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))

    def select(columns):
        for batch in batches:
            yield pa.record_batch([batch.column(c) for c in columns], names=columns)

    return "Arrow", reader.schema, select


def _read_columnar(source: Source, errors: str, text_field: str = "text") -> Iterator[tuple[bytes | None, str]]:
    """(split key or None, text) of every row of a Parquet or Arrow file with a text column."""
    import pyarrow as pa

    kind, schema, batches = _open_columnar(source)
    if text_field not in schema.names:
        raise UserError(f"{source.path}: no '{text_field}' column (columns: {_fields(schema.names)})"
                        + ("" if text_field != "text" else "; choose one with --text-field"))
    for column, allowed in ((text_field, ("str",)), ("id", ("int", "float", "str", "bytes"))):
        if column in schema.names and _value_kind(schema.field(column).type) not in allowed:
            expected = "strings" if column == text_field else "integer or string page ids"
            raise UserError(f"{source.path}: column '{column}' holds {schema.field(column).type}, "
                            f"expected {expected}")
    id_kind = _value_kind(schema.field("id").type) if "id" in schema.names and text_field != "id" else None
    first_row = 0
    try:
        for batch in batches(["id", text_field] if id_kind else [text_field]):
            texts = _parquet_texts(batch.column(text_field), source, first_row, errors, text_field)
            keys = (_id_keys(batch.column("id"), id_kind, source, first_row) if id_kind
                    else [None] * len(texts))
            first_row += len(texts)
            for key, text in zip(keys, texts):
                if text is not None:  # a null text is no document
                    yield key, text
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{source.path}: not a readable {kind} file at row {first_row} ({e})") from None


def iter_documents(sources: list[Source], txt_docs: str = "auto", errors: str = "strict",
                   on_source_done=None, text_field: str = "text") -> Iterator[Document]:
    """Every non-empty document of every source, in input order. `text_field`: the JSONL field or
    Parquet/Arrow column that holds the text."""
    for index, source in enumerate(sources):
        suffix = source.path.suffix.lower()
        if suffix in (".parquet", ".arrow"):
            items = _read_columnar(source, errors, text_field)
        elif suffix == ".jsonl":
            items = _read_jsonl(source, errors, text_field)
        else:
            items = ((None, t) for t in _read_txt(source, txt_docs, errors))
        for key, text in items:
            if text.strip():
                source.documents += 1
                yield Document(index, key, text) if key is not None else Document.of_text(index, text)
        if on_source_done:
            on_source_done(source)
