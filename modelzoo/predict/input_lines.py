"""The input of predict as a stream: numbered lines, in chunks of a bounded number of lines.

Nothing reads the whole input: lines are decoded one at a time (a bad byte is reported with its
line number) and handed out in chunks, so memory stays that of one chunk whatever the input's
size. Chunk ``k`` is always input lines ``k x N + 1 .. (k + 1) x N``, wherever the run started: a
continued run (``--resume``) then batches the rest of the input exactly as an uninterrupted run
did, and writes the same records. Documents (``--input_format documents``) are chunked whole
instead (:func:`document_chunks`), so that no sentence loses its neighbours at a chunk's edge.
"""

from __future__ import annotations

import sys
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional

from modelzoo.common.errors import DataFileError
from modelzoo.common.strings import remove_suffix
from modelzoo.heads.prediction import CHUNK_LINES, STDIN, NumberedLine

DOCUMENT_CHUNK_LIMIT = 100


def check_input(source: str) -> None:
    """``source`` is ``-``, a file, or a stream that can be read once (a pipe such as ``<(cmd)``); a folder
    or a missing path is one clear error."""
    if source == STDIN:
        return
    path = Path(source)
    if path.is_dir():
        raise DataFileError(path, None, "is a directory, not a text file (give one file, one sentence a line)")
    if not path.exists():
        raise DataFileError(path, None, "input file not found")


def count_lines(source: str) -> Optional[int]:
    """How many lines a file holds, as :func:`numbered_lines` numbers them (None for stdin or a pipe:
    unknown, and counting would consume what the run must read)."""
    if source == STDIN or not Path(source).is_file():
        return None
    lines, last = 0, b"\n"
    with open(source, "rb") as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def numbered_lines(source: str) -> Iterator[NumberedLine]:
    """``(number, text)`` for every line, numbered from 1, line end (``\\r`` included) removed."""
    if source == STDIN:
        yield from _decoded(sys.stdin.buffer, "stdin")
    else:
        with open(source, "rb") as stream:
            yield from _decoded(stream, source)


def _decoded(stream: BinaryIO, name: str) -> Iterator[NumberedLine]:
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataFileError(name, number, f"not UTF-8 text (byte {error.start + 1} of the line)") from None
        yield number, remove_suffix(remove_suffix(text, "\n"), "\r")


def chunks(lines: Iterator[NumberedLine], chunk_lines: int = CHUNK_LINES) -> Iterator[List[NumberedLine]]:
    """Consecutive lists of ``lines``, each ending at a multiple of ``chunk_lines`` (or at the input's end)."""
    lines = iter(lines)
    while first := next(lines, None):
        room = chunk_lines - (first[0] - 1) % chunk_lines - 1
        yield [first, *islice(lines, room)]


def document_chunks(lines: Iterator[NumberedLine], chunk_lines: int = CHUNK_LINES) -> Iterator[List[NumberedLine]]:
    """Consecutive lists of ``lines`` of at least ``chunk_lines`` lines, each ending at a blank line (the end
    of a document) or at the input's end; a document longer than ``DOCUMENT_CHUNK_LIMIT`` chunks is cut
    there anyway, so that memory stays bounded (its sentences at that cut lose their context across it)."""
    chunk: List[NumberedLine] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= chunk_lines and (not line[1].strip() or len(chunk) >= DOCUMENT_CHUNK_LIMIT * chunk_lines):
            yield chunk
            chunk = []
    if chunk:
        yield chunk
