"""The label vocabulary seen through IOB2 eyes: every label id becomes a prefix (O, B, I) and a type.

Scoring works on integer arrays, so the string parsing is done once per vocabulary here rather than
once per word. Special labels of the CSV format ([PAD], X, [CLS], [SEP]) can be predicted by the
model at a word's first piece; they are not entities, so they read as O. Untyped labels (the BLURB
vocabulary B, I, O) form a single entity type, reported as ``ENTITY`` (seqeval calls it ``_``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

PAD_LABEL = "[PAD]"
CONTINUATION_LABEL = "X"
CLS_LABEL = "[CLS]"
SEP_LABEL = "[SEP]"
OUTSIDE_LABEL = "O"
# Closing the label vocab after the data's labels, in this order (the Cerebras layout).
FRAME_LABELS = (CONTINUATION_LABEL, CLS_LABEL, SEP_LABEL)
# Labels of the CSV format that are no entity: predicted at a word's first piece, they read as O.
NON_ENTITY_LABELS = frozenset({PAD_LABEL, *FRAME_LABELS})
UNTYPED_ENTITY = "ENTITY"
# The label id a loss never counts (torch's cross_entropy ``ignore_index``): an empty sequence slot of a pack.
IGNORE_LABEL = -100

OUTSIDE, BEGIN, INSIDE = 0, 1, 2
_PREFIX_CODES = {"B": BEGIN, "I": INSIDE}


@dataclass(frozen=True)
class LabelVocab:
    """Per label id: its IOB2 prefix code, entity-type index (-1 for O and special labels), and
    whether it is a special label of the CSV format."""

    labels: Tuple[str, ...]
    prefix: np.ndarray
    entity_type: np.ndarray
    special: np.ndarray
    types: Tuple[str, ...]

    @classmethod
    def from_labels(cls, id_to_label: Sequence[str]) -> LabelVocab:
        """Parse ``id_to_label`` (``B-Chemical``, ``I``, ``O``, ``X``...); raise ValueError on other schemes."""
        types: Dict[str, int] = {}
        prefix = np.zeros(len(id_to_label), dtype=np.int8)
        entity_type = np.full(len(id_to_label), -1, dtype=np.int64)
        for label_id, label in enumerate(id_to_label):
            if label == OUTSIDE_LABEL or label in NON_ENTITY_LABELS:
                continue
            head, _, tail = label.partition("-")
            if head not in _PREFIX_CODES or (not tail and label not in _PREFIX_CODES):
                raise ValueError(
                    f"label {label!r} is not IOB2 (expected O, B, I, B-<type>, I-<type> or one of "
                    f"{sorted(NON_ENTITY_LABELS)})"
                )
            type_name = tail or UNTYPED_ENTITY
            prefix[label_id] = _PREFIX_CODES[head]
            entity_type[label_id] = types.setdefault(type_name, len(types))
        special = np.array([label in NON_ENTITY_LABELS for label in id_to_label], dtype=bool)
        return cls(tuple(id_to_label), prefix, entity_type, special, tuple(types))

    def entity_label_ids(self) -> np.ndarray:
        """Ids of the B/I labels (typed or not): the labels the token-level macro F1 averages over."""
        return np.flatnonzero(self.prefix != OUTSIDE)

    def word_tags(self) -> np.ndarray:
        """Label strings by id as words are scored: a special label reads as ``O``."""
        return np.where(self.special, "O", np.asarray(self.labels, dtype=object))
