"""What a head trains and scores on: the small interface the loop and the back-ends drive every head through.

A :class:`Task` builds the model, reads its splits, makes the batches of one rank, and collects
predictions into scores; the executors never know which head they run. Scores are per original
sequence or word whatever the packing: packed predictions are mapped back through the metadata the
readers put in every batch. The pieces every head's task shares live here.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Protocol, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from modelzoo.bert.config import BertConfig
from modelzoo.common.distributed import DistContext
from modelzoo.data.batching import build_loader
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.data.params import InputParams
from modelzoo.data.vocab import check_label_count


class RunSections(Protocol):
    """The params sections a task reads (a :class:`~modelzoo.params.params.Params` has them)."""

    model: BertConfig
    train_input: Optional[InputParams]
    eval_input: Optional[InputParams]


class PredictionCollector(Protocol):
    def add(self, batch: Dict[str, torch.Tensor], logits: torch.Tensor) -> None: ...

    def finish(self, context: DistContext) -> Optional[dict]:
        """Scores on rank 0 (None elsewhere), from the predictions of every rank."""


class Task(Protocol):
    model_input_keys: Tuple[str, ...]

    def build_model(self) -> nn.Module: ...

    def dataset(self, section: str):
        """The parsed split of ``section`` (map-style: one example dict per index), read once."""

    def dataloader(self, section: str, context: DistContext, epoch: int = 0) -> DataLoader: ...

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        """Real sequences in a batch (a packed row holds several): throughput is never counted in packs."""

    def collector(self, complete: bool = True) -> PredictionCollector:
        """``complete``: the whole eval split will be seen, so check every raw word is scored."""


def count_real_tokens(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Non-padding tokens of a batch (packed or not): what throughput is reported in."""
    return (batch["attention_mask"] != 0).sum()


def count_loss_positions(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Positions the loss averages over: labels that are not ignored, where the loss mask (if any) is set."""
    counted = batch["labels"] != IGNORE_LABEL
    if "loss_mask" in batch:
        counted &= batch["loss_mask"] != 0
    return counted.sum()


def gather_parts(parts: Dict[str, List[np.ndarray]], context: DistContext) -> Optional[Dict[str, np.ndarray]]:
    """Every rank's collected arrays, concatenated per key in rank order, on rank 0 (None elsewhere)."""
    local = {key: np.concatenate(arrays) if arrays else None for key, arrays in parts.items()}
    gathered = context.gather_objects(local)
    if not context.is_main:
        return None
    return {
        key: np.concatenate([part[key] for part in gathered if part[key] is not None] or [np.zeros(0, np.int64)])
        for key in parts
    }


class SplitTask:
    """The shared half of a task: reads each split once per run (then reused every epoch), checks its
    labels against the model, and serves its batches. A head's task adds ``read_split``, the model,
    the sequence count and the collector."""

    def __init__(self, params: RunSections) -> None:
        self.params = params
        self._datasets: dict = {}

    def read_split(self, section: str):
        raise NotImplementedError

    def input_params(self, section: str) -> InputParams:
        return getattr(self.params, section)

    def dataset(self, section: str):
        if section not in self._datasets:
            dataset = self.read_split(section)
            check_label_count(dataset.label_vocab_file, dataset.label2id, self.params.model.num_classes)
            self._datasets[section] = dataset
        return self._datasets[section]

    def dataloader(self, section: str, context: DistContext, epoch: int = 0) -> DataLoader:
        return build_loader(self.dataset(section), self.input_params(section), context.rank, context.world_size, epoch)
