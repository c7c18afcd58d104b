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
from typing import Iterator, List


@dataclass(frozen=True)
class PieceSpan:
    """Pieces ``[start, stop)`` of word ``word``: the part of that word one window holds."""

    __slots__ = ("word", "start", "stop")  # a span per word: a long line has millions, no __dict__ each
    word: int
    start: int
    stop: int

    @property
    def holds_first_piece(self) -> bool:
        """Whether this span carries the word's label (a word is labelled at its first piece)."""
        return self.start == 0


def sentence_windows(piece_counts: List[int], capacity: int) -> Iterator[List[PieceSpan]]:
    """The windows of one sentence, in order, each at most ``capacity`` pieces; every piece once.

    ``piece_counts[i]`` is the number of pieces of word ``i`` (at least 1). An empty sentence has
    no window. The windows come one at a time, so a line of millions of words never holds them all.
    """
    if capacity < 1:
        raise ValueError(f"a window must hold at least one word piece, got capacity {capacity}")
    return _windows(piece_counts, capacity)


def _windows(piece_counts: List[int], capacity: int) -> Iterator[List[PieceSpan]]:
    current: List[PieceSpan] = []
    used = 0
    for word, count in enumerate(piece_counts):
        if count < 1:
            raise ValueError(f"word {word} has {count} pieces; every word has at least one")
        if used + count > capacity and current:
            yield current
            current, used = [], 0
        start = 0
        while count - start > capacity:  # a word longer than a whole window fills windows of its own
            yield [PieceSpan(word, start, start + capacity)]
            start += capacity
        current.append(PieceSpan(word, start, count))
        used += count - start
    if current:
        yield current


def count_split_words(piece_counts: List[int], capacity: int) -> int:
    """How many words :func:`sentence_windows` spreads over more than one window."""
    return sum(count > capacity for count in piece_counts)
