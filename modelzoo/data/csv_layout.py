"""The files of a CSV split folder, named once for the writers (data_processing/) and the readers.

A split folder holds the CSV shard(s), ``meta.dat`` (one ``filename count`` line per shard) and
``label2id.json``; the NER CSV's ``word_index`` column uses :data:`NO_WORD` for [CLS]/[SEP].
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from modelzoo.common.errors import DataFileError
from modelzoo.data.text_files import read_utf8_text

META_FILE = "meta.dat"
LABEL_VOCAB_FILE = "label2id.json"
# Positions of an example that belong to no word ([CLS], [SEP], document context) carry this word index.
NO_WORD = -1
# The NER CSV column numbering each example's document: the readers' document context never crosses
# from one number to another (CSVs written before it, and Cerebras', lack it).
DOCUMENT_COLUMN = "document_index"


def read_meta(data_dir: Path) -> List[Tuple[Path, int, int]]:
    """(CSV path, example count, line in meta.dat) for each ``filename count`` line of ``meta.dat``."""
    meta_path = data_dir / META_FILE
    if not meta_path.is_file():
        raise DataFileError(meta_path, None, "not found: data_dir must be a split folder written by write_csv_ner.py")
    entries = []
    for number, line in enumerate(read_utf8_text(meta_path).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataFileError(meta_path, number, f"expected 'filename count', got {line!r}")
        shard = data_dir / fields[0]
        resolved = shard.resolve()
        if Path(fields[0]).is_absolute() or data_dir.resolve() not in (resolved, *resolved.parents):
            raise DataFileError(meta_path, number, f"{fields[0]!r} is outside the folder (meta.dat lists the folder's own CSV files)")
        entries.append((shard, int(fields[1]), number))
    if not entries:
        raise DataFileError(meta_path, 1, "lists no CSV files")
    return entries


# The first header column of each writer's CSV shards: which task a split folder holds data for.
TASK_OF_FIRST_COLUMN = {
    "tokens": "NER (token classification) data, as write_csv_ner.py writes it",
    "input_ids": "sequence classification data, as write_csv_classifier.py writes it",
}


def check_task(data_dir: Path, first_shard: Path, first_column: str) -> None:
    """Refuse a folder of the other task's CSVs by name, before its files are misread as this task's."""
    try:
        with open(first_shard, encoding="utf-8") as handle:
            found = handle.readline().split(",")[0].strip()
    except (OSError, UnicodeDecodeError):
        return  # the reader reports the file itself, with its line
    if found != first_column and found in TASK_OF_FIRST_COLUMN:
        raise DataFileError(
            data_dir,
            None,
            f"the folder holds another task's data ({TASK_OF_FIRST_COLUMN[found]}) but this config reads "
            f"{TASK_OF_FIRST_COLUMN[first_column]}: check data_dir and model.head",
        )
