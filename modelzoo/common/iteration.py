"""``zip(..., strict=True)`` for the Pythons that lack it.

The library runs on Python 3.8 (the Poplar SDK's, PYTHON-SETUP.md), whose ``zip`` has no ``strict``
(added in 3.10). Pairing things that must line up (words and their tags, keys and inputs) goes
through :func:`zip_strict`, which refuses a length mismatch instead of silently dropping the tail.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, Tuple

_EXHAUSTED = object()


def zip_strict(*iterables: Iterable[Any]) -> Iterator[Tuple[Any, ...]]:
    """``zip(*iterables, strict=True)``: the same tuples, lazily; ValueError naming the lengths if they differ."""
    rows = itertools.zip_longest(*iterables, fillvalue=_EXHAUSTED)
    for count, row in enumerate(rows):
        if any(item is _EXHAUSTED for item in row):
            lengths = [count] * len(row)
            for later in itertools.chain([row], rows):
                lengths = [length + (item is not _EXHAUSTED) for length, item in zip(lengths, later)]
            raise ValueError(f"zip_strict: arguments of different lengths ({', '.join(map(str, lengths))})")
        yield row
