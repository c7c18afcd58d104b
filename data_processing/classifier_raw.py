"""Raw sequence-classification data -> texts and labels: GLUE TSV, CSV, JSON lines, Hugging Face datasets.

Splits are found by name (``train``; ``dev``, ``devel``, ``valid`` or ``validation``; ``test``): a
``.tsv``, ``.csv``, ``.jsonl``/``.json`` or ``.parquet`` file each, or a saved ``DatasetDict``.
The text is ``--text_column`` (with ``--text_pair_column`` for pairs) or, by default, the first of
``sentence1`` + ``sentence2``, ``sentence``, ``text`` present; the label is ``--label_column``
(``label``): names, or integers, which a ``ClassLabel`` feature names. GLUE TSVs are not quoted, so
TSV lines are split on tabs as they are; CSV follows RFC 4180 quoting. Every problem is one
``FILE:WHERE: problem`` (a line, or a dataset row).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from data_processing.hf_tables import (
    class_names,
    is_saved_dataset,
    opened_table,
    require_columns,
    rows,
    saved_split_names,
)
from data_processing.ner_raw import SPLIT_OF_STEM, SPLIT_ORDER
from data_processing.ner_sources import SplitSource
from modelzoo.common.errors import DataFileError
from modelzoo.common.strings import remove_suffix
from modelzoo.data.text_files import read_utf8_text

TSV, CSV, JSONL, HF = "tsv", "csv", "jsonl", "hf"
FORMATS = (TSV, CSV, JSONL, HF)
SUFFIXES = {TSV: (".tsv",), CSV: (".csv",), JSONL: (".jsonl", ".json"), HF: (".parquet", ".json", ".jsonl", ".csv")}
FORMAT_OF_SUFFIX = {".tsv": TSV, ".csv": CSV, ".jsonl": JSONL, ".json": JSONL, ".parquet": HF}
TEXT_COLUMN_SETS = (("sentence1", "sentence2"), ("sentence",), ("text",))
Where = Union[int, str]


@dataclass(frozen=True)
class ClassifierColumns:
    text: Optional[str] = None
    text_pair: Optional[str] = None
    label: str = "label"


@dataclass
class RawSplit:
    """The examples of one split: texts (one or two per example), labels, and where each was read."""

    texts: List[Tuple[str, ...]] = field(default_factory=list)
    labels: List[str] = field(default_factory=list)
    places: List[Where] = field(default_factory=list)


def find_classifier_splits(data_dir: Path, file_format: Optional[str] = None) -> List[SplitSource]:
    """The splits of ``data_dir`` in train, dev, test order."""
    if not data_dir.is_dir():
        raise DataFileError(data_dir, None, "data directory not found")
    found: Dict[str, SplitSource] = {}
    if file_format in (None, HF) and is_saved_dataset(data_dir):
        for name in saved_split_names(data_dir):
            if name in SPLIT_OF_STEM:
                found[SPLIT_OF_STEM[name]] = SplitSource(SPLIT_OF_STEM[name], data_dir / name, HF, name)
    else:
        suffixes = SUFFIXES[file_format] if file_format else tuple(FORMAT_OF_SUFFIX)
        for path in sorted(data_dir.iterdir()):
            split = SPLIT_OF_STEM.get(path.stem)
            if split is None or path.suffix not in suffixes or not path.is_file():
                continue
            if split in found:
                raise DataFileError(path, None, f"two files for the {split} split: {found[split].path.name} and {path.name}")
            found[split] = SplitSource(split, path, file_format or FORMAT_OF_SUFFIX[path.suffix])
    if not found:
        raise DataFileError(data_dir, None, f"no train, dev, test files ending in {', '.join(SUFFIXES[file_format or TSV])} found"
                            if file_format in (None, TSV) else f"no train, dev, test {file_format} files found")
    return [found[split] for split in SPLIT_ORDER if split in found]


def read_split(source: SplitSource, columns: ClassifierColumns) -> RawSplit:
    """The examples of one split, every one checked; DataFileError on the first problem."""
    if source.file_format == HF:
        return _read_hf(source, columns)
    readers = {TSV: _tsv_rows, CSV: _csv_rows, JSONL: _jsonl_rows}
    raw = RawSplit()
    text_columns: Optional[Tuple[str, ...]] = None
    for where, header, row in readers[source.file_format](source.path):
        if text_columns is None or source.file_format == JSONL:
            text_columns = _text_columns(source.path, where if source.file_format == JSONL else 1, header, columns)
        _add(raw, source.path, where, text_columns, row[columns.label], row)
    if not raw.texts:
        raise DataFileError(source.path, 1, "no examples after the header line" if source.file_format != JSONL else "no examples")
    return raw


def _text_columns(path: Path, where: Where, header: List[str], columns: ClassifierColumns) -> Tuple[str, ...]:
    """The text column(s) of ``header`` (checked to be there, with the label column)."""
    if columns.text is not None:
        chosen: Optional[Tuple[str, ...]] = (columns.text, *((columns.text_pair,) if columns.text_pair else ()))
    else:
        chosen = next((names for names in TEXT_COLUMN_SETS if set(names) <= set(header)), None)
    if chosen is None or not set(chosen) <= set(header) or columns.label not in header:
        raise DataFileError(
            path, where, f"header {header} must name {columns.label!r} and the text: 'sentence' (or 'sentence1' and "
            "'sentence2'), 'text', or what --text_column (--text_pair_column, --label_column) names"
        )
    return chosen


def _add(raw: RawSplit, path: Path, where: Where, text_columns: Tuple[str, ...], label: Any, row: Dict[str, Any]) -> None:
    texts = tuple(row[column].strip() if isinstance(row[column], str) else row[column] for column in text_columns)
    if not all(isinstance(text, str) and text for text in texts):
        raise DataFileError(path, where, f"empty text in column(s) {', '.join(text_columns)}")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise DataFileError(path, where, f"label {label!r} is neither a name nor an integer")
    raw.texts.append(texts)
    raw.labels.append(str(label).strip())
    raw.places.append(where)


def _tsv_rows(path: Path) -> Iterator[Tuple[Where, List[str], Dict[str, str]]]:
    lines = read_utf8_text(path, "TSV file").split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [remove_suffix(line, "\r") for line in lines]
    if not any(line.strip() for line in lines):
        raise DataFileError(path, 1, "empty file (expected a header line such as 'sentence<TAB>label')")
    header = lines[0].split("\t")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise DataFileError(path, number, "blank line (one example per line, no blank lines)")
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataFileError(
                path, number, f"expected {len(header)} tab-separated columns ({', '.join(header)}), found {len(fields)}"
            )
        yield number, header, dict(zip(header, fields))


def _csv_rows(path: Path) -> Iterator[Tuple[Where, List[str], Dict[str, str]]]:
    text = read_utf8_text(path, "CSV file")
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader, None)
        if not header:
            raise DataFileError(path, 1, "empty file (expected a header line such as 'sentence,label')")
        for fields in reader:
            if len(fields) != len(header):
                raise DataFileError(path, reader.line_num, f"expected {len(header)} columns ({', '.join(header)}), found {len(fields)}")
            yield reader.line_num, header, dict(zip(header, fields))
    except csv.Error as error:
        raise DataFileError(path, reader.line_num, f"not valid CSV: {error}") from None


def _jsonl_rows(path: Path) -> Iterator[Tuple[Where, List[str], Dict[str, Any]]]:
    for number, line in enumerate(read_utf8_text(path, "JSON lines file").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFileError(path, number, f"not a JSON object: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataFileError(path, number, "expected a JSON object")
        yield number, list(record), record


def _read_hf(source: SplitSource, columns: ClassifierColumns) -> RawSplit:
    path = source.path.parent if source.saved_split else source.path
    with opened_table(path, source.saved_split) as (table, where):
        text_columns = _text_columns(where, None, list(table.column_names), columns)  # type: ignore[arg-type]
        require_columns(table, where, [*text_columns, columns.label], "--text_column, --label_column")
        names = class_names(table, columns.label)
        raw = RawSplit()
        for index, row in enumerate(rows(table, [*text_columns, columns.label])):
            label = row[columns.label]
            if names is not None and isinstance(label, int):
                if not 0 <= label < len(names):
                    raise DataFileError(where, f"row {index}", f"label id {label} outside the ClassLabel's 0..{len(names) - 1}")
                label = names[label]
            _add(raw, where, f"row {index}", text_columns, label, row)
    if not raw.texts:
        raise DataFileError(where, None, "no examples")
    return raw
