"""``--quantize int8``: which layers become int8 with how many bits, how far the logits move, where it is refused."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from modelzoo.bert import BertConfig, BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.predict.int8 import WEIGHT_RANGE, quantize_int8
from tests.hf_reference import padded_batch

CONFIG = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_heads=4, filter_size=256, num_classes=7)


def float_model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(**CONFIG)).eval()


def int8_linears(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, DynamicInt8Linear)]


def test_every_encoder_linear_becomes_int8_per_channel_and_the_classifier_stays_float():
    quantized = quantize_int8(float_model(), torch.device("cpu"))
    names = int8_linears(quantized)
    per_layer = {"attention.qkv", "attention.output", "intermediate", "output"}
    assert sorted(names) == sorted(f"bert.encoder.layer.{i}.{part}" for i in range(2) for part in per_layer)
    assert type(quantized.classifier) is nn.Linear
    qkv = quantized.get_submodule("bert.encoder.layer.0.attention.qkv")
    assert qkv.weight().dtype == torch.qint8
    assert qkv.weight().qscheme() == torch.per_channel_affine  # a scale per output row, not one per matrix
    for name in names:  # 7-bit weights, every row using the whole range: no 16-bit pair sum can overflow
        weights = quantized.get_submodule(name).weight().int_repr()
        assert weights.min() >= WEIGHT_RANGE[0] and weights.max() <= WEIGHT_RANGE[1]
        assert (weights.abs().amax(1) >= WEIGHT_RANGE[1]).all()


def test_int8_logits_stay_close_to_the_float_logits():
    model = float_model()
    batch = padded_batch(CONFIG["vocab_size"], [30, 22, 9, 30], 30)
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        expected = model(**batch).logits[real]
        quantized = quantize_int8(model, torch.device("cpu"))
        got = quantized(**batch).logits[real]
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
    ours = quantize_int8(copy.deepcopy(model), torch.device("cpu"))
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
    config = BertConfig(**{**CONFIG, "num_classes": 2}, use_pooler=True, head="sequence_classification")
    quantized = quantize_int8(PackedBertForSequenceClassification(config).eval(), torch.device("cpu"))
    assert type(quantized.bert.pooler.dense) is nn.Linear and type(quantized.classifier) is nn.Linear
    assert len(int8_linears(quantized)) == 2 * 4


def test_int8_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match="CPU only"):
        quantize_int8(float_model(), torch.device("cuda"))
