"""Document context (FLERT, Schweter & Akbik 2020): an example framed by its document's neighbouring pieces.

An example ``[CLS] own pieces [SEP]`` becomes ``[CLS] left context, own pieces, right context [SEP]``:
up to ``context_tokens`` pieces on each side, taken from the pieces of the examples before and
after it in the same document (the document's piece stream, so several short neighbours can fill
one side), never from another document. The context is added when a split is read, so one CSV
folder serves any context size, and the example's own pieces are never cut for it: the context
only fills the room ``max_sequence_length`` leaves. When that room is short, each side gets half
of it, and a side that needs less than its half leaves the rest to the other; the pieces kept are
the ones nearest the example. Context positions belong to no word and are never trained on nor
scored (the reader gives them no label, no loss and word index -1).

The same rule frames prediction's rows (:mod:`modelzoo.heads.token_classification.tagger`), so a
model is served the context it was trained with.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


def context_sizes(
    available_left: np.ndarray, available_right: np.ndarray, room: np.ndarray, context_tokens: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Pieces of context taken on each side, per example: at most ``context_tokens`` and what the
    document holds on that side, together at most ``room`` (half each; an unused half goes to the other side)."""
    want_left = np.minimum(available_left, context_tokens)
    want_right = np.minimum(available_right, context_tokens)
    left = np.minimum(want_left, np.maximum(room // 2, room - want_right))
    right = np.minimum(want_right, room - left)
    return left, right


def document_spans(documents: np.ndarray, body_starts: np.ndarray, body_ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Where each example's document starts and ends in the concatenated piece stream.

    Consecutive examples with the same document number are one document; a number that comes back
    after another is a new document (context follows the file's order, never jumps).
    """
    starts_document = np.ones(len(documents), dtype=bool)
    starts_document[1:] = documents[1:] != documents[:-1]
    run = np.cumsum(starts_document) - 1
    ends_document = np.append(starts_document[1:], True)
    return body_starts[starts_document][run], body_ends[ends_document][run]


def add_document_context(
    columns: Dict[str, np.ndarray],
    lengths: np.ndarray,
    documents: np.ndarray,
    context_tokens: int,
    max_sequence_length: int,
    context_fill: Dict[str, int],
) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every example framed with its document context.

    ``columns`` are flat per-position arrays (token ids, labels, word indices...) of the examples one
    after the other, each example starting with [CLS] and ending with [SEP]; ``lengths`` their
    lengths, ``documents`` their document numbers. A context position copies the value of the piece
    it shows, except in the columns of ``context_fill``, where it takes the value given (no label, no
    word). Returns the new flat columns, the new lengths and a flat boolean array, True at context
    positions.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    ends = starts + lengths
    is_body = np.ones(int(lengths.sum()), dtype=bool)
    is_body[starts] = False
    is_body[ends - 1] = False
    body_ends = np.cumsum(lengths - 2)
    body_starts = body_ends - (lengths - 2)  # where each example's own pieces sit in the documents' piece streams
    document_starts, document_ends = document_spans(np.asarray(documents), body_starts, body_ends)
    left, right = context_sizes(
        body_starts - document_starts, document_ends - body_ends, max_sequence_length - lengths, context_tokens
    )
    new_lengths = lengths + left + right
    new_ends = np.cumsum(new_lengths)
    new_starts = new_ends - new_lengths
    # Row i is its [CLS], the stream's pieces [body_start - left, body_end + right), its [SEP].
    inner_lengths = new_lengths - 2
    inner_offset = np.arange(int(inner_lengths.sum())) - np.repeat(np.cumsum(inner_lengths) - inner_lengths, inner_lengths)
    source = np.repeat(body_starts - left, inner_lengths) + inner_offset
    is_context = (source < np.repeat(body_starts, inner_lengths)) | (source >= np.repeat(body_ends, inner_lengths))
    is_inner = np.ones(int(new_lengths.sum()), dtype=bool)
    is_inner[new_starts] = False
    is_inner[new_ends - 1] = False
    context_mask = np.zeros(len(is_inner), dtype=bool)
    context_mask[is_inner] = is_context
    framed = {}
    for name, column in columns.items():
        column = np.asarray(column)
        out = np.empty(len(is_inner), dtype=column.dtype)
        out[new_starts] = column[starts]
        out[new_ends - 1] = column[ends - 1]
        inner = column[is_body][source]
        if name in context_fill:
            inner[is_context] = context_fill[name]
        out[is_inner] = inner
        framed[name] = out
    return framed, new_lengths, context_mask
