"""Crash-safe file writes shared by every step that writes to the workspace.

A file is written to a temporary name in the same folder, flushed and fsynced, then renamed over
the final name (`os.replace` is atomic on POSIX and Windows); the folder is fsynced so the rename
itself survives a power cut. A reader therefore sees the old file or the new one, never half of one.
A full disk or a permission problem becomes a one-line UserError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from growgpt.errors import UserError


def fsync_dir(folder: str | Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def hash_file(path: str | Path, algo: str = "sha1", h=None):
    """The hashlib object `h` (default: a new `algo` one) updated with the bytes of `path`, read
    1 MB at a time."""
    h = h or hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h


def temp_path(path: Path) -> Path:
    """The temporary name `path` is written under; `*.tmp-PID` files are never read as results."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def commit(tmp: Path, path: Path) -> None:
    """Rename a finished, closed temporary file into place and make the rename durable."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], what: str = "") -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it and rename it over `path`. On any
    error the temporary file is removed and `path` is left as it was; an OSError (full disk, no
    permission) becomes a one-line UserError naming `path` (and `what` it is, e.g. "checkpoint").
    Writers that can only write to a file name (safetensors) use `temp_path` and `commit` directly."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        commit(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        named = f"{what} {path}" if what else str(path)
        raise UserError(f"cannot write {named}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
