"""From per-piece model outputs back to the words of the raw file.

Entity scores are defined over the words of the raw sentences, not over WordPiece tokens: a word
takes the prediction at its FIRST piece (the first position where its word index appears), and a
long sentence split into several examples is put back together. The core works on flat per-token
arrays (sentence index, word index, gold id, predicted id), so padded batches (see
:func:`flatten_examples`) and packed batches (flatten each pack the same way) share one path.
Every word of every sentence must be found; a missing word is an error, never a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class WordLabels:
    """Word-level labels of whole sentences, flat and in (sentence, word) order.

    ``sentence_ids[k]`` is the raw sentence index of the k-th sentence present, whose words occupy
    ``gold[offsets[k]:offsets[k + 1]]`` (and the same slice of ``pred``).
    """

    sentence_ids: np.ndarray
    offsets: np.ndarray
    gold: np.ndarray
    pred: np.ndarray

    @property
    def sentence_starts(self) -> np.ndarray:
        """Boolean per word: True at the first word of each sentence."""
        starts = np.zeros(len(self.gold), dtype=bool)
        starts[self.offsets[:-1]] = True
        return starts

    def tags(self, tag_by_id: np.ndarray, ids: np.ndarray) -> List[List[str]]:
        """``ids`` (``self.gold`` or ``self.pred``) as one list of tag strings per sentence."""
        return [chunk.tolist() for chunk in np.split(tag_by_id[ids], self.offsets[1:-1])]


def flatten_examples(
    word_index: np.ndarray, sentence_index: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Padded examples ``[n, seq]`` (``sentence_index`` is ``[n]``) as flat per-token arrays.

    Returns (sentence index, word index, gold id, predicted id) per token, ready for
    :func:`first_piece_words`. Accepts numpy arrays or CPU tensors.
    """
    word_index = np.asarray(word_index)
    sentence_per_token = np.broadcast_to(np.asarray(sentence_index)[:, None], word_index.shape)
    return (
        sentence_per_token.ravel(),
        word_index.ravel(),
        np.asarray(labels).ravel(),
        np.asarray(predictions).ravel(),
    )


def first_piece_words(
    sentence_index: np.ndarray,
    word_index: np.ndarray,
    gold_ids: np.ndarray,
    pred_ids: np.ndarray,
    words_per_sentence: Optional[Sequence[int]] = None,
) -> WordLabels:
    """Word-level gold and predicted ids from flat per-token arrays, at each word's first piece.

    Tokens with ``word_index < 0`` ([CLS], [SEP], padding) are skipped. Raises ValueError if a
    sentence's word indices have a gap (a word was dropped); with ``words_per_sentence`` (word count
    of every raw sentence, by sentence index) also if a sentence, or a sentence's last words, are absent.
    """
    sentence_index, word_index, gold_ids, pred_ids = (
        np.asarray(a).ravel() for a in (sentence_index, word_index, gold_ids, pred_ids)
    )
    if not len(sentence_index) == len(word_index) == len(gold_ids) == len(pred_ids):
        raise ValueError("sentence_index, word_index, gold and pred must have one entry per token")
    is_word = word_index >= 0
    sentence_of_token = sentence_index[is_word].astype(np.int64)
    word_of_token = word_index[is_word].astype(np.int64)
    word_span = int(word_of_token.max()) + 1 if len(word_of_token) else 1
    keys, first_token = np.unique(sentence_of_token * word_span + word_of_token, return_index=True)
    sentence_of_word, word_number = np.divmod(keys, word_span)

    offsets = np.flatnonzero(np.diff(sentence_of_word, prepend=-1)).astype(np.int64)
    sentence_ids = sentence_of_word[offsets]
    offsets = np.append(offsets, len(keys))
    expected_number = np.arange(len(keys)) - np.repeat(offsets[:-1], np.diff(offsets))
    gaps = np.flatnonzero(word_number != expected_number)
    if len(gaps):
        first = gaps[0]
        raise ValueError(
            f"sentence {sentence_of_word[first]}: word {expected_number[first]} has no token "
            "(a word was dropped between the raw file and the examples)"
        )
    if words_per_sentence is not None:
        _check_complete(sentence_ids, np.diff(offsets), np.asarray(words_per_sentence))

    token_ids = np.flatnonzero(is_word)[first_token]
    return WordLabels(sentence_ids, offsets, gold_ids[token_ids], pred_ids[token_ids])


def _check_complete(sentence_ids: np.ndarray, word_counts: np.ndarray, words_per_sentence: np.ndarray) -> None:
    """Every raw sentence present with all its words (the raw file is the reference)."""
    unknown = sentence_ids[sentence_ids >= len(words_per_sentence)]
    if len(unknown):
        raise ValueError(f"sentence {unknown[0]} is beyond the {len(words_per_sentence)} sentences of the raw file")
    missing = np.setdiff1d(np.arange(len(words_per_sentence)), sentence_ids)
    if len(missing):
        raise ValueError(f"{len(missing)} sentences have no tokens at all, the first is sentence {missing[0]}")
    short = np.flatnonzero(word_counts != words_per_sentence[sentence_ids])
    if len(short):
        sentence = sentence_ids[short[0]]
        raise ValueError(
            f"sentence {sentence}: {word_counts[short[0]]} words found, the raw file has "
            f"{words_per_sentence[sentence]}"
        )
