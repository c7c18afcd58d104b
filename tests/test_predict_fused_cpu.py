"""``--engine onednn``: the fused float32 layers compute what the eager model computes, padded or on the
real tokens alone, for every activation; where they are refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelzoo.bert import BertConfig, BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.bert.model import _ACTIVATIONS
from modelzoo.common.errors import ParamsError
from modelzoo.predict import fused_cpu
from modelzoo.predict.fused_cpu import FusedBertLayer, OneDnnLinear, fuse_float32
from tests.hf_reference import padded_batch

CONFIG = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_heads=4, filter_size=256, num_classes=7)
TOLERANCE = 1e-5


def trained_like(model: nn.Module) -> nn.Module:
    """Weights several times init's scale, and LayerNorms away from 1 and 0, as after fine-tuning:
    activations large enough that a wrong or missing bias, GELU or residual shows."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def token_model(activation: str = "gelu") -> BertForTokenClassification:
    torch.manual_seed(0)
    return trained_like(BertForTokenClassification(BertConfig(**CONFIG, encoder_nonlinearity=activation)))


def fused_copy(model: nn.Module) -> nn.Module:
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    return fuse_float32(copy.eval(), torch.device("cpu"))


def test_every_encoder_layer_is_fused_and_the_rest_stays():
    fused = fused_copy(token_model())
    for layer in fused.bert.encoder.layer:
        assert isinstance(layer, FusedBertLayer)
        linears = (layer.attention.qkv, layer.attention.output, layer.intermediate, layer.output)
        assert all(isinstance(linear, OneDnnLinear) for linear in linears)
        assert layer.intermediate.activation[0] == "gelu" and layer.output.activation[0] == "none"
        assert layer.intermediate.packed_weight.is_mkldnn  # prepacked once, in oneDNN's layout
    assert type(fused.classifier) is nn.Linear and type(fused.bert.embeddings.layer_norm) is nn.LayerNorm


@pytest.mark.parametrize("activation", sorted(_ACTIVATIONS))
@pytest.mark.parametrize("skip_padding", [False, True])
def test_fused_logits_equal_the_eager_logits(activation, skip_padding):
    model = token_model(activation)
    fused = fused_copy(model)
    batch = padded_batch(CONFIG["vocab_size"], [30, 22, 9, 30, 1], 30)
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        expected = model(**batch, skip_padding=skip_padding).logits[real]
        got = fused(**batch, skip_padding=skip_padding).logits[real]
    assert expected.abs().max() > 1.0  # large enough that a missing term could not hide under the tolerance
    assert torch.allclose(got, expected, rtol=0, atol=TOLERANCE), (got - expected).abs().max()


def test_packed_rows_of_the_sequence_classifier_equal_the_eager_model():
    torch.manual_seed(0)
    config = BertConfig(**{**CONFIG, "num_classes": 2}, head="sequence_classification")
    model = trained_like(PackedBertForSequenceClassification(config))
    fused = fused_copy(model)
    sequence_index = torch.tensor([[1] * 7 + [2] * 12 + [3] * 5 + [0] * 6, [1] * 20 + [2] * 10])
    positions = torch.cat([torch.arange(n) for n in (7, 12, 5, 6, 20, 10)]).view(2, 30)
    input_ids = torch.randint(1, CONFIG["vocab_size"], (2, 30), generator=torch.Generator().manual_seed(2))
    inputs = dict(input_ids=input_ids, attention_mask=sequence_index, position_ids=positions)
    with torch.inference_mode():
        for skip_padding in (False, True):
            hidden = model.bert(**inputs, skip_padding=skip_padding)
            fused_hidden = fused.bert(**inputs, skip_padding=skip_padding)
            real = sequence_index > 0
            assert torch.allclose(fused_hidden[real], hidden[real], rtol=0, atol=TOLERANCE)


def test_fused_layers_are_refused_off_the_cpu():
    with pytest.raises(ParamsError, match="CPU only"):
        fuse_float32(token_model(), torch.device("cuda"))


def test_a_torch_without_the_onednn_linear_is_one_error_that_names_the_eager_engine(monkeypatch):
    monkeypatch.setattr(fused_cpu, "onednn_float32_available", lambda: False)
    with pytest.raises(ParamsError, match="no oneDNN linear.*--engine torch"):
        fuse_float32(token_model(), torch.device("cpu"))
