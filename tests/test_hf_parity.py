"""Our BERT equals Hugging Face's on converted weights: logits, hidden states, packed rows, gradients."""

from __future__ import annotations

from typing import Dict

import pytest
import torch
import transformers

from modelzoo.bert import BertModel
from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.checkpoint.naming import to_canonical
from modelzoo.common.strings import remove_prefix
from modelzoo.tools.convert_checkpoint import convert
from tests.hf_reference import SMALL_HF_CONFIG, ours_from_hf, padded_batch, small_hf_token_classifier

TOLERANCE = 1e-5


def _real_positions_max_diff(a: torch.Tensor, b: torch.Tensor, attention_mask: torch.Tensor) -> float:
    """Max |a - b| over non-padding positions (padding outputs are never used by either model)."""
    real = attention_mask.bool()
    return (a[real] - b[real]).abs().max().item()


def _hf_inputs(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {key: value.long() for key, value in batch.items()}


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    hf_model = small_hf_token_classifier()
    return hf_model, ours_from_hf(hf_model, tmp_path_factory.mktemp("small"))


@torch.no_grad()
def test_small_token_classifier_logits_match_hf_on_padded_batch(small_pair):
    hf_model, ours = small_pair
    batch = padded_batch(SMALL_HF_CONFIG["vocab_size"], [32, 20, 7, 1], seq_len=32)
    expected = hf_model(**_hf_inputs(batch)).logits
    actual = ours(**batch).logits
    assert _real_positions_max_diff(actual, expected, batch["attention_mask"]) <= TOLERANCE


@torch.no_grad()
def test_minilm_token_classifier_logits_match_hf(model_folder, tmp_path):
    torch.manual_seed(0)
    hf_model = transformers.BertForTokenClassification.from_pretrained(model_folder, num_labels=7).eval()
    ours = ours_from_hf(hf_model, tmp_path)
    batch = padded_batch(30522, [128, 77, 30, 3], seq_len=128, seed=1)
    expected = hf_model(**_hf_inputs(batch)).logits
    actual = ours(**batch).logits
    assert _real_positions_max_diff(actual, expected, batch["attention_mask"]) <= TOLERANCE


@torch.no_grad()
def test_minilm_encoder_hidden_states_and_pooler_match_hf(model_folder, tmp_path):
    hf_model = transformers.BertModel.from_pretrained(model_folder).eval()
    convert(model_folder, "hf", "modelzoo", tmp_path / "base")
    state_dict, config = read_checkpoint(tmp_path / "base", "modelzoo")
    assert "bert.pooler.dense.weight" in state_dict, "the pretrained BertModel has a pooler and the conversion keeps it"
    ours = BertModel(config, add_pooling_layer=True).eval()
    base_state = {remove_prefix(key, "bert."): value for key, value in state_dict.items()}
    ours.load_state_dict(base_state, strict=True)
    batch = padded_batch(30522, [64, 50, 9], seq_len=64, seed=2)
    expected = hf_model(**_hf_inputs(batch))
    sequence_output = ours(**batch)
    pooled_output = ours.pooler(sequence_output[:, 0])
    diff = _real_positions_max_diff(sequence_output, expected.last_hidden_state, batch["attention_mask"])
    assert diff <= TOLERANCE
    assert (pooled_output - expected.pooler_output).abs().max().item() <= TOLERANCE


def test_one_training_step_gives_hf_gradients(small_pair):
    """Dropout off (eval mode): the loss and every parameter's gradient agree to 1e-4 relative.

    The key bias' gradient is exactly zero in exact arithmetic (softmax ignores a constant added to
    every score of a query), so only float noise is left there: a 1e-10 absolute floor covers it.
    """
    hf_model, ours = small_pair
    batch = padded_batch(SMALL_HF_CONFIG["vocab_size"], [32, 25, 11, 4], seq_len=32, seed=3)
    generator = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 7, batch["input_ids"].shape, generator=generator, dtype=torch.int32)
    loss_mask = batch["attention_mask"] * (torch.rand(labels.shape, generator=generator) < 0.6).int()
    hf_labels = torch.where(loss_mask.bool(), labels.long(), torch.full_like(labels.long(), -100))

    hf_model.zero_grad()
    ours.zero_grad()
    hf_loss = hf_model(**_hf_inputs(batch), labels=hf_labels).loss
    our_loss = ours(**batch, labels=labels, loss_mask=loss_mask).loss
    hf_loss.backward()
    our_loss.backward()

    assert abs(our_loss.item() - hf_loss.item()) <= 1e-6 * abs(hf_loss.item())
    our_grads, _ = to_canonical({name: p.grad for name, p in ours.named_parameters()}, "modelzoo")
    hf_grads = {name: p.grad for name, p in hf_model.named_parameters() if p.grad is not None}
    assert set(our_grads) == set(hf_grads)
    for name, hf_grad in hf_grads.items():
        scale = hf_grad.abs().max().item()
        assert (our_grads[name] - hf_grad).abs().max().item() <= 1e-4 * scale + 1e-10, name
