"""What is trained: the head, its data and how its predictions are scored.

The executors drive any task through this small interface (build the model, batches for a rank,
the model inputs of a batch, a collector of predictions), so they never know which head they run.
``model.head`` picks the task: token classification (NER) or sequence classification (SST-2), each
packed or not per input section. Scores are per original sequence or word whatever the packing:
packed predictions are mapped back through the metadata the readers put in every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Tuple

import numpy as np
import torch
from torch import nn

from modelzoo.bert import BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import ParamsError
from modelzoo.data.classifier_dataset import ClassifierDataset, build_classifier_dataloader
from modelzoo.data.ner_dataset import (
    MODEL_INPUT_KEYS,
    PACKED_MODEL_INPUT_KEYS,
    NerCsvDataset,
    build_dataloader,
)
from modelzoo.data.packing import IGNORE_LABEL
from modelzoo.data.params import InputParams
from modelzoo.metrics import first_piece_words, score_words
from modelzoo.params.params import Params


class PredictionCollector(Protocol):
    def add(self, batch: Dict[str, torch.Tensor], logits: torch.Tensor) -> None: ...

    def finish(self, context: DistContext) -> Optional[dict]:
        """Scores on rank 0 (None elsewhere), from the predictions of every rank."""


class Task(Protocol):
    model_input_keys: Tuple[str, ...]

    def build_model(self) -> nn.Module: ...

    def dataset(self, section: str):
        """The parsed split of ``section`` (map-style: one example dict per index), read once."""

    def dataloader(self, section: str, context: DistContext, epoch: int = 0): ...

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        """Real sequences in a batch (a packed row holds several): throughput is never counted in packs."""

    def collector(self, complete: bool = True) -> PredictionCollector:
        """``complete``: the whole eval split will be seen, so check every raw word is scored."""


def count_real_tokens(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Non-padding tokens of a batch (packed or not): what throughput is reported in."""
    return (batch["attention_mask"] != 0).sum()


def count_loss_positions(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Positions the loss averages over: labels that are not -100, where the loss mask (if any) is set."""
    counted = batch["labels"] != -100
    if "loss_mask" in batch:
        counted &= batch["loss_mask"] != 0
    return counted.sum()


def check_num_classes(section: str, label2id: Dict[str, int], params: Params) -> None:
    """A head whose width differs from the data's labels would train, wrongly; stop before."""
    if len(label2id) != params.model.num_classes:
        raise ParamsError(
            f"{section}.data_dir has {len(label2id)} labels but model.num_classes is {params.model.num_classes}"
        )


def token_sentence_index(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The raw sentence of every token, ``[batch, seq]``, for padded rows and packs alike.

    A padded row has one ``sentence_index``; a pack has one per slot (``[batch, S]``) and its token
    of sequence-index j belongs to slot j - 1. Padding reads slot 0, harmlessly: its word index is -1,
    so it is never scored.
    """
    sentence_index = batch["sentence_index"]
    if sentence_index.dim() == 1:
        return sentence_index[:, None].expand_as(batch["word_index"])
    slot = (batch["attention_mask"].long() - 1).clamp(min=0)
    return sentence_index.gather(1, slot)


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


@dataclass
class NerCollector:
    """Keeps, per batch, the argmax prediction and what maps it back to raw words; scores at the end.

    Per token it keeps the sentence and word index, so packed and padded batches reach the one
    scoring path (:func:`first_piece_words`, then :func:`score_words`).
    """

    id_to_label: List[str]
    words_per_sentence: Optional[List[int]]
    parts: Dict[str, List[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _NER_KEEP})

    def add(self, batch: Dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        self.parts["predictions"].append(logits.argmax(-1).to(torch.int32).cpu().numpy())
        self.parts["sentence_index"].append(token_sentence_index(batch).cpu().numpy())
        for key in ("labels", "word_index"):
            self.parts[key].append(batch[key].cpu().numpy())

    def finish(self, context: DistContext) -> Optional[dict]:
        merged = gather_parts(self.parts, context)
        if merged is None:
            return None
        words = first_piece_words(
            merged["sentence_index"],
            merged["word_index"],
            merged["labels"],
            merged["predictions"],
            words_per_sentence=self.words_per_sentence,
        )
        scores = score_words(words, self.id_to_label)
        return {"scores": scores, "table": scores.format_table(), "f1": scores.overall.f1}


_NER_KEEP = ("predictions", "labels", "word_index", "sentence_index")


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


_ACCURACY_KEEP = ("predictions", "labels", "sequence_index")


class _SplitCache:
    """Reads each split once per run (then reused every epoch) and checks its labels against the model."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self._datasets: dict = {}

    def read_split(self, section: str):
        raise NotImplementedError

    def dataset(self, section: str):
        if section not in self._datasets:
            dataset = self.read_split(section)
            check_num_classes(section, dataset.label2id, self.params)
            self._datasets[section] = dataset
        return self._datasets[section]


class TokenClassificationTask(_SplitCache):
    """NER on CSV folders written by ``data_processing/write_csv_ner.py``, padded or packed."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        sections = (params.train_input, params.eval_input)
        packed = any(inputs is not None and inputs.packing for inputs in sections)
        self.model_input_keys = PACKED_MODEL_INPUT_KEYS if packed else MODEL_INPUT_KEYS

    def input_params(self, section: str) -> InputParams:
        return getattr(self.params, section)

    def read_split(self, section: str) -> NerCsvDataset:
        return NerCsvDataset.from_params(self.input_params(section))

    def build_model(self) -> nn.Module:
        return BertForTokenClassification(self.params.model)

    def dataloader(self, section: str, context: DistContext, epoch: int = 0):
        return build_dataloader(
            self.input_params(section), context.rank, context.world_size, epoch, dataset=self.dataset(section)
        )

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        """Examples in the batch: one per padded row, one per filled slot of a pack."""
        sentence_index = batch["sentence_index"]
        return int((sentence_index >= 0).sum()) if sentence_index.dim() == 2 else len(sentence_index)

    def collector(self, complete: bool = True) -> NerCollector:
        dataset = self.dataset("eval_input")
        id_to_label = [dataset.id2label[i] for i in range(len(dataset.id2label))]
        words_per_sentence = [len(words) for words in dataset.word_labels()] if complete else None
        return NerCollector(id_to_label, words_per_sentence)


class SequenceClassificationTask(_SplitCache):
    """Sentence classification (SST-2) on folders of ``data_processing/write_csv_classifier.py``.

    One model for packed and unpacked input: every row reserves ``model.max_sequences_per_pack``
    [CLS] slots at its end, which a packed section fills with up to that many sequences and an
    unpacked one with a single sequence (see :mod:`modelzoo.data.classifier_dataset`).
    """

    model_input_keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "labels")

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.slots = params.model.max_sequences_per_pack
        for section in ("train_input", "eval_input"):
            inputs = getattr(params, section)
            if inputs is not None and inputs.packing and inputs.max_sequences_per_pack != self.slots:
                raise ParamsError(
                    f"{section}.max_sequences_per_pack ({inputs.max_sequences_per_pack}) must equal "
                    f"model.max_sequences_per_pack ({self.slots}): the pooler reads that many [CLS] slots per row"
                )

    def read_split(self, section: str) -> ClassifierDataset:
        return ClassifierDataset.from_params(getattr(self.params, section), self.slots)

    def build_model(self) -> nn.Module:
        return PackedBertForSequenceClassification(self.params.model)

    def dataloader(self, section: str, context: DistContext, epoch: int = 0):
        return build_classifier_dataloader(
            getattr(self.params, section), self.slots, context.rank, context.world_size, epoch,
            dataset=self.dataset(section),
        )

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        return int((batch["labels"] != IGNORE_LABEL).sum())

    def collector(self, complete: bool = True) -> AccuracyCollector:
        return AccuracyCollector(len(self.dataset("eval_input").examples) if complete else None)


TASKS = {"token_classification": TokenClassificationTask, "sequence_classification": SequenceClassificationTask}


def build_task(params: Params) -> Task:
    """The task ``model.head`` names."""
    return TASKS[params.model.head](params)
