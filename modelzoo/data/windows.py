"""Sentences longer than one model row become consecutive windows, cut only between words.

The windows do not overlap: a sentence is split exactly as ``write_csv_ner.py`` splits it for
training and evaluation (greedy, whole words), so predictions see the context the model was
scored with, and every word is labelled exactly once.
"""

from __future__ import annotations


def word_windows(piece_counts: list[int], capacity: int) -> list[tuple[int, int]]:
    """``[start, stop)`` word ranges, in order, each holding at most ``capacity`` word pieces.

    A single word with more pieces than ``capacity`` gets a window of its own; the caller keeps
    only its first ``capacity`` pieces, which is harmless because a word's label is read at its
    first piece. Raw text is never rejected or dropped for being long.
    """
    if capacity < 1:
        raise ValueError(f"a window must hold at least one word piece, got capacity {capacity}")
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for index, count in enumerate(piece_counts):
        count = min(count, capacity)
        if used + count > capacity:
            windows.append((start, index))
            start, used = index, 0
        used += count
    if start < len(piece_counts):
        windows.append((start, len(piece_counts)))
    return windows
