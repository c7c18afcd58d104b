"""Sentences -> WordPiece examples framed by ``[CLS]``/``[SEP]``, first piece labelled, later pieces ``X``.

A sentence that does not fit ``max_seq_length`` becomes several examples, cut between words, and every
example records the raw sentence and the words it covers, so no word is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data_processing.ner_raw import Sentence
from modelzoo.common.errors import DataFileError
from modelzoo.data.csv_layout import NO_WORD
from modelzoo.data.labels import CLS_LABEL, CONTINUATION_LABEL, SEP_LABEL
from modelzoo.data.vocab import CLS_TOKEN, SEP_TOKEN


@dataclass(slots=True)
class Example:
    """One model input: pieces and labels aligned, ``word_index[i]`` = word of the sentence piece i belongs to."""

    tokens: list[str]
    labels: list[str]
    sentence_index: int
    word_index: list[int]


def sentence_examples(
    sentence: Sentence,
    sentence_index: int,
    word_pieces: list[list[str]],
    max_seq_length: int,
    path: Path,
) -> list[Example]:
    """The examples of one sentence, greedily filled with whole words up to ``max_seq_length`` tokens.

    The sentence's labels go into the CSV as they are (entity types already stripped if asked).
    A word with more pieces than one example can hold is an error, never a truncation.
    """
    capacity = max_seq_length - 2
    examples: list[Example] = []
    tokens, piece_labels, word_index = [CLS_TOKEN], [CLS_LABEL], [NO_WORD]
    for index, (pieces, label) in enumerate(zip(word_pieces, sentence.labels, strict=True)):
        if len(pieces) > capacity:
            raise DataFileError(
                path,
                sentence.line_of(index),
                f"word {sentence.words[index]!r} has {len(pieces)} word pieces but an example of "
                f"max_seq_length {max_seq_length} holds at most {capacity}",
            )
        if len(tokens) - 1 + len(pieces) > capacity:
            examples.append(_close(tokens, piece_labels, word_index, sentence_index))
            tokens, piece_labels, word_index = [CLS_TOKEN], [CLS_LABEL], [NO_WORD]
        tokens.extend(pieces)
        piece_labels.append(label)
        piece_labels.extend([CONTINUATION_LABEL] * (len(pieces) - 1))
        word_index.extend([index] * len(pieces))
    examples.append(_close(tokens, piece_labels, word_index, sentence_index))
    return examples


def _close(tokens: list[str], labels: list[str], word_index: list[int], sentence_index: int) -> Example:
    return Example(tokens + [SEP_TOKEN], labels + [SEP_LABEL], sentence_index, word_index + [NO_WORD])
