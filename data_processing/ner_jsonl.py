"""JSON lines with character spans (doccano, spaCy-style) -> span records, one line at a time.

One record a line: ``{"text": ..., "label": [[start, end, "PER"], ...]}`` as doccano exports
sequence labelling, or the spans under ``labels``, ``entities`` or ``spans``, each a
``[start, end, label]`` triple or an object with ``start``/``end`` (or doccano's
``start_offset``/``end_offset``) and ``label``. Offsets count characters (code points) of ``text``,
end excluded. Other keys are ignored. The file is read as a stream, never whole, so its size does
not bound what can be converted; a problem names the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, List

from data_processing.ner_alignment import CharSpan, SpanRecord
from modelzoo.common.errors import DataFileError

TEXT_KEY = "text"
SPAN_LIST_KEYS = ("label", "labels", "entities", "spans")
START_KEYS, END_KEYS = ("start", "start_offset"), ("end", "end_offset")


def read_jsonl_records(path: Path) -> Iterator[SpanRecord]:
    """The records of ``path`` in order (blank lines skipped); DataFileError naming the line of a bad one."""
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataFileError(path, number, f"not UTF-8 (byte {error.start + 1} of the line)") from None
            if line.strip():
                yield record_of_line(path, number, line)


def record_of_line(path: Path, number: int, line: str) -> SpanRecord:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFileError(path, number, f"not a JSON object: {error.msg} (column {error.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get(TEXT_KEY), str):
        raise DataFileError(path, number, f"expected a JSON object with a string {TEXT_KEY!r}")
    key = next((key for key in SPAN_LIST_KEYS if key in record), None)
    if key is None:
        raise DataFileError(
            path, number, f"no spans: expected one of {', '.join(SPAN_LIST_KEYS)} (an empty list for a text without entities)"
        )
    items = record[key]
    if not isinstance(items, list):
        raise DataFileError(path, number, f"{key!r} must be a list of spans")
    spans = [span_of_item(path, number, f"span {index + 1}", item) for index, item in enumerate(items)]
    return SpanRecord(path, number, record[TEXT_KEY], spans)


def span_of_item(path: Path, number: int, name: str, item: Any) -> CharSpan:
    """``[start, end, label]`` or ``{"start", "end", "label"}`` (doccano's ``*_offset`` keys too)."""
    values: List[Any]
    if isinstance(item, list) and len(item) == 3:
        values = item
    elif isinstance(item, dict):
        start_key = next((key for key in START_KEYS if key in item), START_KEYS[0])
        end_key = next((key for key in END_KEYS if key in item), END_KEYS[0])
        values = [item.get(start_key), item.get(end_key), item.get("label")]
    else:
        raise DataFileError(path, number, f"{name}: expected [start, end, label] or an object with start, end, label")
    start, end, label = values
    if not all(isinstance(offset, int) and not isinstance(offset, bool) for offset in (start, end)):
        raise DataFileError(path, number, f"{name}: start and end must be integers, got {start!r} and {end!r}")
    if not isinstance(label, str):
        raise DataFileError(path, number, f"{name}: the label must be a string, got {label!r}")
    return CharSpan(start, end, label, name)
