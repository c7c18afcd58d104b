"""Where the splits of a raw NER folder are, which format each is in, and a reader for each.

Formats: ``blurb``/``conll`` (column files, :mod:`ner_raw`), ``jsonl`` (doccano / spaCy-style spans,
:mod:`ner_jsonl`), ``labelstudio`` (:mod:`ner_labelstudio`), ``brat`` (:mod:`ner_brat`) and ``hf``
(:mod:`ner_hf`). Splits are found by name as for the column files (``train``; ``dev``, ``devel``,
``valid`` or ``validation``; ``test``): files ``train.jsonl``, ``dev.json``..., sub-folders
``train/``... of BRAT documents, or the splits of a saved ``DatasetDict``. Without ``--format`` the
format is read off the folder: a saved DatasetDict, BRAT sub-folders, or per file its suffix and,
for JSON, its first record (a list of tasks is Label Studio's; a record with ``text`` doccano's;
one with the tokens column Hugging Face's).

Every reader yields :class:`Sentence` objects: the tag formats with their own words and raw tags
(the tag scheme is applied later), the span formats with the words of the prediction splitter and
IOB2 tags (:mod:`ner_alignment`). Each sentence carries its document's number: the column and Hugging
Face formats count ``-DOCSTART-`` markers (no markers: the whole split is one document, in file
order), the record formats make each record (a JSONL line, a Label Studio task, a BRAT file) a document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Union

from data_processing.hf_tables import is_saved_dataset, saved_split_names
from data_processing.ner_alignment import AlignmentOptions, SpanAligner, SpanCounts, SpanRecord
from data_processing.ner_brat import holds_brat, read_brat_records
from data_processing.ner_hf import HfColumns, HfSplit
from data_processing.ner_jsonl import TEXT_KEY, read_jsonl_records
from data_processing.ner_labelstudio import read_labelstudio_records
from data_processing.ner_raw import BLURB, CONLL, SPLIT_OF_STEM, SPLIT_ORDER, Sentence, read_split_file
from modelzoo.common.errors import DataFileError

JSONL, LABELSTUDIO, BRAT, HF = "jsonl", "labelstudio", "brat", "hf"
FORMATS = (BLURB, CONLL, JSONL, LABELSTUDIO, BRAT, HF)
COLUMN_FORMATS = (BLURB, CONLL)
TAG_FORMATS = (BLURB, CONLL, HF)
SUFFIXES = {BLURB: (".tsv", ".txt"), CONLL: (".tsv", ".txt"), JSONL: (".jsonl", ".json"), LABELSTUDIO: (".json",),
            HF: (".parquet", ".json", ".jsonl", ".csv")}
COLUMNS_DETECTED = "columns"  # blurb or conll, told apart per file by ner_raw


@dataclass(frozen=True)
class ReadOptions:
    """What the record formats need to know besides the file: the text field, the columns, the alignment."""

    text_key: Optional[str] = None
    use_predictions: bool = False
    columns: HfColumns = field(default_factory=HfColumns)
    alignment: AlignmentOptions = field(default_factory=AlignmentOptions)


@dataclass(frozen=True)
class SplitSource:
    """Split ``name`` is read from ``path`` (a file, a BRAT folder, or a saved DatasetDict with ``saved_split``)."""

    name: str
    path: Path
    file_format: str
    saved_split: Optional[str] = None


def find_splits(data_dir: Union[str, Path], file_format: Optional[str] = None) -> List[SplitSource]:
    """The splits of ``data_dir`` in train, dev, test order; DataFileError when there is none or two of one."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataFileError(folder, None, "data folder not found")
    if file_format not in (None, *FORMATS):
        raise ValueError(f"unknown format {file_format!r}; expected one of {FORMATS}")
    if file_format in (None, HF) and is_saved_dataset(folder):
        found = {}
        for name in saved_split_names(folder):
            if SPLIT_OF_STEM.get(name) is not None:
                _add(found, SplitSource(SPLIT_OF_STEM[name], folder / name, HF, saved_split=name))
        return _ordered(folder, found, "a saved DatasetDict with a train, validation or test split")
    brat_folders = [path for path in sorted(folder.iterdir()) if path.stem in SPLIT_OF_STEM and holds_brat(path)]
    if file_format == BRAT or (file_format is None and brat_folders):
        found = {}
        for path in brat_folders:
            _add(found, SplitSource(SPLIT_OF_STEM[path.name], path, BRAT))
        return _ordered(folder, found, "sub-folders train/, dev/, test/ of NAME.txt + NAME.ann files")
    suffixes = SUFFIXES[file_format] if file_format else sorted({s for group in SUFFIXES.values() for s in group})
    found = {}
    for path in sorted(folder.iterdir()):
        if path.stem in SPLIT_OF_STEM and path.suffix in suffixes and path.is_file():
            _add(found, SplitSource(SPLIT_OF_STEM[path.stem], path, file_format or detect_file_format(path)))
    return _ordered(folder, found, f"{'/'.join(SPLIT_OF_STEM)} files ending in {', '.join(suffixes)}")


def _add(found: Dict[str, SplitSource], source: SplitSource) -> None:
    if source.name in found:
        raise DataFileError(
            source.path, None, f"two sources for the {source.name} split: {found[source.name].path.name} and {source.path.name}"
        )
    found[source.name] = source


def _ordered(folder: Path, found: Dict[str, SplitSource], expected: str) -> List[SplitSource]:
    if not found:
        raise DataFileError(folder, None, f"no split files found (expected {expected})")
    return [found[split] for split in SPLIT_ORDER if split in found]


def detect_file_format(path: Path) -> str:
    """The format of one split file, from its suffix and, for JSON, its first record."""
    if path.suffix in (".tsv", ".txt"):
        return COLUMNS_DETECTED
    if path.suffix in (".parquet", ".csv"):
        return HF
    with open(path, "rb") as stream:
        head = stream.read(1 << 16).decode("utf-8-sig", errors="replace").lstrip()
    if head.startswith("["):
        return LABELSTUDIO
    try:
        first = json.loads(head.split("\n", 1)[0])
    except ValueError:
        raise DataFileError(path, 1, "cannot tell the format: the first line is no JSON record; give --format") from None
    return JSONL if isinstance(first, dict) and TEXT_KEY in first else HF


class SplitReader:
    """The sentences of one split, with what was counted on the way; ``tag_set`` is None for the span formats."""

    def __init__(self, source: SplitSource, options: ReadOptions) -> None:
        self.source, self.options = source, options
        self.counts = SpanCounts()
        self.file_format = source.file_format
        self._hf: Optional[HfSplit] = None
        self._column_sentences: Optional[List[Sentence]] = None
        self._aligner: Optional[SpanAligner] = None
        if self.file_format in (COLUMNS_DETECTED, *COLUMN_FORMATS):
            given = None if self.file_format == COLUMNS_DETECTED else self.file_format
            self._column_sentences, self.file_format = read_split_file(source.path, given)
        elif self.file_format == HF:
            self._hf = HfSplit(source.path.parent if source.saved_split else source.path, source.saved_split,
                               options.columns, self.counts)
        else:
            self._aligner = SpanAligner(options.alignment, self.counts)

    @property
    def has_tags(self) -> bool:
        return self._aligner is None

    def tag_set(self) -> Set[str]:
        if self._column_sentences is not None:
            return {label for sentence in self._column_sentences for label in sentence.labels}
        if self._hf is not None:
            return self._hf.tag_set()
        raise ValueError("span formats have no tag scheme")

    def sentences(self, known_labels: Optional[Set[str]] = None, label_source: str = "") -> Iterator[Sentence]:
        """The sentences in order; span labels are checked against ``known_labels`` (IOB2) when given."""
        if self._column_sentences is not None:
            yield from self._column_sentences
        elif self._hf is not None:
            yield from self._hf.sentences()
        else:
            assert self._aligner is not None
            for document, record in enumerate(self._records()):  # a record (text, task, BRAT file) is a document
                sentence = self._aligner.sentence(record, known_labels, label_source)
                sentence.document = document
                yield sentence

    def _records(self) -> Iterator[SpanRecord]:
        readers: Dict[str, Callable[[], Iterator[SpanRecord]]] = {
            JSONL: lambda: read_jsonl_records(self.source.path),
            LABELSTUDIO: lambda: read_labelstudio_records(
                self.source.path, self.counts, self.options.text_key, self.options.use_predictions
            ),
            BRAT: lambda: read_brat_records(self.source.path, self.counts),
        }
        return readers[self.file_format]()

    def close(self) -> None:
        if self._hf is not None:
            self._hf.close()
