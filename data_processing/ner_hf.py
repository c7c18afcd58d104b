"""Hugging Face token-classification data (``tokens`` + ``ner_tags``) -> sentences of tagged words.

The words are the dataset's own (a word list per row, as Hugging Face's token-classification
examples keep them), so a row becomes exactly the sentence a CoNLL file of the same words would.
Tags are integers named by the column's ``ClassLabel`` feature, or strings; they go through the tag
schemes like the column formats' tags. A row that is exactly ``-DOCSTART-`` (how Hugging Face's
CoNLL-2003 keeps document breaks) is a document marker, as in CoNLL files, and a row without words
is skipped; both are counted. The sentences between two markers are one document (a split without
markers is one document, in row order). Errors name the file (or the saved split folder) and the row (from 0,
as ``dataset[i]`` numbers them).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Set

from data_processing.hf_tables import class_names, list_cell, opened_table, require_columns, rows
from data_processing.ner_alignment import SpanCounts
from data_processing.ner_raw import DOCSTART, SCHEME_TAG, Sentence
from modelzoo.common.errors import DataFileError

TOKENS_COLUMN, TAGS_COLUMN = "tokens", "ner_tags"
COLUMN_OPTIONS = "--tokens_column and --tags_column name the word list and tag list columns"


@dataclass(frozen=True)
class HfColumns:
    tokens: str = TOKENS_COLUMN
    tags: str = TAGS_COLUMN


class HfSplit:
    """One split of a Hugging Face dataset: its tag set (for the scheme) and its sentences, streamed."""

    def __init__(self, path: Path, split: Optional[str], columns: HfColumns, counts: SpanCounts) -> None:
        self.path, self.split, self.columns, self.counts = path, split, columns, counts
        self._stack = contextlib.ExitStack()
        self.table, self.where = self._stack.enter_context(opened_table(path, split))
        require_columns(self.table, self.where, [columns.tokens, columns.tags], COLUMN_OPTIONS)
        self.names = class_names(self.table, columns.tags)

    def close(self) -> None:
        self._stack.close()

    def tag_set(self) -> Set[str]:
        """Every tag the split uses (the ``ClassLabel`` names where the column has them)."""
        if self.names is not None:
            return set(self.names)
        return {tag for sentence in self.sentences(SpanCounts()) for tag in sentence.labels}

    def sentences(self, counts: Optional[SpanCounts] = None) -> Iterator[Sentence]:
        """The rows as sentences; the rows not used are counted in ``counts`` (the split's by default)."""
        counts = self.counts if counts is None else counts
        document, document_has_sentences = 0, False
        for index, row in enumerate(rows(self.table, [self.columns.tokens, self.columns.tags])):
            where = f"row {index}"
            words, tags = self._cell(where, row, self.columns.tokens), self._cell(where, row, self.columns.tags)
            if words == [DOCSTART]:
                counts.not_used["-DOCSTART- rows (document markers)"] += 1
                if document_has_sentences:
                    document, document_has_sentences = document + 1, False
                continue
            if not words:
                counts.not_used["rows without words"] += 1
                continue
            if len(words) != len(tags):
                raise DataFileError(self.where, where, f"{len(words)} words but {len(tags)} tags")
            document_has_sentences = True
            yield Sentence(
                [self._word(where, word) for word in words], self._tags(where, tags), 0, record=where, document=document
            )

    def _cell(self, where: str, row: dict, column: str) -> List:
        try:
            value = list_cell(row[column])
        except ValueError as error:
            raise DataFileError(self.where, where, f"{column}: {error}") from None
        if not isinstance(value, list):
            raise DataFileError(self.where, where, f"{column}: expected a list, got {type(value).__name__}")
        return value

    def _word(self, where: str, word) -> str:
        if not isinstance(word, str) or not word.strip():
            raise DataFileError(self.where, where, f"{self.columns.tokens}: every word must be a non-blank string, got {word!r}")
        return word

    def _tags(self, where: str, tags: List) -> List[str]:
        if all(isinstance(tag, str) for tag in tags):
            for tag in tags:
                if not SCHEME_TAG.fullmatch(tag):
                    raise DataFileError(self.where, where, f"tag {tag!r} is not a tag (O, or B/I/E/S/L/U alone or with -TYPE)")
            return list(tags)
        if self.names is None:
            raise DataFileError(
                self.where, where, f"{self.columns.tags}: integer tags without names: the column is no ClassLabel "
                "(save with datasets, whose save_to_disk and to_parquet keep the names) and holds no tag strings",
            )
        if not all(isinstance(tag, int) and 0 <= tag < len(self.names) for tag in tags):
            raise DataFileError(self.where, where, f"{self.columns.tags}: tags must be ids 0..{len(self.names) - 1}, got {tags}")
        return [self.names[tag] for tag in tags]
