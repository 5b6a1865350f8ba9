"""Crash-safe writes: a reader sees the old file or the new one, never half of one, and no temporary
file outlives a write; a full disk or a permission problem is one line naming the file."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from growgpt.errors import UserError
from growgpt.fsutil import atomic_write, atomic_write_bytes, atomic_write_json, commit, hash_file, temp_path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_atomic_write_writes_the_content_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: (f.write(b"first "), f.write(b"second")))
    assert path.read_bytes() == b"first second"
    atomic_write_bytes(path, b"replaced")  # over an existing file
    assert path.read_bytes() == b"replaced"
    atomic_write_json(tmp_path / "m.json", {"name": "Zürich", "n": [1, 2]})
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"name": "Zürich", "n": [1, 2]} and "Zürich" in text and text.endswith("\n")
    assert _leftovers(tmp_path) == []


def test_a_write_that_raises_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt  # as if killed mid-way: not turned into a UserError

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []

    with pytest.raises(ValueError, match="bad value"):
        atomic_write(path, lambda f: (_ for _ in ()).throw(ValueError("bad value")))
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_a_full_disk_or_a_refused_write_is_one_line_naming_the_file(tmp_path, code):
    path = tmp_path / "big.bin"
    path.write_bytes(b"old")

    def fails(f):
        f.write(b"x")
        raise OSError(code, os.strerror(code))

    with pytest.raises(UserError) as e:
        atomic_write(path, fails)
    assert str(e.value) == f"cannot write {path}: {os.strerror(code)}" and "\n" not in str(e.value)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_failing_fsync_or_rename_is_a_user_error_too(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"

    def no_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(UserError, match=re.escape(f"cannot write {path}: Input/output error")):
        atomic_write_bytes(path, b"data")
    assert not path.exists() and _leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_a_user_error_naming_the_file(tmp_path):
    missing = tmp_path / "no" / "such" / "folder" / "f.json"
    with pytest.raises(UserError, match=re.escape(f"cannot write {missing}: No such file or directory")):
        atomic_write_json(missing, {})
    if os.geteuid() == 0:
        return  # root writes into a read-only folder anyway
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UserError, match=re.escape(f"cannot write {folder / 'f.bin'}: Permission denied")):
            atomic_write_bytes(folder / "f.bin", b"data")
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_temp_path_and_commit(tmp_path):
    path = tmp_path / "model.safetensors"
    tmp = temp_path(path)
    assert tmp.parent == path.parent and tmp.name == f"model.safetensors.tmp-{os.getpid()}"
    tmp.write_bytes(b"new")
    path.write_bytes(b"old")
    commit(tmp, path)
    assert path.read_bytes() == b"new" and not tmp.exists()


def test_hash_file_reads_the_whole_file_in_blocks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 12345)  # more than one 1 MB block, not a whole number of them
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert hash_file(path).hexdigest() == hashlib.sha1(data).hexdigest()  # sha1 unless told
    assert hash_file(path, "sha256").hexdigest() == hashlib.sha256(data).hexdigest()
    # Given a hashlib object, it goes on from there: a file hashed after what came before it.
    h = hashlib.sha256(b"prefix")
    assert hash_file(str(path), h=h) is h and h.hexdigest() == hashlib.sha256(b"prefix" + data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty", "sha256").hexdigest() == hashlib.sha256(b"").hexdigest()


def test_a_failed_checkpoint_write_names_the_checkpoint_and_keeps_the_previous_one(tmp_path, monkeypatch):
    import torch

    from growgpt import checkpoint

    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"model": {"w": torch.ones(2)}}, path)
    before = path.read_bytes()
    (tmp_path / "ckpt.pt.tmp-999999").write_bytes(b"left by a run that died mid-write")

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UserError) as e:
        checkpoint.atomic_save({"model": {}}, path)
    assert str(e.value) == (f"cannot write checkpoint {path}: {os.strerror(errno.ENOSPC)}; "
                            "the previous checkpoint is kept")
    assert path.read_bytes() == before and _leftovers(tmp_path) == []
