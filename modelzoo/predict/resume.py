"""``--resume``: continue an interrupted predict run from what its output file already holds.

Predict writes and flushes each chunk's records in input order, so a killed run leaves whole
records followed, at worst, by part of one (a kill in the middle of a write). Continuing keeps
the whole records, cuts the partial one, and skips the input lines they cover: for JSON lines,
every line up to the last record's ``line``; for CoNLL columns (which hold no line numbers), as
many lines holding words as there are complete sentence blocks. Chunks are aligned to input line
numbers (:mod:`modelzoo.predict.input_lines`), so the continued file equals an uninterrupted run's.

A continued output must be the same run's, or two models' (or two inputs') records would end up
mixed in one file. So a run writes, beside its output, ``OUTPUT.run.json``: what made it (the
checkpoint's path, size and SHA-256, the engine, the head and every option that changes a record).
A resume whose run differs, or finds no such file, is refused; and every kept record is checked
against the input line it claims to come from (:meth:`modelzoo.heads.prediction.LinePredictor.
made_from`) before anything is cut or appended.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional

from modelzoo.common.errors import DataFileError
from modelzoo.heads.prediction import NumberedLine

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


RUN_FILE_SUFFIX = ".run.json"
# The options whose change changes a record (the output and resume flags themselves do not).
RECORD_OPTIONS = ("output_format", "pretokenized", "quantize", "engine", "pairs", "min_entity_score", "conll_scores",
                  "chunk_lines")


def run_file(output: Path) -> Path:
    return output.with_name(output.name + RUN_FILE_SUFFIX)


def run_identity(options: Any, checkpoint: Path, head: str) -> Dict[str, Any]:
    """What makes a predict run's records what they are: the weights (hashed, so a file replaced in
    place is noticed), the head and the options that change a record."""
    digest = hashlib.sha256()
    with open(checkpoint, "rb") if checkpoint.is_file() else _folder_stream(checkpoint) as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {
        "checkpoint": str(checkpoint.resolve()), "checkpoint_sha256": digest.hexdigest(), "head": head,
        **{name: getattr(options, name) for name in RECORD_OPTIONS},
    }


def _folder_stream(folder: Path) -> IO[bytes]:
    """An export folder's model files, hashed in name order (``--engine onnxruntime`` takes a folder)."""
    return io.BytesIO(b"".join(path.read_bytes() for path in sorted(folder.glob("*.onnx"))))


def check_same_run(output: Path, identity: Dict[str, Any]) -> None:
    """Refuse to continue ``output`` unless the run that wrote it had ``identity``."""
    record = run_file(output)
    if not record.is_file():
        raise DataFileError(
            output, None, f"--resume: no {record.name} beside it, so what made it is unknown; predict it afresh"
        )
    made_by = json.loads(record.read_text(encoding="utf-8"))
    changed = [name for name in identity if made_by.get(name) != identity[name]]
    if changed:
        differences = "; ".join(f"{name} {made_by.get(name)!r} then, {identity[name]!r} now" for name in changed)
        raise DataFileError(output, None, f"--resume: written by another run ({differences}); predict it afresh")


def records_of(path: Path, continuation: Continuation) -> Iterator[str]:
    """The whole records ``path`` keeps, as written: a JSON line each, or a CoNLL block each."""
    with open(path, encoding="utf-8", newline="") as stream:
        text_left = continuation.keep_bytes
        block: List[str] = []
        for line in stream:
            text_left -= len(line.encode("utf-8"))
            if text_left < 0:
                return
            if continuation.sentences is None:
                yield line
                continue
            block.append(line)
            if line == "\n":
                yield "".join(block)
                block = []


def skip_done(
    lines: Iterator[NumberedLine], kept: Iterator[str], holds_record: Callable[[str], bool],
    made_from: Callable[[str, int, str], bool], output: Path,
) -> int:
    """Advance ``lines`` past those the ``kept`` records cover, checking that each record was made from
    its line; returns the number of the last input line skipped."""
    last = 0
    for number, record in enumerate(kept, start=1):
        line_number, line = next(lines, (None, None))
        while line is not None and not holds_record(line):
            line_number, line = next(lines, (None, None))
        if line is None:
            raise DataFileError(output, None, f"--resume: record {number} has no input line left: not this input's output")
        try:
            matches = made_from(record, line_number, line)
        except ValueError:  # not a record this run writes (not JSON, for one)
            matches = False
        if not matches:
            raise DataFileError(
                output, None, f"--resume: record {number} was not made from input line {line_number} "
                "(another input's output?); predict it afresh"
            )
        last = line_number
    return last
