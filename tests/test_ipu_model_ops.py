"""The IPU attention kernel computes what SDPA computes, in operations poptorch lists, and the stand-in's
operation check fails on operations it does not list.

fp32, 1e-5 (absolute on logits, relative on loss and gradients), for both heads, packed and unpacked.
The operation check is the stand-in's (tests/poptorch_standin.py), against the table transcribed from
poptorch 3.4's supported_ops.rst (tests/poptorch_supported_ops.py); passing it is not a compile.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
import transformers

from modelzoo.backends.ipu import IpuBackend, _InferenceStep
from modelzoo.backends.ipu_options import build_poptorch_options
from modelzoo.bert import BertConfig, PackedBertForSequenceClassification
from modelzoo.data.packed_rows import pack_classification_examples, pack_token_examples
from modelzoo.params.params import load_params
from tests.hf_reference import ours_from_hf, padded_batch
from tests.poptorch_standin import (
    OperationCheck,
    StandinPoptorch,
    UnsupportedOperationError,
    skip_without_cpu_float16_kernels,
)
from tests.poptorch_supported_ops import DOCUMENTED, FUNCTIONAL_FORMS, documented_as
from tests.run_fixtures import tiny_params, write_params
from tests.test_packed_models import (
    MAX_LENGTH,
    SLOTS,
    TINY,
    as_torch,
    assert_same_gradients,
    gradients,
    packs_of_one_to_all,
    padded,
    random_sequences,
    token_classifier_case,
)

SDPA = "torch.nn.functional.scaled_dot_product_attention"


def _token_case(packed: bool) -> Tuple[torch.nn.Module, Dict[str, torch.Tensor]]:
    model, sequences, labels, loss_masks, examples = token_classifier_case(11)
    if not packed:
        return model, padded(sequences, {"labels": labels, "loss_mask": loss_masks})
    features = as_torch(pack_token_examples(examples, packs_of_one_to_all(len(examples)), MAX_LENGTH, pad_id=0))
    inputs = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "labels", "loss_mask")
    return model, {name: features[name] for name in inputs}


def _sequence_case(packed: bool) -> Tuple[torch.nn.Module, Dict[str, torch.Tensor]]:
    """Packed: up to SLOTS sequences a row; unpacked: one sequence a row (max_sequences_per_pack 1)."""
    slots = SLOTS if packed else 1
    torch.manual_seed(0)
    config = BertConfig.from_dict({**TINY, "num_classes": 3, "max_sequences_per_pack": slots,
                                   "head": "sequence_classification"})
    model = PackedBertForSequenceClassification(config).eval()
    sequences = random_sequences(13, seed=3)
    examples = [{"input_ids": ids, "token_type_ids": np.zeros_like(ids), "labels": index % 3}
                for index, ids in enumerate(sequences)]
    pack_indices = packs_of_one_to_all(len(examples)) if packed else np.arange(len(examples))[:, None]
    return model, as_torch(pack_classification_examples(examples, pack_indices, MAX_LENGTH, pad_id=0))


CASES = {
    "token_unpacked": lambda: _token_case(packed=False),
    "token_packed": lambda: _token_case(packed=True),
    "sequence_unpacked": lambda: _sequence_case(packed=False),
    "sequence_packed": lambda: _sequence_case(packed=True),
}


@pytest.mark.parametrize("case", CASES)
def test_matmul_kernel_gives_the_sdpa_logits_loss_and_gradients(case):
    model, batch = CASES[case]()
    reference = model(**batch)
    reference_gradients = gradients(model, reference.loss)
    model.bert.use_attention_kernel("matmul")
    seen = Counter()
    with OperationCheck(seen):
        output = model(**batch)
    assert seen["torch.matmul"] == 2 * model.config.num_hidden_layers and SDPA not in seen
    torch.testing.assert_close(output.logits, reference.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(output.loss, reference.loss, rtol=1e-5, atol=0)
    assert_same_gradients(gradients(model, output.loss), reference_gradients)


@pytest.mark.parametrize("case", CASES)
def test_matmul_kernel_keeps_to_poptorch_operations_in_float16(case):
    model, batch = CASES[case]()
    model.half()
    model.bert.use_attention_kernel("matmul")
    seen = Counter()
    with skip_without_cpu_float16_kernels(), OperationCheck(seen):
        output = model(**batch)
    assert output.logits.dtype == torch.float16 and torch.isfinite(output.logits).all()
    assert seen["torch.nn.functional.softmax"] == model.config.num_hidden_layers


def test_sdpa_is_an_unsupported_operation():
    """The deliberately unsupported operation: the CPU/GPU kernel, SDPA, is not in poptorch's list."""
    model, batch = CASES["token_unpacked"]()
    with pytest.raises(UnsupportedOperationError, match="scaled_dot_product_attention is not in poptorch"), \
            OperationCheck(Counter()):
        model(**batch)


def test_skipping_padding_needs_an_unsupported_data_dependent_operation():
    model, batch = CASES["token_unpacked"]()
    model.bert.use_attention_kernel("matmul")
    with pytest.raises(UnsupportedOperationError, match="torch.nonzero"), OperationCheck(Counter()):
        model(**batch, skip_padding=True)


def test_embedding_padding_idx_is_refused_and_the_model_has_none():
    embedding, ids = torch.nn.Embedding(10, 4, padding_idx=0), torch.tensor([[0, 3]])
    with pytest.raises(UnsupportedOperationError, match="padding_idx=0"), OperationCheck(Counter()):
        embedding(ids)
    model, _ = CASES["token_unpacked"]()
    assert all(m.padding_idx is None for m in model.modules() if isinstance(m, torch.nn.Embedding))


def test_pad_row_starts_at_zero_and_gets_no_gradient():
    """Without padding_idx the [PAD] row still starts at zero, and padding never reaches the loss."""
    model, batch = CASES["token_packed"]()
    pad_row = model.bert.embeddings.word_embeddings.weight[model.config.pad_token_id]
    assert (batch["input_ids"] == model.config.pad_token_id).any() and not pad_row.any()
    model.train()
    model(**batch).loss.backward()
    grad = model.bert.embeddings.word_embeddings.weight.grad
    assert grad[model.config.pad_token_id].abs().max() == 0 and grad.abs().max() > 0


def test_the_table_maps_only_to_documented_entries():
    listed = {entry for entries in DOCUMENTED.values() for entry in entries}
    assert sum(len(entries) for entries in DOCUMENTED.values()) == 225  # the bullets of supported_ops.rst 3.4.0
    assert set(FUNCTIONAL_FORMS.values()) <= listed
    assert documented_as("torch.Tensor.__matmul__") == "torch.matmul"
    assert documented_as("torch.Tensor.masked_fill_") == "tensor.masked_fill"
    assert documented_as("torch.nonzero") is None and documented_as(SDPA) is None


@torch.no_grad()
def test_ipu_path_logits_equal_the_cpu_path_on_converted_minilm(model_folder, ner_csv, tmp_path, monkeypatch):
    """MiniLM converted from Hugging Face, prepared by the IPU backend (matmul attention, two pipeline
    stages) and run by the stand-in's inferenceModel under the operation check, against the CPU model."""
    hf_model = transformers.BertForTokenClassification.from_pretrained(model_folder, num_labels=7).eval()
    model = ours_from_hf(hf_model, tmp_path)
    batch = padded_batch(30522, [128, 77, 30, 3], seq_len=128, seed=1)
    batch["labels"] = torch.randint(0, 7, batch["input_ids"].shape, generator=torch.Generator().manual_seed(2))
    batch["loss_mask"] = batch["attention_mask"]
    cpu = model(**batch)

    poptorch = StandinPoptorch()
    monkeypatch.setitem(sys.modules, "poptorch", poptorch)
    params = tiny_params(ner_csv, tmp_path / "model")
    params["model"] = dataclasses.asdict(model.config)
    params["ipu"] = {"layers_per_ipu": [3, 3], "device_iterations": 2}
    backend = IpuBackend(load_params(write_params(tmp_path / "params.yaml", params)), "eval")
    backend.prepare(model)
    keys = tuple(batch)
    executor = poptorch.inferenceModel(_InferenceStep(model, keys), build_poptorch_options(backend.ipu, poptorch, False))
    ipu_logits, ipu_losses = executor(*batch.values())

    assert executor.operations["torch.matmul"] == 2 * 2 * 6 and SDPA not in executor.operations  # 2 micro batches
    real = batch["attention_mask"].bool()
    assert (ipu_logits[real] - cpu.logits[real]).abs().max().item() <= 1e-5
    counts = batch["loss_mask"].reshape(2, -1).sum(1).double()  # loss positions of each micro batch of 2 rows
    assert ((ipu_losses.double() * counts).sum() / counts.sum()).item() == pytest.approx(cpu.loss.item(), rel=1e-5)
