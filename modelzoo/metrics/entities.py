"""Entity-level counts with seqeval's strict IOB2 semantics, vectorised over all words at once.

seqeval (``mode='strict', scheme=IOB2``) walks every sentence token by token in Python, which is
slower than the forward passes it scores. Its rule is simple enough to express with array ops: an
entity is a ``B-T`` followed by the longest run of ``I-T`` of the same type T; an ``I`` that does not
continue such a run (``O I-T``, ``B-S I-T``) belongs to no entity, and entities never cross sentences.
An entity is identified by (start word, end word, type); a prediction is correct only if all three
match a gold entity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelzoo.data.labels import BEGIN, INSIDE, LabelVocab


@dataclass(frozen=True)
class EntityCounts:
    """Per entity type (indexed like ``LabelVocab.types``): gold, predicted and correct entities."""

    gold: np.ndarray
    predicted: np.ndarray
    correct: np.ndarray


def entity_keys(label_ids: np.ndarray, sentence_starts: np.ndarray, vocab: LabelVocab) -> np.ndarray:
    """One int64 key per strict-IOB2 entity in the flat word sequence ``label_ids``.

    ``sentence_starts`` is a boolean mask, True at the first word of every sentence. The key packs
    (start, end, type) so that set operations on keys compare whole entities; ``key % len(types)``
    gives back the type.
    """
    num_words = len(label_ids)
    prefix = vocab.prefix[label_ids]
    entity_type = vocab.entity_type[label_ids]
    # An I continues the word before it if that word is a B or I of the same type; O and special
    # labels have type -1, so the type test alone rules them out.
    continues = np.zeros(num_words, dtype=bool)
    continues[1:] = (prefix[1:] == INSIDE) & (entity_type[1:] == entity_type[:-1]) & ~sentence_starts[1:]
    starts = np.flatnonzero(prefix == BEGIN)
    boundaries = np.append(np.flatnonzero(~continues), num_words)
    ends = boundaries[np.searchsorted(boundaries, starts, side="right")]
    num_types = max(len(vocab.types), 1)
    return (starts.astype(np.int64) * (num_words + 1) + ends) * num_types + entity_type[starts]


def count_entities(
    gold_ids: np.ndarray, pred_ids: np.ndarray, sentence_starts: np.ndarray, vocab: LabelVocab
) -> EntityCounts:
    """Gold, predicted and exactly matched entities per type over the flat word sequences."""
    gold_keys = entity_keys(gold_ids, sentence_starts, vocab)
    pred_keys = entity_keys(pred_ids, sentence_starts, vocab)
    correct_keys = np.intersect1d(gold_keys, pred_keys, assume_unique=True)
    num_types = max(len(vocab.types), 1)

    def per_type(keys: np.ndarray) -> np.ndarray:
        return np.bincount(keys % num_types, minlength=num_types)[: len(vocab.types)]

    return EntityCounts(per_type(gold_keys), per_type(pred_keys), per_type(correct_keys))
