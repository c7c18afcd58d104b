"""Raw NER files -> sentences of (word, label), with every problem reported as ``FILE:LINE: problem``.

Two layouts are read: BLURB (``word<TAB>label``) and CoNLL-2003 (``word POS chunk NER``, whose
``-DOCSTART-`` lines are document markers, not words). A blank line ends a sentence in both. Lines are
split on ``\\n`` only (a trailing ``\\r`` is dropped, so CRLF files read like LF files): Python's
``splitlines`` would also break on characters such as U+2028 that can occur inside a word and would
shift every line number after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

from modelzoo.common.errors import DataFileError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.text_files import read_utf8_text

BLURB = "blurb"
CONLL = "conll"
FORMATS = (BLURB, CONLL)
COLUMNS = {BLURB: 2, CONLL: 4}
DOCSTART = "-DOCSTART-"

# Raw file stem -> output split folder name; CoNLL calls its dev split "valid", BLURB "devel".
SPLIT_OF_STEM = {"train": "train", "dev": "dev", "devel": "dev", "valid": "dev", "test": "test"}
SPLIT_ORDER = ("train", "dev", "test")
RAW_SUFFIXES = (".tsv", ".txt")

IOB_LABEL = re.compile(r"O|[BI](-\S+)?")


@dataclass
class Sentence:
    """One raw sentence; its words sit on consecutive lines starting at ``first_line`` (1-based)."""

    words: List[str]
    labels: List[str]
    first_line: int

    def line_of(self, word_index: int) -> int:
        """The line of the raw file holding word ``word_index``."""
        return self.first_line + word_index


def find_split_files(data_dir: Union[str, Path]) -> Dict[str, Path]:
    """Split name (train/dev/test) -> raw file in ``data_dir``; other files in the folder are ignored."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataFileError(folder, None, "data folder not found")
    found: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        split = SPLIT_OF_STEM.get(path.stem)
        if split is None or path.suffix not in RAW_SUFFIXES or not path.is_file():
            continue
        if split in found:
            raise DataFileError(path, None, f"two files for the {split} split: {found[split].name} and {path.name}")
        found[split] = path
    if not found:
        stems = "/".join(SPLIT_OF_STEM)
        raise DataFileError(folder, None, f"no split files found (expected {stems} with .tsv or .txt)")
    return {split: found[split] for split in SPLIT_ORDER if split in found}


def read_split_file(path: Union[str, Path], file_format: Optional[str] = None) -> Tuple[List[Sentence], str]:
    """The sentences of one raw file and the format it was read as (detected when ``file_format`` is None)."""
    path = Path(path)
    lines = read_utf8_text(path, "split file").split("\n")
    if file_format is None:
        file_format = detect_format(path, lines)
    elif file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r}; expected one of {FORMATS}")
    columns = COLUMNS[file_format]
    column_hint = "word<TAB>label" if file_format == BLURB else "word POS chunk NER"
    sentences: List[Sentence] = []
    words: List[str] = []
    labels: List[str] = []
    valid_labels: Set[str] = set()
    first_line = 0

    def end_sentence() -> None:
        if words:
            sentences.append(Sentence(words.copy(), labels.copy(), first_line))
            words.clear()
            labels.clear()

    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            end_sentence()
            continue
        fields = line.split("\t") if file_format == BLURB else line.split()
        if fields[0] == DOCSTART:
            end_sentence()
            continue
        if len(fields) != columns:
            raise DataFileError(
                path, number, f"expected {columns} columns ({column_hint}), found {len(fields)}: {line!r}"
            )
        word, label = fields[0], fields[-1].strip()
        if not word:
            raise DataFileError(path, number, "empty word")
        if label not in valid_labels:
            if not IOB_LABEL.fullmatch(label):
                raise DataFileError(
                    path, number, f"label {label!r} is not in the IOB scheme (O, B, I, B-TYPE or I-TYPE)"
                )
            valid_labels.add(label)
        if not words:
            first_line = number
        words.append(word)
        labels.append(label)
    end_sentence()
    if not sentences:
        raise DataFileError(path, 1, "empty split file: no sentences")
    return sentences, file_format


def detect_format(path: Path, lines: List[str]) -> str:
    """BLURB or CoNLL, judged from the first line that is neither blank nor a ``-DOCSTART-`` marker."""
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        if line.split()[0] == DOCSTART:
            return CONLL
        if len(line.split("\t")) == COLUMNS[BLURB]:
            return BLURB
        if len(line.split()) == COLUMNS[CONLL]:
            return CONLL
        raise DataFileError(
            path, number, "cannot tell the format: expected 'word<TAB>label' (BLURB) or 'word POS chunk NER' (CoNLL)"
        )
    raise DataFileError(path, 1, "empty split file: no sentences")


def strip_entity_type(label: str) -> str:
    """``B-Chemical`` -> ``B``: the untyped BLURB/Cerebras labels."""
    return label.split("-", 1)[0]


def check_labels_known(path: Path, sentences: List[Sentence], known_labels: Union[Set[str], Dict[str, int]]) -> None:
    """Fail at the first word whose label the label vocab (built from train) does not hold."""
    for sentence in sentences:
        for word_index, label in enumerate(sentence.labels):
            if label not in known_labels:
                raise DataFileError(
                    path, sentence.line_of(word_index), f"label {label!r} never occurs in the train split"
                )


def _begins_with_inside(previous: str, label: str) -> bool:
    """An ``I`` label that continues no entity of its type: IOB1 writes entity starts that way."""
    return label.startswith("I") and (previous == "O" or previous[2:] != label[2:])


def check_iob2(path: Path, sentences: List[Sentence]) -> None:
    """Fail at the first entity that begins with ``I-`` (IOB1, or broken IOB2): it would train as a continuation."""
    for sentence in sentences:
        for word_index, label in enumerate(sentence.labels):
            if _begins_with_inside(sentence.labels[word_index - 1] if word_index else "O", label):
                raise DataFileError(
                    path,
                    sentence.line_of(word_index),
                    f"label {label!r} begins an entity: the file is IOB1 (or broken IOB2), this project reads "
                    "IOB2; --convert_iob1 turns every entity-starting I- into B-",
                )


def iob1_to_iob2(sentences: List[Sentence]) -> int:
    """IOB1 -> IOB2 in place: every ``I`` label that begins an entity becomes ``B``; returns how many changed."""
    changed = 0
    for sentence in sentences:
        original = sentence.labels
        sentence.labels = [
            "B" + label[1:] if _begins_with_inside(original[index - 1] if index else "O", label) else label
            for index, label in enumerate(original)
        ]
        changed += sum(old != new for old, new in zip_strict(original, sentence.labels))
    return changed
