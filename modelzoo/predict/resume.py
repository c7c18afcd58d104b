"""``--resume``: continue an interrupted predict run from what its output file already holds.

Predict writes and flushes each chunk's records in input order, so a killed run leaves whole
records followed, at worst, by part of one (a kill in the middle of a write). Continuing keeps
the whole records, cuts the partial one, and skips the input lines they cover: for JSON lines,
every line up to the last record's ``line``; for CoNLL columns (which hold no line numbers), as
many lines holding words as there are complete sentence blocks. The run must use the same input
and options as the interrupted one; chunks are aligned to input line numbers
(:mod:`modelzoo.predict.input_lines`), so the continued file equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from modelzoo.common.errors import DataFileError

_BLOCK = 1 << 16


@dataclass(frozen=True)
class Continuation:
    """Where to go on: the byte length of the whole records, and what they cover.

    ``last_line``: the input line of the last JSON record (0 for none); ``sentences``: the complete
    CoNLL blocks. Exactly one of them is set.
    """

    keep_bytes: int
    last_line: Optional[int] = None
    sentences: Optional[int] = None


def jsonl_continuation(path: Path) -> Continuation:
    """The last whole line of ``path`` (it ends in a newline) must be a predict record: its ``line`` says where to go on."""
    keep = _end_of_last_line(path)
    if keep == 0:
        return Continuation(0, last_line=0)
    start = _end_of_last_line(path, before=keep - 1)
    with open(path, "rb") as stream:
        stream.seek(start)
        raw = stream.read(keep - start)
    try:
        record = json.loads(raw)
        last_line = record["line"]
    except (ValueError, KeyError, TypeError):
        raise DataFileError(path, None, "--resume: the last whole line is not a predict JSON record") from None
    if not isinstance(last_line, int):
        raise DataFileError(path, None, "--resume: the last record's 'line' is not a line number")
    return Continuation(keep, last_line=last_line)


def conll_continuation(path: Path) -> Continuation:
    """Complete CoNLL blocks end in a blank line (``\\n\\n``); count them and keep up to the last."""
    sentences, keep, offset, previous = 0, 0, 0, b""
    with open(path, "rb") as stream:
        while block := stream.read(_BLOCK):
            joined = previous + block
            ends = joined.count(b"\n\n")
            if ends:
                sentences += ends
                keep = offset - len(previous) + joined.rindex(b"\n\n") + 2
            offset += len(block)
            previous = block[-1:]
    return Continuation(keep, sentences=sentences)


def _end_of_last_line(path: Path, before: Optional[int] = None) -> int:
    """The offset just after the last newline in ``path[:before]`` (0 when there is none), read backwards."""
    end = os.path.getsize(path) if before is None else before
    with open(path, "rb") as stream:
        while end > 0:
            start = max(0, end - _BLOCK)
            stream.seek(start)
            position = stream.read(end - start).rfind(b"\n")
            if position >= 0:
                return start + position + 1
            end = start
    return 0


def cut_to(path: Path, continuation: Continuation) -> None:
    """Drop a trailing partial record (after a kill mid-write), keeping the whole ones."""
    if os.path.getsize(path) != continuation.keep_bytes:
        os.truncate(path, continuation.keep_bytes)
