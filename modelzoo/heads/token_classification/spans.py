"""IOB2 word tags -> entity spans ``(type, start_word, stop_word)``.

Rule (seqeval's default, conlleval's): a ``B-T`` starts an entity; an ``I-T`` continues the entity
before it if that one has type T, and otherwise starts a new entity of type T. Prediction keeps
such a stray ``I`` as an entity rather than hiding a word the model tagged as one; the strict
IOB2 scoring of evaluation (``modelzoo.metrics``) would not count it. Untyped tags (``B``, ``I``)
give the type ``ENTITY``, as in the evaluation tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from modelzoo.data.labels import UNTYPED_ENTITY


@dataclass(frozen=True)
class Span:
    """Words ``start..stop-1`` form one entity of ``type``."""

    type: str
    start: int
    stop: int


def tag_parts(tag: str) -> Tuple[str, Optional[str]]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"I"`` -> ``("I", "ENTITY")``; ``"O"`` (or anything else) -> ``("O", None)``."""
    head, _, tail = tag.partition("-")
    if head in ("B", "I"):
        return head, tail or UNTYPED_ENTITY
    return "O", None


def entity_spans(tags: List[str]) -> List[Span]:
    """The entities of one sentence's tags, in order."""
    spans: List[Span] = []
    current: Optional[Tuple[str, int]] = None  # (type, start) of the open entity
    for index, tag in enumerate(tags):
        head, entity_type = tag_parts(tag)
        continues = head == "I" and current is not None and current[0] == entity_type
        if current is not None and not continues:
            spans.append(Span(current[0], current[1], index))
            current = None
        if head == "B" or (head == "I" and not continues):
            current = (entity_type, index)
    if current is not None:
        spans.append(Span(current[0], current[1], len(tags)))
    return spans
