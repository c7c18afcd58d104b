"""Character-offset spans (doccano, Label Studio, BRAT) -> IOB2 tags on the words prediction sees.

The words of a record's text come from ``modelzoo.data.raw_words.split_words``, the splitter of
``run.py --mode predict``, so a model trains on the words it will later be asked to tag. A span
becomes the words it touches; what cannot be mapped exactly is never dropped in silence:

* a span that starts or ends inside a word: ``expand`` (default) grows it to the whole words,
  ``contract`` keeps only the words wholly inside it (a span with none is dropped), ``strict``
  refuses it; expanded, contracted and dropped spans are counted for the summary;
* two spans on a common word (nested, crossing, or two pieces of one word): refused, or with
  ``keep_longest`` the longer (in characters; the earlier on a tie) is kept and the other counted
  as dropped; an exact repeat of a span (same words, same label) is counted and kept once;
* an empty or whitespace-only span, offsets outside the text, a label the label vocab lacks:
  refused with the file, the record and the span.
"""

from __future__ import annotations

import bisect
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Set, Tuple, Union

from data_processing.ner_raw import Sentence
from modelzoo.common.errors import DataFileError
from modelzoo.data.raw_words import LineWords, split_words

EXPAND, CONTRACT, STRICT = "expand", "contract", "strict"
SPAN_ALIGNMENTS = (EXPAND, CONTRACT, STRICT)
REFUSE, KEEP_LONGEST = "refuse", "keep_longest"
OVERLAPPING = (REFUSE, KEEP_LONGEST)

NO_WHOLE_WORD = "no whole word inside (--span_alignment contract)"
SHORTER_OVERLAP = "overlaps a longer span (--overlapping keep_longest)"
REPEATED = "repeats another span (same words, same label)"


@dataclass(frozen=True)
class CharSpan:
    """Characters ``[start, end)`` of a record's text labelled ``label``; ``name`` identifies it in errors
    (BRAT ``T4``, a Label Studio result id, or ``span 2``)."""

    start: int
    end: int
    label: str
    name: str


@dataclass
class SpanRecord:
    """One annotated text: ``where`` is what an error names after ``path`` (a JSONL line, a Label Studio
    task); None where the file is the record (BRAT), and an error names the span alone."""

    path: Path
    where: Union[int, str, None]
    text: str
    spans: List[CharSpan]


@dataclass
class SpanCounts:
    """What became of the annotations of one split (the figures of the summary): spans grown or shrunk
    to whole words, spans dropped and why, and what the readers read but cannot use (relations...)."""

    expanded: int = 0
    contracted: int = 0
    dropped: typing.Counter[str] = field(default_factory=Counter)
    not_used: typing.Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class AlignmentOptions:
    span_alignment: str = EXPAND
    overlapping: str = REFUSE
    pretokenized: bool = False


class SpanAligner:
    """Turns span records into sentences of IOB2-tagged words, checking and counting as it goes."""

    def __init__(self, options: AlignmentOptions, counts: SpanCounts) -> None:
        if options.span_alignment not in SPAN_ALIGNMENTS or options.overlapping not in OVERLAPPING:
            raise ValueError(f"unknown alignment options {options}")
        self.options, self.counts = options, counts

    def sentence(self, record: SpanRecord, known_labels: Optional[Set[str]] = None, source: str = "") -> Sentence:
        """The record's words and IOB2 tags; ``known_labels`` (IOB2 labels, None: any) is named ``source`` in errors."""
        words = split_words(record.text, self.options.pretokenized)
        placed: List[Tuple[CharSpan, int, int]] = []
        for span in record.spans:
            self._check(record, span, known_labels, source)
            first, stop = self._words_of(record, span, words)
            if first < stop:
                placed.append((span, first, stop))
        tags = ["O"] * len(words)
        for span, first, stop in self._without_overlaps(record, placed, words):
            tags[first:stop] = [f"B-{span.label}"] + [f"I-{span.label}"] * (stop - first - 1)
        record_name = record.path.name if record.where is None else str(record.where)
        return Sentence([word.text for word in words], tags, 0, record=record_name)

    @staticmethod
    def _error(record: SpanRecord, span: CharSpan, problem: str) -> DataFileError:
        """``FILE:RECORD: span [start, end) LABEL 'text': problem`` (BRAT: ``FILE.ann:T4: ...``)."""
        text = record.text[span.start : span.end] if 0 <= span.start < span.end <= len(record.text) else None
        described = f"[{span.start}, {span.end}) {span.label}" + (f" {text!r}" if text is not None else "")
        if record.where is None:
            return DataFileError(record.path, span.name, f"{described}: {problem}")
        return DataFileError(record.path, record.where, f"{span.name} {described}: {problem}")

    def _check(self, record: SpanRecord, span: CharSpan, known_labels: Optional[Set[str]], source: str) -> None:
        if not span.label or any(character.isspace() for character in span.label):
            raise self._error(record, span, "the label must be one word (no spaces; the CSV joins labels with spaces)")
        if not 0 <= span.start < span.end:
            raise self._error(record, span, "empty span, or a negative offset")
        if span.end > len(record.text):
            raise self._error(record, span, f"ends beyond the text ({len(record.text)} characters)")
        if not record.text[span.start : span.end].strip():
            raise self._error(record, span, "the span holds only whitespace")
        if known_labels is not None and f"B-{span.label}" not in known_labels:
            raise self._error(record, span, f"label {span.label!r} never occurs in {source}")

    def _words_of(self, record: SpanRecord, span: CharSpan, words: LineWords) -> Tuple[int, int]:
        """Words ``[first, stop)`` the span stands for under the alignment policy (``first == stop``: dropped)."""
        first = bisect.bisect_right(words.ends, span.start)  # the first word ending after the span starts
        stop = bisect.bisect_left(words.starts, span.end)  # past the last word starting before the span ends
        if first >= stop:  # only characters the splitter does not make words of (checked above: not whitespace)
            raise self._error(record, span, "covers no word")
        cut_start, cut_end = words[first].start < span.start, words[stop - 1].end > span.end
        if not (cut_start or cut_end):
            return first, stop
        policy = self.options.span_alignment
        if policy == STRICT:
            word = words[first] if cut_start else words[stop - 1]
            raise self._error(
                record, span, f"{'starts' if cut_start else 'ends'} inside the word {word.text!r} "
                "(--span_alignment strict; expand grows it to whole words, contract shrinks it)",
            )
        if policy == EXPAND:
            self.counts.expanded += 1
            return first, stop
        first, stop = first + cut_start, stop - cut_end
        if first >= stop:
            self.counts.dropped[NO_WHOLE_WORD] += 1
            return first, first
        self.counts.contracted += 1
        return first, stop

    def _without_overlaps(
        self, record: SpanRecord, placed: List[Tuple[CharSpan, int, int]], words: LineWords
    ) -> List[Tuple[CharSpan, int, int]]:
        """The spans to tag: repeats once; overlaps refused, or resolved longest first."""
        longest_first = sorted(placed, key=lambda item: (item[0].start - item[0].end, item[0].start))
        owner: List[Optional[Tuple[CharSpan, int, int]]] = [None] * len(words)
        kept = []
        for item in longest_first:
            span, first, stop = item
            clash = next((owner[index] for index in range(first, stop) if owner[index] is not None), None)
            if clash is None:
                owner[first:stop] = [item] * (stop - first)
                kept.append(item)
            elif clash[1:] == (first, stop) and clash[0].label == span.label:
                self.counts.dropped[REPEATED] += 1
            elif self.options.overlapping == KEEP_LONGEST:
                self.counts.dropped[SHORTER_OVERLAP] += 1
            else:
                other = clash[0]
                raise self._error(
                    record, span, f"overlaps {other.name} {record.text[other.start:other.end]!r} {other.label} "
                    "(nested or crossing spans, or two on one word); --overlapping keep_longest keeps the longer",
                )
        return kept
