"""Sequence classification (SST-2 style): CSV folders of ``data_processing/write_csv_classifier.py``,
packed or not, scored as accuracy over every sequence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import ParamsError
from modelzoo.data.classifier_dataset import ClassifierDataset
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.heads.task import RunSections, SplitTask, gather_parts

_ACCURACY_KEEP = ("predictions", "labels", "sequence_index")


@dataclass
class AccuracyCollector:
    """Per-sequence predictions of the sequence classifier (empty slots skipped); accuracy at the end.

    ``num_sequences`` (the eval split's size, when it is seen whole) makes ``finish`` check that every
    sequence was scored exactly once, through the ``sequence_index`` the reader puts in each batch.
    """

    num_sequences: Optional[int]
    parts: Dict[str, List[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _ACCURACY_KEEP})

    def add(self, batch: Dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        labels = batch["labels"].flatten().cpu()
        real = labels != IGNORE_LABEL
        self.parts["predictions"].append(logits.argmax(-1).cpu()[real].numpy())
        self.parts["labels"].append(labels[real].numpy())
        self.parts["sequence_index"].append(batch["sequence_index"].flatten().cpu()[real].numpy())

    def finish(self, context: DistContext) -> Optional[dict]:
        merged = gather_parts(self.parts, context)
        if merged is None:
            return None
        if self.num_sequences is not None:
            seen = np.bincount(merged["sequence_index"], minlength=self.num_sequences)
            if len(seen) != self.num_sequences or np.any(seen != 1):
                wrong = int(np.flatnonzero(seen != 1)[0]) if np.any(seen != 1) else self.num_sequences
                raise ValueError(
                    f"eval sequence {wrong} was scored {int(seen[wrong]) if wrong < len(seen) else 'beyond the split'} "
                    f"times, not once: every one of the {self.num_sequences} must be scored exactly once"
                )
        total = len(merged["labels"])
        correct = int((merged["predictions"] == merged["labels"]).sum())
        accuracy = correct / total if total else 0.0
        table = f"accuracy {accuracy:.4f} ({correct} of {total} sequences correct)"
        return {"accuracy": accuracy, "correct": correct, "num_sequences": total, "table": table}


class SequenceClassificationTask(SplitTask):
    """Sentence classification (SST-2) on folders of ``data_processing/write_csv_classifier.py``.

    One model for packed and unpacked input: every row reserves ``model.max_sequences_per_pack``
    [CLS] slots at its end, which a packed section fills with up to that many sequences and an
    unpacked one with a single sequence (see :mod:`modelzoo.data.classifier_dataset`).
    """

    model_input_keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "labels")

    def __init__(self, params: RunSections, model_class: type) -> None:
        super().__init__(params)
        self.model_class = model_class
        self.slots = params.model.max_sequences_per_pack
        for section in ("train_input", "eval_input"):
            inputs = getattr(params, section)
            if inputs is not None and inputs.packing and inputs.max_sequences_per_pack != self.slots:
                raise ParamsError(
                    f"{section}.max_sequences_per_pack ({inputs.max_sequences_per_pack}) must equal "
                    f"model.max_sequences_per_pack ({self.slots}): the pooler reads that many [CLS] slots per row"
                )

    def read_split(self, section: str) -> ClassifierDataset:
        if self.input_params(section).context_tokens:
            raise ParamsError(f"{section}.context_tokens: document context is the token classifier's; this head has none")
        return ClassifierDataset.from_params(self.input_params(section), self.params.model.pad_token_id, self.slots)

    def build_model(self) -> nn.Module:
        if self.params.model.class_weights is not None:
            raise ParamsError("model.class_weights: the token classifier's option; this head has no class weights")
        return self.model_class(self.params.model)

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        return int((batch["labels"] != IGNORE_LABEL).sum())

    def collector(self, complete: bool = True) -> AccuracyCollector:
        return AccuracyCollector(len(self.dataset("eval_input").examples) if complete else None)
