"""The sentence-window rule: how a sentence's word pieces are cut into model rows.

One rule for the CSV writer (training and evaluation data) and for prediction on raw text, so a
model is served the same cuts it was scored with. Windows are consecutive and do not overlap, and
whole words are kept together whenever they fit. A word with more pieces than a row holds is never
dropped nor truncated: it starts a window of its own and continues over as many windows as it needs
(its first piece carries the word's label, the rest are continuation pieces), and the words after
it fill the remainder of its last window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List


@dataclass(frozen=True)
class PieceSpan:
    """Pieces ``[start, stop)`` of word ``word``: the part of that word one window holds."""

    word: int
    start: int
    stop: int

    @property
    def holds_first_piece(self) -> bool:
        """Whether this span carries the word's label (a word is labelled at its first piece)."""
        return self.start == 0


def sentence_windows(piece_counts: List[int], capacity: int) -> List[List[PieceSpan]]:
    """The windows of one sentence, in order, each at most ``capacity`` pieces; every piece once.

    ``piece_counts[i]`` is the number of pieces of word ``i`` (at least 1). An empty sentence has
    no window.
    """
    if capacity < 1:
        raise ValueError(f"a window must hold at least one word piece, got capacity {capacity}")
    windows: List[List[PieceSpan]] = []
    current: List[PieceSpan] = []
    used = 0
    for word, count in enumerate(piece_counts):
        if count < 1:
            raise ValueError(f"word {word} has {count} pieces; every word has at least one")
        if used + count > capacity and current:
            windows.append(current)
            current, used = [], 0
        start = 0
        while count - start > capacity:  # a word longer than a whole window fills windows of its own
            windows.append([PieceSpan(word, start, start + capacity)])
            start += capacity
        current.append(PieceSpan(word, start, count))
        used += count - start
    if current:
        windows.append(current)
    return windows


def count_split_words(piece_counts: List[int], capacity: int) -> int:
    """How many words :func:`sentence_windows` spreads over more than one window."""
    return sum(count > capacity for count in piece_counts)
