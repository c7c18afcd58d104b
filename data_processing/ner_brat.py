"""BRAT standoff (``NAME.txt`` + ``NAME.ann`` pairs in a split folder) -> span records, one a document.

Entities are the ``T`` lines, ``T4<TAB>Chemical 0 11<TAB>Selegiline``: offsets count characters of
the ``.txt`` as stored (a CRLF line end is two), and the quoted text must be what they point at (a
mismatch is how wrong offsets show, and is refused). A discontinuous entity (``0 5;9 14``) has no
place in word tags: it is dropped and counted. Relations, events, attributes, normalizations and
notes (``R``, ``E``, ``A``/``M``, ``N``, ``#``, ``*`` lines) are counted as not used. Errors name the
``.ann`` file and the ``T`` id (or the line, for a line without one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

from data_processing.ner_alignment import CharSpan, SpanCounts, SpanRecord
from modelzoo.common.errors import DataFileError
from modelzoo.data.text_files import read_utf8_text

TEXT_SUFFIX, ANNOTATION_SUFFIX = ".txt", ".ann"
NOT_USED = {"R": "relations", "E": "events", "A": "attributes", "M": "attributes", "N": "normalizations",
            "#": "notes", "*": "equivalences"}
DISCONTINUOUS = "discontinuous entities (BRAT fragments; word tags hold one run of words)"


def holds_brat(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob(f"*{ANNOTATION_SUFFIX}"))


def read_brat_records(folder: Path, counts: SpanCounts) -> Iterator[SpanRecord]:
    """A record per document of ``folder``, in name order; a ``.txt`` without its ``.ann`` or the reverse is an error."""
    texts = {path.stem: path for path in folder.glob(f"*{TEXT_SUFFIX}")}
    annotations = {path.stem: path for path in folder.glob(f"*{ANNOTATION_SUFFIX}")}
    unpaired = sorted(texts.keys() ^ annotations.keys())
    if unpaired:
        lone = texts.get(unpaired[0]) or annotations[unpaired[0]]
        other = ANNOTATION_SUFFIX if lone.suffix == TEXT_SUFFIX else TEXT_SUFFIX
        raise DataFileError(lone, None, f"no {lone.stem}{other} beside it (BRAT pairs NAME.txt with NAME.ann)")
    if not texts:
        raise DataFileError(folder, None, "no NAME.txt + NAME.ann documents")
    for stem in sorted(texts):
        text = read_utf8_text(texts[stem], "BRAT text file")
        yield SpanRecord(annotations[stem], None, text, _entities(annotations[stem], text, counts))


def _entities(path: Path, text: str, counts: SpanCounts) -> List[CharSpan]:
    spans = []
    for number, raw_line in enumerate(read_utf8_text(path, "BRAT annotation file").split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        kind = line[0]
        if kind in NOT_USED:
            counts.not_used[NOT_USED[kind]] += 1
            continue
        fields = line.split("\t")
        if kind != "T" or len(fields) < 2:
            raise DataFileError(path, number, f"not a BRAT annotation line (T, R, E, A, M, N, # or *): {line!r}")
        name, entity_type, *offsets = fields[0], *fields[1].split(" ", 1)
        fragments = offsets[0].split(";") if offsets else []
        if len(fragments) > 1:
            counts.dropped[DISCONTINUOUS] += 1
            continue
        try:
            start, end = (int(offset) for offset in fragments[0].split(" "))
        except (ValueError, IndexError):
            raise DataFileError(path, name, f"expected 'TYPE START END' in the second column, got {fields[1]!r}") from None
        if len(fields) > 2 and 0 <= start < end <= len(text) and text[start:end] != fields[2]:
            raise DataFileError(
                path, name, f"the text at [{start}, {end}) is {text[start:end]!r}, the .ann says {fields[2]!r}"
            )
        spans.append(CharSpan(start, end, entity_type, name))
    return spans
