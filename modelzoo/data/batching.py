"""Batches of a parsed split for one rank: what every reader and back-end shares.

A reader holds its split as int32 arrays and returns a whole batch for an array of row indices
(one fancy-index per feature), so a batch is a sampler's index array in, a dict of tensors out:
no per-example collation. The order of an epoch depends only on ``(shuffle_seed, epoch)``, which is
what lets a checkpoint's data position mean the same on every back-end (the IPU's loader walks the
same order) and a resumed run start mid-epoch on the same batches.
"""

from __future__ import annotations

from typing import Dict, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from modelzoo.data.params import InputParams


class ShardedBatchSampler(Sampler):
    """Batches of example indices for one rank: ranks get disjoint shares, the same for a given (seed, epoch).

    With ``drop_last`` (training) the (optionally shuffled) order is cut into global batches of
    ``batch_size * world_size`` and each rank takes its slice of every one, so all ranks run the
    same number of full batches (DDP needs that) and the run equals one process with the global
    batch. Without it (evaluation) the order is cut into ``world_size`` contiguous shares: no
    example is dropped, and shares differ by at most one example.

    The indices are rows, whatever a row holds: with packing, ``batch_size`` counts packs and
    ``drop_last`` drops up to ``batch_size * world_size - 1`` whole packs per epoch (several
    sequences each; a different set every epoch when shuffling). Evaluation never drops any.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        epoch: int = 0,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def rank_indices(self) -> np.ndarray:
        """The examples of this rank for the current epoch, in the order they are served."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_examples)
        else:
            order = np.arange(self.num_examples)
        if self.drop_last:
            # Whole global batches only, each split across the ranks in rank order: step k of a run
            # on N ranks sees exactly the examples of step k of one process with N times the batch.
            global_batch = self.batch_size * self.world_size
            order = order[: self.num_examples - self.num_examples % global_batch]
            return order.reshape(-1, self.world_size, self.batch_size)[:, self.rank].ravel()
        return np.array_split(order, self.world_size)[self.rank]

    def __iter__(self) -> Iterator[np.ndarray]:
        indices = self.rank_indices()
        stop = len(indices) - len(indices) % self.batch_size if self.drop_last else len(indices)
        for start in range(0, stop, self.batch_size):
            yield indices[start : start + self.batch_size]

    def __len__(self) -> int:
        count = len(self.rank_indices())
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)


def numpy_to_torch(batch: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """Batch collation: the dataset already returns whole batches, so only wrap them as tensors (no copy)."""
    return {name: torch.from_numpy(values) for name, values in batch.items()}


def build_loader(
    dataset: Dataset, params: InputParams, rank: int = 0, world_size: int = 1, epoch: int = 0, *, pin_memory: bool = False
) -> DataLoader:
    """The batches of ``dataset`` for one rank, as the input section ``params`` asks; workers each serve
    whole batches in turn. Keep the loader and call ``loader.sampler.set_epoch(e)`` to reshuffle."""
    sampler = ShardedBatchSampler(
        len(dataset), params.batch_size, shuffle=params.shuffle, seed=params.shuffle_seed,
        rank=rank, world_size=world_size, drop_last=params.drop_last, epoch=epoch,
    )
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=params.num_workers,
        collate_fn=numpy_to_torch,
        pin_memory=pin_memory,
        # Its own generator for worker seeds: drawing them from the global RNG would shift dropout's
        # random stream whenever an epoch starts, and a resumed run starts its loader mid-epoch.
        generator=torch.Generator().manual_seed(params.shuffle_seed),
    )
