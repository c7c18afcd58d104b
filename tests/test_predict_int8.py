"""``--quantize int8``: which layers become int8, how far the logits move, where it is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.predict.int8 import quantize_int8
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


def test_int8_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match="CPU only"):
        quantize_int8(float_model(), torch.device("cuda"))
