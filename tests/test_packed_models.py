"""Packed rows compute exactly what the same sequences compute unpacked: logits, loss and gradients.

fp32, tolerance 1e-5 (absolute on logits, relative on loss and gradients), with packs holding 1 up
to ``max_sequences_per_pack`` sequences, with and without ``skip_padding``. The references are plain padded BERT batches ([CLS] first,
0/1 mask, default positions), so the packed layouts are checked against ordinary BERT, not against
another packed layout.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelzoo.bert import BertConfig, BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.common.iteration import zip_strict
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.data.packed_rows import pack_classification_examples, pack_token_examples

SLOTS = 4
MAX_LENGTH = 40
CLS, SEP = 2, 3
TINY = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_heads": 4, "filter_size": 64,
        "max_position_embeddings": 64, "dropout_rate": 0.0, "attention_dropout_rate": 0.0}


def random_sequences(count: int, seed: int = 0) -> List[np.ndarray]:
    """[CLS] w... [SEP] with 1..7 random words."""
    rng = np.random.default_rng(seed)
    return [np.array([CLS, *rng.integers(4, 50, rng.integers(1, 8)), SEP], dtype=np.int32) for _ in range(count)]


def packs_of_one_to_all(count: int) -> np.ndarray:
    """Pack indices holding 1, 2, ..., SLOTS sequences, then again, until ``count`` sequences are used."""
    rows, index, size = [], 0, 1
    while index < count:
        members = list(range(index, min(index + size, count)))
        rows.append(members + [-1] * (SLOTS - len(members)))
        index += len(members)
        size = size % SLOTS + 1
    return np.array(rows, dtype=np.int64)


def padded(sequences: List[np.ndarray], extra: Optional[Dict[str, List[np.ndarray]]] = None) -> Dict[str, torch.Tensor]:
    """The plain batch: one sequence a row, [CLS] first, 0/1 attention mask, zero padding."""
    batch = {"input_ids": torch.zeros(len(sequences), MAX_LENGTH, dtype=torch.int64)}
    batch["attention_mask"] = torch.zeros_like(batch["input_ids"])
    for name in extra or {}:
        batch[name] = torch.zeros_like(batch["input_ids"])
    for row, ids in enumerate(sequences):
        batch["input_ids"][row, : len(ids)] = torch.from_numpy(ids)
        batch["attention_mask"][row, : len(ids)] = 1
        for name, values in (extra or {}).items():
            batch[name][row, : len(ids)] = torch.from_numpy(values[row])
    return batch


def as_torch(features: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    return {name: torch.from_numpy(values).long() for name, values in features.items()}


def gradients(model: torch.nn.Module, loss: torch.Tensor) -> Dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(packed: Dict[str, torch.Tensor], reference: Dict[str, torch.Tensor]) -> None:
    assert packed.keys() == reference.keys()
    for name, grad in reference.items():
        scale = grad.abs().max().clamp(min=1e-12)
        assert (packed[name] - grad).abs().max() <= 1e-5 * scale, name


def token_classifier_case(count: int):
    """A tiny token classifier (7 labels) and ``count`` random sentences: ids, labels, loss masks, and
    the same as examples for ``pack_token_examples``."""
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig.from_dict({**TINY, "num_classes": 7})).eval()
    sequences = random_sequences(count, seed=1)
    rng = np.random.default_rng(2)
    labels = [rng.integers(1, 7, len(ids)).astype(np.int32) for ids in sequences]
    loss_masks = [np.r_[0, rng.integers(0, 2, len(ids) - 2), 0].astype(np.int32) for ids in sequences]
    examples = [
        {"input_ids": ids, "labels": label, "loss_mask": mask, "word_index": np.arange(len(ids), dtype=np.int32),
         "sentence_index": index}
        for index, (ids, label, mask) in enumerate(zip_strict(sequences, labels, loss_masks))
    ]
    return model, sequences, labels, loss_masks, examples


@pytest.fixture()
def sequence_classifier() -> PackedBertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig.from_dict({**TINY, "num_classes": 3, "max_sequences_per_pack": SLOTS,
                                   "head": "sequence_classification"})
    return PackedBertForSequenceClassification(config).eval()


@pytest.mark.parametrize("skip_padding", [False, True])
def test_packed_sequence_logits_loss_and_gradients_equal_plain_bert(sequence_classifier, skip_padding):
    model = sequence_classifier
    sequences = random_sequences(23)
    labels = np.arange(23) % 3
    examples = [{"input_ids": ids, "token_type_ids": np.zeros_like(ids), "labels": int(label)}
                for ids, label in zip_strict(sequences, labels)]
    pack_indices = packs_of_one_to_all(len(examples))
    assert set((pack_indices >= 0).sum(1).tolist()) == set(range(1, SLOTS + 1))
    packed = as_torch(pack_classification_examples(examples, pack_indices, MAX_LENGTH, pad_id=0))
    output = model(**packed, skip_padding=skip_padding)
    real = packed["labels"].flatten() != IGNORE_LABEL
    order = torch.from_numpy(pack_indices.flatten()[real.numpy()])

    # Plain BERT: [CLS] first, the pooler over position 0.
    plain = padded(sequences)
    pooled = model.bert.pooler(model.bert(plain["input_ids"], plain["attention_mask"])[:, 0])
    reference_logits = model.classifier(pooled)
    torch.testing.assert_close(output.logits[real], reference_logits[order], rtol=0, atol=1e-5)

    # Each sequence alone through the same S-slot model gives the same logits too.
    alone = as_torch(pack_classification_examples(examples, np.array([[5, -1, -1, -1]]), MAX_LENGTH, pad_id=0))
    torch.testing.assert_close(model(**alone).logits[0], reference_logits[5], rtol=0, atol=1e-5)

    packed_gradients = gradients(model, output.loss)
    reference_loss = F.cross_entropy(reference_logits, torch.from_numpy(labels))
    torch.testing.assert_close(output.loss, reference_loss, rtol=1e-5, atol=0)
    assert_same_gradients(packed_gradients, gradients(model, reference_loss))


@pytest.mark.parametrize("skip_padding", [False, True])
def test_packed_token_logits_loss_and_gradients_equal_the_padded_batch(skip_padding):
    model, sequences, labels, loss_masks, examples = token_classifier_case(19)
    pack_indices = packs_of_one_to_all(len(examples))
    packed = as_torch(pack_token_examples(examples, pack_indices, MAX_LENGTH, pad_id=0))
    inputs = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "labels", "loss_mask")
    output = model(**{name: packed[name] for name in inputs}, skip_padding=skip_padding)

    plain = padded(sequences, {"labels": labels, "loss_mask": loss_masks})
    reference = model(**plain)
    for row, members in enumerate(pack_indices):
        for slot, index in enumerate(members[members >= 0]):
            positions = packed["attention_mask"][row] == slot + 1
            torch.testing.assert_close(
                output.logits[row, positions], reference.logits[index, : len(sequences[index])], rtol=0, atol=1e-5
            )
    assert packed["sentence_index"][torch.from_numpy(pack_indices >= 0)].sort().values.tolist() == list(range(19))

    torch.testing.assert_close(output.loss, reference.loss, rtol=1e-5, atol=0)
    assert_same_gradients(gradients(model, output.loss), gradients(model, reference.loss))
