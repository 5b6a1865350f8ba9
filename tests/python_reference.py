"""A small real corpus every machine with Python has, for tests and benches that need text.

CPython ships its language reference as plain text for `help()` (`pydoc_data.topics`): about 80
documents, ~465 KB of real English prose with code, on every machine that has Python. That is enough
for a tiny model to visibly learn in a minute on a CPU, with no download and nothing to vendor.
"""

from __future__ import annotations

from collections.abc import Iterator


def python_reference_documents() -> Iterator[tuple[str, str]]:
    """(source name, text) for each topic of the Python language reference."""
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield f"builtin:python-reference/{name}", topics[name]
