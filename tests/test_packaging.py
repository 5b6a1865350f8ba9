"""Packaging: `uv sync --extra cpu` must resolve torch from PyTorch's CPU index (PyPI's Linux torch is the
CUDA build with 15 nvidia-* packages), and the two torch extras must never be locked together."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_uv_maps_the_cpu_and_cuda_extras_to_pytorch_indexes():
    project = tomllib.loads(PYPROJECT.read_text())
    extras = project["project"]["optional-dependencies"]
    assert any(r.startswith("torch") for r in extras["cpu"]) and any(r.startswith("torch") for r in extras["cu128"])
    uv = project["tool"]["uv"]
    indexes = {i["name"]: i for i in uv["index"]}
    by_extra = {s["extra"]: indexes[s["index"]] for s in uv["sources"]["torch"]}
    assert by_extra["cpu"]["url"] == "https://download.pytorch.org/whl/cpu"
    assert by_extra["cu128"]["url"] == "https://download.pytorch.org/whl/cu128"
    # explicit: only torch comes from these indexes, every other package from PyPI
    assert all(i.get("explicit") for i in indexes.values())
    assert [{"extra": "cpu"}, {"extra": "cu128"}] in uv["conflicts"]
    # torch itself stays an unpinned dependency: `make setup` installs the CPU wheel before it
    assert any(r.startswith("torch") for r in project["project"]["dependencies"])
