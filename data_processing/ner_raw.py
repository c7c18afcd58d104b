"""Raw NER files -> sentences of (word, label), with every problem reported as ``FILE:LINE: problem``.

The :class:`Sentence` here is what every reader hands the CSV writer (the record formats name a
record instead of a line). Two column layouts are read here: BLURB (``word<TAB>label``) and CoNLL-2003
(``word POS chunk NER``, whose ``-DOCSTART-`` lines are document markers, not words: they number the
sentences' documents, and a file without them, such as BLURB's, is one document in file order). A
blank line ends a sentence in both. Lines are
split on ``\\n`` only (a trailing ``\\r`` is dropped, so CRLF files read like LF files): Python's
``splitlines`` would also break on characters such as U+2028 that can occur inside a word and would
shift every line number after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from modelzoo.common.errors import DataFileError
from modelzoo.data.text_files import read_utf8_text

BLURB = "blurb"
CONLL = "conll"
FORMATS = (BLURB, CONLL)
COLUMNS = {BLURB: 2, CONLL: 4}
DOCSTART = "-DOCSTART-"

# Raw file stem -> output split folder name; CoNLL calls its dev split "valid", BLURB "devel",
# Hugging Face "validation".
SPLIT_OF_STEM = {"train": "train", "dev": "dev", "devel": "dev", "valid": "dev", "validation": "dev", "test": "test"}
SPLIT_ORDER = ("train", "dev", "test")

# A tag of any scheme ner_tag_schemes reads (IOB, BIOES, BILOU); which scheme holds is decided there.
SCHEME_TAG = re.compile(r"O|[BIESLU](-\S+)?")


@dataclass
class Sentence:
    """One raw sentence; its words sit on consecutive lines starting at ``first_line`` (1-based), or,
    for the record formats (``record`` set: ``row 3``, ``task 2 (id 7)``...), they come from one record."""

    words: List[str]
    labels: List[str]
    first_line: int
    record: Optional[str] = None
    document: int = 0  # sentences of one document share it (document context never crosses documents)

    def line_of(self, word_index: int) -> int:
        """The line of the raw file holding word ``word_index``."""
        return self.first_line + word_index

    def where(self, word_index: int) -> Union[int, str]:
        """What an error about word ``word_index`` names after the file: its line, or its record."""
        return self.line_of(word_index) if self.record is None else self.record


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
    document = 0

    def end_sentence() -> None:
        if words:
            sentences.append(Sentence(words.copy(), labels.copy(), first_line, document=document))
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
            if sentences and sentences[-1].document == document:
                document += 1
            continue
        if len(fields) != columns:
            raise DataFileError(
                path, number, f"expected {columns} columns ({column_hint}), found {len(fields)}: {line!r}"
            )
        word, label = fields[0], fields[-1].strip()
        if not word:
            raise DataFileError(path, number, "empty word")
        if label not in valid_labels:
            if not SCHEME_TAG.fullmatch(label):
                raise DataFileError(
                    path, number, f"label {label!r} is not a tag (O, or B/I/E/S/L/U alone or with -TYPE)"
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


def check_labels_known(
    path: Path, sentences: Iterable[Sentence], known_labels: Union[Set[str], Dict[str, int]],
    source: str = "the train split",
) -> None:
    """Fail at the first word whose label ``known_labels`` (the train split's, or ``source``'s) does not hold."""
    for sentence in sentences:
        for word_index, label in enumerate(sentence.labels):
            if label not in known_labels:
                raise DataFileError(path, sentence.where(word_index), f"label {label!r} never occurs in {source}")
