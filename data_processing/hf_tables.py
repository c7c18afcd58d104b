"""Hugging Face ``datasets`` tables, the way the writers read them: a saved ``DatasetDict`` or one file per split.

A folder written by ``DatasetDict.save_to_disk`` (it holds ``dataset_dict.json``) gives its splits
by name; otherwise ``train``/``dev``/``test`` files in ``parquet``, ``json``/``jsonl`` or ``csv`` are
loaded with the matching ``datasets`` builder, whose cache goes to a temporary folder (nothing is
left in the user's cache). ``ClassLabel`` features give integer labels their names: a saved dataset
and parquet written by ``datasets`` keep them; JSON and CSV files hold the names or nothing. A CSV
cell holding a list (``datasets`` writes ``['EU' 'rejects']``, pandas ``['EU', 'rejects']``) is read
back as the list, never as one string.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import tempfile
import tokenize
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from modelzoo.common.errors import DataFileError

SAVED_DATASET_FILE = "dataset_dict.json"
BUILDER_OF_SUFFIX = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
ROWS_PER_BATCH = 1000


def is_saved_dataset(folder: Path) -> bool:
    return (folder / SAVED_DATASET_FILE).is_file()


def saved_split_names(folder: Path) -> List[str]:
    """The split names ``dataset_dict.json`` lists."""
    try:
        splits = json.loads((folder / SAVED_DATASET_FILE).read_text(encoding="utf-8"))["splits"]
    except (ValueError, KeyError, TypeError, OSError):
        raise DataFileError(folder / SAVED_DATASET_FILE, None, "not a DatasetDict.save_to_disk file (no 'splits' list)") from None
    return [str(split) for split in splits]


def _quiet_datasets():
    import datasets  # imported here: it takes seconds and only the hf formats need it

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


@contextlib.contextmanager
def opened_table(path: Path, split: Optional[str] = None) -> Iterator[Tuple[Any, Path]]:
    """The ``datasets.Dataset`` of ``path`` (a split file, or with ``split`` a saved DatasetDict folder),
    and the path errors name for it."""
    datasets = _quiet_datasets()
    with tempfile.TemporaryDirectory(prefix="modelzoo-datasets-") as cache:
        try:
            if split is not None:
                table = datasets.load_from_disk(str(path))[split]
                where = path / split
            else:
                table = datasets.load_dataset(BUILDER_OF_SUFFIX[path.suffix], data_files=str(path), split="train",
                                              cache_dir=cache)
                where = path
        except (ValueError, OSError, KeyError) as error:  # datasets' own errors derive from these
            raise DataFileError(path, None, f"cannot load it with datasets: {_first_line(error)}") from None
        except Exception as error:  # pyarrow and the builders raise their own kinds for a malformed file
            if type(error).__module__.split(".")[0] not in ("datasets", "pyarrow", "pandas"):
                raise
            raise DataFileError(path, None, f"cannot load it with datasets: {_first_line(error)}") from None
        yield table, where


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def require_columns(table: Any, where: Path, columns: List[str], options: str) -> None:
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DataFileError(
            where, None, f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.column_names)}); {options}"
        )


def class_names(table: Any, column: str) -> Optional[List[str]]:
    """The ``ClassLabel`` names of ``column`` (a label, or a list of labels), or None."""
    import datasets

    feature = table.features[column]
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) / Sequence(ClassLabel) -> ClassLabel
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def rows(table: Any, columns: List[str]) -> Iterator[Dict[str, Any]]:
    """Every row of ``columns`` in order, read a batch at a time (the table stays memory-mapped)."""
    for batch in table.select_columns(columns).iter(batch_size=ROWS_PER_BATCH):
        for values in zip(*(batch[column] for column in columns)):
            yield dict(zip(columns, values))


def list_cell(value: Any) -> Any:
    """A list as it is, or the list a CSV cell spells (JSON, Python or NumPy repr; whitespace-separated words)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith("["):
        return text.split()
    items = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.STRING, tokenize.NUMBER):
                items.append(ast.literal_eval(token.string))
            elif token.type == tokenize.NAME or (token.type == tokenize.OP and token.string not in ("[", "]", ",")):
                raise ValueError(token.string)  # a name, an ellipsis (NumPy's shortened repr): no list of values
    except (ValueError, SyntaxError, tokenize.TokenError):
        raise ValueError(f"cannot read {value[:60]!r} as a list") from None
    return items
