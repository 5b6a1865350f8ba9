"""`torch.load` that never runs code, and what it refused, in a few words on one line.

Checkpoints (`checkpoint`) and Hugging Face PyTorch `.bin` weights (`model`) are both read with
`torch.load(weights_only=True)`: tensors, numbers, strings, lists and dicts, never code. torch's own
error text is never passed on whole, because for a file that is not plain data it advises retrying
with `weights_only=False`, which would run whatever code the file carries. Both readers import this
module, so neither needs the other.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch


def load_weights_only(path: str | Path) -> Any:
    """The plain data and tensors of a torch file, on the CPU; whatever the bytes make torch.load
    raise is passed on (see `load_error_reason`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's note on a foreign file's pickle protocol
        return torch.load(path, map_location="cpu", weights_only=True)


def is_weights_only_refusal(error: BaseException) -> bool:
    """Whether torch.load(weights_only=True) refused the file's pickle (code, or unknown opcodes)."""
    text = str(error).lower()
    return "weights only load failed" in text or "weightsunpickler" in text


def load_error_reason(error: BaseException) -> str:
    """torch.load's error in a few words on one line, never advising weights_only=False."""
    text = str(error)
    if is_weights_only_refusal(error):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        opcode = re.search(r"Unsupported operand (\d+)", text)
        if found:
            return f"it refers to Python code ({found.group(1)}), which growgpt never loads"
        if opcode:
            return f"unreadable pickle data (opcode {opcode.group(1)})"
        return "it holds objects other than tensors and plain data, which growgpt never loads"
    first = text.strip().splitlines()[0].split(". ")[0].strip() if text.strip() else ""
    return first if first and "weights_only" not in first else type(error).__name__
