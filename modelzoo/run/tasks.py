"""What is trained: the head, its data and how its predictions are scored.

The executors drive any task through this small interface (build the model, batches for a rank,
the model inputs of a batch, a collector of predictions), so they never know which head they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from modelzoo.bert import BertForTokenClassification
from modelzoo.data.ner_dataset import MODEL_INPUT_KEYS, NerCsvDataset, build_dataloader
from modelzoo.data.params import InputParams
from modelzoo.metrics import evaluate_examples
from modelzoo.run.distributed import DistContext
from modelzoo.run.params import Params


class PredictionCollector(Protocol):
    def add(self, batch: dict[str, torch.Tensor], logits: torch.Tensor) -> None: ...

    def finish(self, context: DistContext) -> dict | None:
        """Scores on rank 0 (None elsewhere), from the predictions of every rank."""


class Task(Protocol):
    model_input_keys: tuple[str, ...]

    def build_model(self) -> nn.Module: ...

    def dataloader(self, section: str, context: DistContext, epoch: int = 0): ...

    def count_sequences(self, batch: dict[str, torch.Tensor]) -> int:
        """Real sequences in a batch (a packed row holds several): throughput is never counted in packs."""

    def collector(self, complete: bool = True) -> PredictionCollector:
        """``complete``: the whole eval split will be seen, so check every raw word is scored."""


def count_real_tokens(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Non-padding tokens of a batch (packed or not): what throughput is reported in."""
    return (batch["attention_mask"] != 0).sum()


def count_loss_positions(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Positions the loss averages over: labels that are not -100, where the loss mask (if any) is set."""
    counted = batch["labels"] != -100
    if "loss_mask" in batch:
        counted &= batch["loss_mask"] != 0
    return counted.sum()


@dataclass
class NerCollector:
    """Keeps, per batch, the argmax prediction and what maps it back to raw words; scores at the end."""

    id_to_label: list[str]
    words_per_sentence: list[int] | None
    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _NER_KEEP})

    def add(self, batch: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        self.parts["predictions"].append(logits.argmax(-1).to(torch.int32).cpu().numpy())
        for key in ("labels", "word_index", "sentence_index"):
            self.parts[key].append(batch[key].cpu().numpy())

    def finish(self, context: DistContext) -> dict | None:
        local = {key: np.concatenate(arrays) if arrays else None for key, arrays in self.parts.items()}
        gathered = context.gather_objects(local)
        if not context.is_main:
            return None
        merged = {
            key: np.concatenate([part[key] for part in gathered if part[key] is not None]) for key in _NER_KEEP
        }
        scores = evaluate_examples(
            merged["predictions"],
            merged["word_index"],
            merged["sentence_index"],
            merged["labels"],
            self.id_to_label,
            words_per_sentence=self.words_per_sentence,
        )
        return {"scores": scores, "table": scores.format_table(), "f1": scores.overall.f1}


_NER_KEEP = ("predictions", "labels", "word_index", "sentence_index")


class TokenClassificationTask:
    """NER on CSV folders written by ``data_processing/write_csv_ner.py``."""

    model_input_keys = MODEL_INPUT_KEYS

    def __init__(self, params: Params) -> None:
        self.params = params
        self._datasets: dict[str, NerCsvDataset] = {}

    def input_params(self, section: str) -> InputParams:
        return getattr(self.params, section)

    def dataset(self, section: str) -> NerCsvDataset:
        """The parsed split (read once per run, then reused every epoch)."""
        if section not in self._datasets:
            dataset = NerCsvDataset.from_params(self.input_params(section))
            if len(dataset.label2id) != self.params.model.num_classes:
                raise ValueError(
                    f"{section}.data_dir has {len(dataset.label2id)} labels but model.num_classes is "
                    f"{self.params.model.num_classes}"
                )
            self._datasets[section] = dataset
        return self._datasets[section]

    def build_model(self) -> nn.Module:
        return BertForTokenClassification(self.params.model)

    def dataloader(self, section: str, context: DistContext, epoch: int = 0):
        return build_dataloader(
            self.input_params(section), context.rank, context.world_size, epoch, dataset=self.dataset(section)
        )

    def count_sequences(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["input_ids"])

    def collector(self, complete: bool = True) -> NerCollector:
        dataset = self.dataset("eval_input")
        id_to_label = [dataset.id2label[i] for i in range(len(dataset.id2label))]
        words_per_sentence = [len(words) for words in dataset.word_labels()] if complete else None
        return NerCollector(id_to_label, words_per_sentence)


def build_task(params: Params) -> Task:
    return TokenClassificationTask(params)
