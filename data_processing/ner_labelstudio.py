"""Label Studio's JSON export (a list of tasks) -> span records, one a task.

A task holds its text under ``data.<key>`` (``--text_key``; by default the only string field of
``data``) and its annotations under ``annotations[].result[]``: the ``labels`` results
(``value: {start, end, text, labels}``) are the spans. The latest annotation that was not cancelled
is read (the greatest ``updated_at`` or ``created_at``, the last one listed on a tie), or with
``use_predictions`` the latest of ``predictions[]``, which is where ``run.py --mode predict
--output_format labelstudio`` puts the model's entities. A task with nothing to read, and results of
other kinds (choices, relations...), are counted as not used. Offsets are checked against the
result's ``text``; offsets that count UTF-16 units (a browser's) are converted to characters when
that is what makes them match. An error names the task by its position in the list (from 0) and id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from data_processing.ner_alignment import CharSpan, SpanCounts, SpanRecord
from modelzoo.common.errors import DataFileError
from modelzoo.data.text_files import read_utf8_text

LABELS_RESULT = "labels"


def read_labelstudio_records(
    path: Path, counts: SpanCounts, text_key: Optional[str] = None, use_predictions: bool = False
) -> Iterator[SpanRecord]:
    """A record per task that has an annotation (or prediction) to read, in the export's order."""
    try:
        tasks = json.loads(read_utf8_text(path, "Label Studio export"))
    except json.JSONDecodeError as error:
        raise DataFileError(path, error.lineno, f"not valid JSON: {error.msg}") from None
    if not isinstance(tasks, list):
        raise DataFileError(path, None, "expected a JSON list of tasks (Label Studio's JSON export)")
    source = "predictions" if use_predictions else "annotations"
    for position, task in enumerate(tasks):
        where = _task_name(position, task)
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataFileError(path, where, "expected a task object with a 'data' object")
        text = _task_text(path, where, task["data"], text_key)
        chosen = _latest(path, where, task.get(source, []), skip_cancelled=not use_predictions)
        if chosen is None:
            counts.not_used[f"tasks without {source}"] += 1
            continue
        spans = _spans(path, where, chosen.get("result", []), text, counts)
        yield SpanRecord(path, where, text, spans)


def _task_name(position: int, task: Any) -> str:
    task_id = task.get("id") if isinstance(task, dict) else None
    return f"task {position}" + (f" (id {task_id})" if task_id is not None else "")


def _task_text(path: Path, where: str, data: Dict[str, Any], text_key: Optional[str]) -> str:
    if text_key is not None:
        if not isinstance(data.get(text_key), str):
            raise DataFileError(path, where, f"data has no string field {text_key!r} (--text_key)")
        return data[text_key]
    strings = [key for key, value in data.items() if isinstance(value, str)]
    if len(strings) != 1:
        found = ", ".join(strings) or "none"
        raise DataFileError(path, where, f"cannot tell which field of data is the text (string fields: {found}); give --text_key")
    return data[strings[0]]


def _latest(path: Path, where: str, candidates: Any, skip_cancelled: bool) -> Optional[Dict[str, Any]]:
    if not isinstance(candidates, list):
        raise DataFileError(path, where, "annotations and predictions must be lists")
    usable = [
        (str(item.get("updated_at") or item.get("created_at") or ""), position, item)
        for position, item in enumerate(candidates)
        if isinstance(item, dict) and not (skip_cancelled and item.get("was_cancelled"))
    ]
    return max(usable, key=lambda entry: entry[:2])[2] if usable else None


def _spans(path: Path, where: str, results: Any, text: str, counts: SpanCounts) -> List[CharSpan]:
    if not isinstance(results, list):
        raise DataFileError(path, where, "result must be a list")
    spans = []
    for index, result in enumerate(results):
        if not isinstance(result, dict) or result.get("type") != LABELS_RESULT:
            kind = result.get("type") if isinstance(result, dict) else type(result).__name__
            counts.not_used[f"results of type {kind}"] += 1
            continue
        name = f"result {result.get('id', index)}"
        value = result.get("value")
        if not isinstance(value, dict) or not isinstance(value.get(LABELS_RESULT), list):
            raise DataFileError(path, where, f"{name}: expected value {{start, end, labels}}")
        start, end = value.get("start"), value.get("end")
        if not all(isinstance(offset, int) and not isinstance(offset, bool) for offset in (start, end)):
            raise DataFileError(path, where, f"{name}: start and end must be integers, got {start!r} and {end!r}")
        if isinstance(value.get("text"), str) and text[start:end] != value["text"]:
            start, end = _from_utf16(path, where, name, text, start, end, value["text"])
        for label in value[LABELS_RESULT]:
            if not isinstance(label, str):
                raise DataFileError(path, where, f"{name}: labels must be strings, got {label!r}")
            spans.append(CharSpan(start, end, label, name))
    return spans


def _from_utf16(path: Path, where: str, name: str, text: str, start: int, end: int, expected: str):
    """Character offsets for UTF-16 ones (which differ after a character outside the BMP, e.g. an emoji)."""
    characters_before = []  # UTF-16 offset -> characters before it
    for index, character in enumerate(text):
        characters_before.extend([index] * (2 if ord(character) > 0xFFFF else 1))
    characters_before.append(len(text))
    if 0 <= start <= end < len(characters_before):
        converted = characters_before[start], characters_before[end]
        if text[converted[0] : converted[1]] == expected:
            return converted
    raise DataFileError(
        path, where, f"{name}: the text at [{start}, {end}) is {text[start:end]!r}, the result says {expected!r}"
    )
