"""Prediction's rows with document context and overlap: the training rule applied to raw text.

A line becomes its core rows: the whole line when it fits in one row (as the CSV writer cuts a
sentence for training), else consecutive cores of :func:`core_capacity` pieces, cut by the shared
window rule (:mod:`modelzoo.data.windows`). Each core is then framed with up to ``context_tokens``
pieces of its neighbours by :func:`modelzoo.data.document_context.add_document_context`, the rule
that framed the training examples: the neighbours are the line's other cores and, with
``--input_format documents``, the other lines of its document. A long line is thus tagged in
windows that overlap by the context size, and each word is read only at its core, the one window
where it has its full context on both sides (in any other window it sits in the context margin,
nearer an edge). Every word has exactly one core, so it is tagged exactly once.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from modelzoo.data.document_context import add_document_context


def core_capacity(capacity: int, context_tokens: int) -> int:
    """Pieces of a long line's core: what a row's ``capacity`` leaves after ``context_tokens`` on each
    side, but at least half the row (a context as large as the row would leave cores of a few words)."""
    return max(capacity - 2 * context_tokens, capacity // 2, 1)


def frame_rows(
    ids: List[List[int]], first_pieces: List[List[int]], documents: List[int], context_tokens: int,
    max_sequence_length: int,
) -> Tuple[List[List[int]], List[List[int]]]:
    """Rows ``[CLS] core [SEP]`` (consecutive rows of one document share its number) framed with context.

    ``first_pieces[i]``: the positions in row ``i`` that label a word. Returns the framed rows' ids
    and the new positions of those same first pieces (context pieces label nothing).
    """
    lengths = np.asarray([len(row) for row in ids], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    is_first = np.zeros(int(lengths.sum()), dtype=bool)
    for start, positions in zip(starts, first_pieces):
        is_first[start + np.asarray(positions, dtype=np.int64)] = True
    framed, new_lengths, _ = add_document_context(
        {"ids": np.concatenate([np.asarray(row, dtype=np.int64) for row in ids]), "first": is_first},
        lengths, np.asarray(documents), context_tokens, max_sequence_length, {"first": False},
    )
    cuts = np.cumsum(new_lengths)[:-1]
    framed_ids = [row.tolist() for row in np.split(framed["ids"], cuts)]
    framed_first = [np.flatnonzero(row).tolist() for row in np.split(framed["first"], cuts)]
    return framed_ids, framed_first
