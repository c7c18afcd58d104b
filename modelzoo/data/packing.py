"""Histogram packing (Krell et al. 2021, arXiv 2107.02027) and the layout of packed examples.

Padding every sequence to ``max_sequence_length`` wastes most of the compute on short data (SST-2
sentences average 13 WordPiece tokens). Packing concatenates several sequences into one row; the
model keeps them apart with a *sequence-index* attention mask (1..k per sequence, 0 for padding),
from which it builds the block-diagonal mask ``m[:, :, None] == m[:, None, :]`` (a token attends to its
own sequence; padding, index 0, only to padding), and with position ids that restart at every sequence.

The packing problem is solved on the *histogram* of sequence lengths, not on the sequences: the
result is a strategy, a list of ``(pack length-combination, repeat count)``, e.g.
``[((64, 60), 1200), ((30, 30, 30, 30), 80), ...]``. Its cost depends on ``max_sequence_length``,
not on the number of sequences, so a million lengths are planned in well under a second. Concrete
sequences are then dealt into the packs by :func:`assign_sequences` (seeded, so every epoch may pair
different sequences while the number of packs stays fixed).

Both algorithms walk the histogram from the longest length to the shortest:

* SPFHP (shortest-pack-first): every sequence goes into the open pack with the *most* room left that
  still takes it (worst fit decreasing), one sequence at a time.
* LPFHP (longest-pack-first): every sequence goes into the open pack with the *least* room left that
  still takes it (best fit decreasing), and as many sequences of that length as fit are put into the
  pack at once.

A pack is closed when it is full or holds ``max_sequences_per_pack`` sequences.

This module plans packs and deals sequences into them; :mod:`modelzoo.data.packed_rows` lays the
dealt sequences out as model rows, one layout per head. Pure numpy: the offline tools
(``data_processing/packing.py``, the benchmark) and the readers in ``modelzoo/data`` share it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

Strategy = List[Tuple[Tuple[int, ...], int]]
"""``[(lengths of the sequences in one pack, how many such packs), ...]``."""

Algorithm = Literal["spfhp", "lpfhp"]

def histogram(lengths: Union[Sequence[int], np.ndarray], max_sequence_length: int) -> np.ndarray:
    """``counts[n]`` = how many sequences have length ``n``, for n in 0..max_sequence_length.

    Indexed by the length itself (``counts[0]`` is always 0), so no off-by-one between lengths and
    bins. Raises ValueError for a length outside 1..max_sequence_length: a sequence that does not
    fit must be split or truncated before packing, never dropped silently.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be one-dimensional, got shape {lengths.shape}")
    out_of_range = np.flatnonzero((lengths < 1) | (lengths > max_sequence_length))
    if out_of_range.size:
        first = int(out_of_range[0])
        raise ValueError(
            f"sequence {first} has length {int(lengths[first])}, outside 1..{max_sequence_length} "
            f"({out_of_range.size} such sequences)"
        )
    return np.bincount(lengths, minlength=max_sequence_length + 1)


def spfhp(counts: np.ndarray, max_sequence_length: int, max_sequences_per_pack: int) -> Strategy:
    """Shortest-pack-first histogram packing: worst fit decreasing, one sequence at a time.

    ``counts`` is the output of :func:`histogram`.
    """
    return _histogram_pack(counts, max_sequence_length, max_sequences_per_pack, best_fit=False, fill=False)


def lpfhp(counts: np.ndarray, max_sequence_length: int, max_sequences_per_pack: int) -> Strategy:
    """Longest-pack-first histogram packing: best fit decreasing, as many equal lengths as fit at once.

    ``counts`` is the output of :func:`histogram`.
    """
    return _histogram_pack(counts, max_sequence_length, max_sequences_per_pack, best_fit=True, fill=True)


ALGORITHMS = {"spfhp": spfhp, "lpfhp": lpfhp}


def _histogram_pack(
    counts: np.ndarray, max_sequence_length: int, max_sequences_per_pack: int, *, best_fit: bool, fill: bool
) -> Strategy:
    """The shared walk of SPFHP and LPFHP over the histogram, longest length first.

    Open packs are grouped by the room they have left: ``open_packs[room]`` is a stack of
    ``(lengths, count)``, i.e. ``count`` identical packs. Whole groups move at once, so the work
    grows with the number of distinct pack shapes, not with the number of sequences.
    """
    if max_sequences_per_pack < 1:
        raise ValueError(f"max_sequences_per_pack must be at least 1, got {max_sequences_per_pack}")
    if len(counts) != max_sequence_length + 1:
        raise ValueError(f"histogram has {len(counts)} bins, expected max_sequence_length + 1 = {max_sequence_length + 1}")
    open_packs: List[List[Tuple[Tuple[int, ...], int]]] = [[] for _ in range(max_sequence_length)]
    has_open = np.zeros(max_sequence_length, dtype=bool)
    closed: Strategy = []

    def place(lengths: Tuple[int, ...], count: int, room: int) -> None:
        if room == 0 or len(lengths) == max_sequences_per_pack:
            closed.append((lengths, count))
        else:
            open_packs[room].append((lengths, count))
            has_open[room] = True

    for length in range(max_sequence_length, 0, -1):
        remaining = int(counts[length])
        while remaining:
            rooms = np.flatnonzero(has_open[length:])
            if rooms.size == 0:  # fits in no open pack: open new ones
                copies = min(max_sequence_length // length, max_sequences_per_pack, remaining) if fill else 1
                new_packs = remaining // copies
                place((length,) * copies, new_packs, max_sequence_length - copies * length)
                remaining -= new_packs * copies
                continue
            room = length + int(rooms[0] if best_fit else rooms[-1])
            lengths, count = open_packs[room].pop()
            has_open[room] = bool(open_packs[room])
            copies = min(room // length, max_sequences_per_pack - len(lengths), remaining) if fill else 1
            used = min(count, remaining // copies)
            if count > used:
                open_packs[room].append((lengths, count - used))
                has_open[room] = True
            place(lengths + (length,) * copies, used, room - copies * length)
            remaining -= used * copies

    for groups in open_packs:
        closed.extend(groups)
    return closed


@dataclasses.dataclass(frozen=True)
class PackingStats:
    """How much a packing saves, with the definitions of Krell et al. (2021).

    Baseline: one sequence per row, padded to ``max_sequence_length``.

    * ``efficiency`` = real tokens / token slots of the packed rows
      = sum(lengths) / (num_packs * max_sequence_length).
    * ``theoretical_speedup_bound`` = padded slots / real tokens
      = num_sequences * max_sequence_length / sum(lengths): what a perfect packing (no padding at all)
      would save; the paper writes it 1 / (1 - padding fraction of the unpacked data).
    * ``achieved_speedup`` = rows before / rows after = num_sequences / num_packs.
    * ``average_packing_factor`` = sequences per pack, also num_sequences / num_packs: against a
      one-sequence-per-row baseline it is the achieved speed-up by definition; both are printed
      because the literature quotes both.
    * efficiency = achieved_speedup / theoretical_speedup_bound.
    * ``runtime_s``: wall time of histogram + strategy.
    """

    num_sequences: int
    num_packs: int
    num_tokens: int
    max_sequence_length: int
    runtime_s: float

    @property
    def efficiency(self) -> float:
        return self.num_tokens / (self.num_packs * self.max_sequence_length)

    @property
    def theoretical_speedup_bound(self) -> float:
        return self.num_sequences * self.max_sequence_length / self.num_tokens

    @property
    def achieved_speedup(self) -> float:
        return self.num_sequences / self.num_packs

    @property
    def average_packing_factor(self) -> float:
        return self.num_sequences / self.num_packs

    def summary(self) -> str:
        """The four figures and the runtime, one per line, for logs and the command line."""
        return (
            f"packing efficiency (real tokens / slots): {self.efficiency:.2%}\n"
            f"theoretical speed-up bound: {self.theoretical_speedup_bound:.3f}\n"
            f"achieved speed-up (rows before / after): {self.achieved_speedup:.3f}\n"
            f"average packing factor (sequences per pack): {self.average_packing_factor:.3f}\n"
            f"runtime: {self.num_sequences} sequences into {self.num_packs} packs in {self.runtime_s:.4f} s"
        )


def plan_packing(
    lengths: Union[Sequence[int], np.ndarray],
    max_sequence_length: int,
    max_sequences_per_pack: int,
    algorithm: Algorithm,
) -> Tuple[Strategy, PackingStats]:
    """Histogram + strategy for ``lengths``, timed; the usual entry point."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown packing algorithm {algorithm!r} (choose from {', '.join(ALGORITHMS)})")
    start = time.perf_counter()
    counts = histogram(lengths, max_sequence_length)
    strategy = ALGORITHMS[algorithm](counts, max_sequence_length, max_sequences_per_pack)
    runtime_s = time.perf_counter() - start
    stats = PackingStats(
        num_sequences=int(counts.sum()),
        num_packs=sum(count for _, count in strategy),
        num_tokens=int(np.dot(counts, np.arange(max_sequence_length + 1))),
        max_sequence_length=max_sequence_length,
        runtime_s=runtime_s,
    )
    return strategy, stats


def plan_classification_packing(
    lengths: Union[Sequence[int], np.ndarray],
    max_sequence_length: int,
    max_sequences_per_pack: int,
    algorithm: Algorithm,
) -> Tuple[Strategy, PackingStats]:
    """:func:`plan_packing` for the packed-classifier layout, where every [CLS] moves to the row's end.

    A pack of k sequences needs sum(length - 1) body positions plus the S = max_sequences_per_pack
    [CLS] slots reserved at the end of the row, whatever k is. So the strategy packs the body lengths
    (``lengths - 1``) into ``max_sequence_length - S`` positions; pass the same body lengths to
    :func:`assign_sequences`. The statistics count real tokens ([CLS] included) in full rows of
    ``max_sequence_length``.
    """
    if not 1 <= max_sequences_per_pack < max_sequence_length:
        raise ValueError(
            f"max_sequences_per_pack must be in 1..{max_sequence_length - 1} (below max_sequence_length), "
            f"got {max_sequences_per_pack}"
        )
    lengths = np.asarray(lengths, dtype=np.int64)
    strategy, body_stats = plan_packing(
        lengths - 1, max_sequence_length - max_sequences_per_pack, max_sequences_per_pack, algorithm
    )
    stats = dataclasses.replace(body_stats, num_tokens=int(lengths.sum()), max_sequence_length=max_sequence_length)
    return strategy, stats


def assign_sequences(
    lengths: Union[Sequence[int], np.ndarray],
    strategy: Strategy,
    max_sequences_per_pack: int,
    seed: Optional[int] = None,
) -> np.ndarray:
    """Deal concrete sequences into the packs of ``strategy``: ``[num_packs, max_sequences_per_pack]``.

    Entry ``[p, j]`` is the index (into ``lengths``) of the j-th sequence of pack p, -1 for an empty
    slot. Packs come in strategy order; within a length, sequences are taken in index order
    (``seed=None``) or in a seeded random order, so a new seed pairs different sequences while
    keeping the same packs. Raises ValueError when the strategy does not use every sequence exactly
    once.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
    else:
        shuffled = np.random.default_rng(seed).permutation(len(lengths))
        order = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    max_length = int(max((max(pack) for pack, _ in strategy), default=0))
    max_length = max(max_length, int(lengths.max(initial=0)))
    per_length = np.bincount(lengths, minlength=max_length + 1)
    cursor = np.concatenate(([0], np.cumsum(per_length)[:-1]))
    end = cursor + per_length
    num_packs = sum(count for _, count in strategy)
    packs = np.full((num_packs, max_sequences_per_pack), -1, dtype=np.int64)
    row = 0
    for pack_lengths, count in strategy:
        if len(pack_lengths) > max_sequences_per_pack:
            raise ValueError(f"pack {pack_lengths} holds more than {max_sequences_per_pack} sequences")
        for slot, length in enumerate(pack_lengths):
            if cursor[length] + count > end[length]:
                raise ValueError(f"strategy uses more sequences of length {length} than there are")
            packs[row : row + count, slot] = order[cursor[length] : cursor[length] + count]
            cursor[length] += count
        row += count
    if np.any(cursor != end):
        unused = int(np.flatnonzero(cursor != end)[0])
        raise ValueError(f"strategy leaves {int(end[unused] - cursor[unused])} sequences of length {unused} unpacked")
    return packs
