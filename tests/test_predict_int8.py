"""``--quantize int8``: which layers become int8 with how many bits, the fused activation, how far the logits
move, where it is refused."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.bert import BertConfig, BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.bert.model import _ACTIVATIONS
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import ParamsError
from modelzoo.predict import int8
from modelzoo.predict.int8 import WEIGHT_RANGE, Int8Linear, quantize_int8
from tests.hf_reference import padded_batch

CONFIG = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_heads=4, filter_size=256, num_classes=7)


def float_model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(**CONFIG)).eval()


def int8_linears(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, Int8Linear)]


def test_every_encoder_linear_becomes_int8_per_channel_and_the_classifier_stays_float():
    quantized = quantize_int8(float_model(), DeviceSetup(torch.device("cpu")))
    names = int8_linears(quantized)
    per_layer = {"attention.qkv", "attention.output", "intermediate", "output"}
    assert sorted(names) == sorted(f"bert.encoder.layer.{i}.{part}" for i in range(2) for part in per_layer)
    assert type(quantized.classifier) is nn.Linear
    qkv = quantized.get_submodule("bert.encoder.layer.0.attention.qkv")
    assert qkv.int8_weight.dtype == torch.int8
    assert qkv.weight_scale.shape == (3 * 64,)  # a scale per output row, not one per matrix
    split = [name for name in names if quantized.get_submodule(name).outlier_rows]
    assert split == [f"bert.encoder.layer.{i}.output" for i in range(2)]  # the FFN's second linear: GELU input
    for name in names:  # 7-bit weights, every row using the whole range: no 16-bit pair sum can overflow
        weights = quantized.get_submodule(name).int8_weight
        assert weights.min() >= WEIGHT_RANGE[0] and weights.max() <= WEIGHT_RANGE[1]
        assert (weights.abs().amax(1) >= WEIGHT_RANGE[1]).all()


@pytest.mark.parametrize("activation", sorted(_ACTIVATIONS))
def test_the_activation_is_fused_into_the_ffns_first_linear_and_computes_the_same(activation):
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(**CONFIG, encoder_nonlinearity=activation)).eval()
    layer = model.bert.encoder.layer[0]
    plain = Int8Linear(layer.intermediate)
    quantize_int8(model, DeviceSetup(torch.device("cpu")))
    assert isinstance(layer.activation, nn.Identity) and layer.intermediate.activation != plain.activation
    x = torch.randn(37, 64)
    with torch.inference_mode():
        fused, separate = layer.intermediate(x), _ACTIVATIONS[activation](plain(x))
    assert torch.allclose(fused, separate, atol=1e-5), (fused - separate).abs().max()


def rms(error: torch.Tensor) -> torch.Tensor:
    return error.pow(2).mean().sqrt()


def test_rows_padded_up_to_the_kernels_bucket_leave_the_real_rows_as_they_were():
    """37 rows go in as 64; with the same value range, they come out as the first 37 of 64 real rows."""
    torch.manual_seed(0)
    linear = Int8Linear(nn.Linear(64, 32))
    x = torch.randn(37, 64)
    with torch.inference_mode():
        alone, among_more = linear(x), linear(torch.cat((x, x[:27])))[:37]
    assert alone.shape == (37, 32) and torch.equal(alone, among_more)


def test_outlier_rows_get_their_own_scale_and_keep_the_other_rows_precise():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    x = F.gelu(torch.randn(200, 64))
    outliers = [3, 70, 150]
    x[outliers] *= 40  # a few tokens far larger than the rest, as the GELU output has
    others = torch.ones(200, dtype=torch.bool)
    others[outliers] = False
    with torch.inference_mode():
        expected = linear(x)
        split = Int8Linear(linear, outlier_rows=True)(x) - expected
        single = Int8Linear(linear)(x) - expected
    assert rms(split[others]) < 0.2 * rms(single[others]), (rms(split[others]), rms(single[others]))
    assert rms(split[outliers]) < 0.02 * rms(expected[outliers])  # the outlier rows stay precise too


@pytest.mark.parametrize("skip_padding", [False, True])
def test_int8_logits_stay_close_to_the_float_logits(skip_padding):
    model = float_model()
    batch = padded_batch(CONFIG["vocab_size"], [30, 22, 9, 30], 30)
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        expected = model(**batch).logits[real]
        quantized = quantize_int8(model, DeviceSetup(torch.device("cpu")))
        got = quantized(**batch, skip_padding=skip_padding).logits[real]
    error = (got - expected).abs().max() / expected.abs().max()
    assert 0 < error < 0.01, error  # really int8 (not the float path), and within 1 % of the largest logit
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.9


def outlier_model() -> BertForTokenClassification:
    """A model with one LayerNorm output channel far larger than the rest, as fine-tuned BERTs have."""
    model = float_model()
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            layer.attention_norm.weight[3] = 25.0
    return model


def test_full_range_activations_halve_the_error_of_pytorchs_seven_bits():
    """The outlier stretches the one activation scale of a batch; the 8th activation bit is what keeps precision."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = outlier_model()
    ours = quantize_int8(copy.deepcopy(model), DeviceSetup(torch.device("cpu")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
                if isinstance(module, nn.Linear) and name != "classifier"}
        pytorch_default = quantize_dynamic(copy.deepcopy(model), plan)
    errors = {"ours": [], "default": []}
    for seed in range(4):
        batch = padded_batch(CONFIG["vocab_size"], [30, 22, 9, 30], 30, seed=seed)
        real = batch["attention_mask"].bool()
        with torch.inference_mode():
            expected = model(**batch).logits[real]
            errors["ours"].append(ours(**batch).logits[real] - expected)
            errors["default"].append(pytorch_default(**batch).logits[real] - expected)
    ours_error, default_error = (torch.cat(errors[name]).pow(2).mean().sqrt() for name in ("ours", "default"))
    assert 0 < ours_error < 0.75 * default_error, (ours_error, default_error)


def test_the_sequence_classifiers_pooler_and_classifier_stay_float():
    config = BertConfig(**{**CONFIG, "num_classes": 2}, head="sequence_classification")
    quantized = quantize_int8(PackedBertForSequenceClassification(config).eval(), DeviceSetup(torch.device("cpu")))
    assert type(quantized.bert.pooler.dense) is nn.Linear and type(quantized.classifier) is nn.Linear
    assert len(int8_linears(quantized)) == 2 * 4


def test_int8_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match="CPU only"):
        quantize_int8(float_model(), DeviceSetup(torch.device("cuda")))


def test_a_torch_without_onednn_int8_is_one_error_that_names_the_other_engine(monkeypatch):
    monkeypatch.setattr(int8, "onednn_int8_available", lambda: False)
    with pytest.raises(ParamsError, match="no oneDNN int8 kernels.*--engine onnxruntime --quantize int8"):
        quantize_int8(float_model(), DeviceSetup(torch.device("cpu")))
