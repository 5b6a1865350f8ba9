"""The small built-in corpus the demo trains on when no other text is given.

CPython ships its language reference as plain text for `help()` (`pydoc_data.topics`): about 80
documents, ~465 KB of real English prose with code, on every machine that has Python. That is enough
for a tiny model to visibly learn in a minute on a CPU, with no download and nothing to vendor.
"""

from __future__ import annotations

from typing import Iterator

from growgpt.errors import UserError


def python_reference_documents() -> Iterator[tuple[str, str]]:
    """(source name, text) for each topic of the Python language reference."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise UserError("the built-in corpus needs the standard library's pydoc_data module, which this "
                        "Python lacks; give your own text files instead") from None
    for name in sorted(topics):
        yield f"builtin:python-reference/{name}", topics[name]
