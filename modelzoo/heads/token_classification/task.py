"""Token classification (NER): CSV folders of ``data_processing/write_csv_ner.py``, padded or packed, scored
as entities over every raw word (seqeval strict IOB2 semantics, :mod:`modelzoo.metrics`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from modelzoo.common.distributed import DistContext
from modelzoo.data.class_weights import frequency_class_weights
from modelzoo.data.ner_dataset import MODEL_INPUT_KEYS, PACKED_MODEL_INPUT_KEYS, NerCsvDataset
from modelzoo.heads.task import RunSections, SplitTask, gather_parts
from modelzoo.metrics import first_piece_words, score_words


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


_NER_KEEP = ("predictions", "labels", "word_index", "sentence_index")


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


class TokenClassificationTask(SplitTask):
    """NER on CSV folders written by ``data_processing/write_csv_ner.py``, padded or packed."""

    def __init__(self, params: RunSections, model_class: type) -> None:
        super().__init__(params)
        self.model_class = model_class
        sections = (params.train_input, params.eval_input)
        packed = any(inputs is not None and inputs.packing for inputs in sections)
        self.model_input_keys = PACKED_MODEL_INPUT_KEYS if packed else MODEL_INPUT_KEYS

    def read_split(self, section: str) -> NerCsvDataset:
        return NerCsvDataset.from_params(self.input_params(section))

    def build_model(self) -> nn.Module:
        """The head; with ``model.class_weights: auto`` and a train split, its weights from that split."""
        model = self.model_class(self.params.model)
        if self.params.model.class_weights == "auto" and self.params.train_input is not None:
            dataset = self.dataset("train_input")
            features = dataset.example_features
            weights = frequency_class_weights(features["labels"], features["loss_mask"], self.params.model.num_classes)
            model.set_class_weights(weights)
            shown = ", ".join(f"{dataset.id2label.get(i, i)} {weight:.3g}" for i, weight in enumerate(weights))
            print(f"model.class_weights auto: {shown}", flush=True)
        return model

    def count_sequences(self, batch: Dict[str, torch.Tensor]) -> int:
        """Examples in the batch: one per padded row, one per filled slot of a pack."""
        sentence_index = batch["sentence_index"]
        return int((sentence_index >= 0).sum()) if sentence_index.dim() == 2 else len(sentence_index)

    def collector(self, complete: bool = True) -> NerCollector:
        dataset = self.dataset("eval_input")
        id_to_label = [dataset.id2label[i] for i in range(len(dataset.id2label))]
        words_per_sentence = [len(words) for words in dataset.word_labels()] if complete else None
        return NerCollector(id_to_label, words_per_sentence)
