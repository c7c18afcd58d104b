"""``--quantize int8``: the encoder's linear layers with int8 weights, for faster CPU prediction.

Prediction on CPU spends about 80 % of its time in the encoder's matrix multiplies, which already
run near the fp32 peak of the cores, so the way to go faster is fewer bits. Dynamic quantization
stores each weight matrix as int8 with one scale per output channel and quantizes each batch's
activations on the fly, so it needs no calibration data; on the 2-core AVX2 machine the int8
kernels (fbgemm) make prediction about 1.4x faster. The classifier stays in float: it is tiny, and
its logits decide every tag. On CoNLL-2003 dev (CoNLL words) the entity F1 of the quick-start model
goes from 0.905 to 0.900; ``benchmarks/predict.py`` prints speed and F1 of both. Off unless asked.

Why ``torch.ao.quantization.quantize_dynamic``, which PyTorch has deprecated in favour of torchao:
torchao's eager replacement (``Int8DynamicActivationInt8WeightConfig``, torchao 0.18) has no fast
x86 CPU kernel yet (8 sentences/s against about 300 with this module; pytorch/ao#4365), and its
weight-only int8 (about 250) is slower. Move when torchao's eager CPU path catches up.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from modelzoo.common.errors import ParamsError

QUANTIZE_CHOICES = ("int8",)
FLOAT_MODULES = ("classifier",)


def quantize_int8(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every ``nn.Linear`` except the classifier dynamically quantized to int8."""
    if device.type != "cpu":
        raise ParamsError("--quantize int8 runs on CPU only; on a GPU use runconfig.precision: bfloat16")
    engines = [engine for engine in torch.backends.quantized.supported_engines if engine != "none"]
    if not engines:
        raise ParamsError("--quantize int8: this torch build has no int8 CPU engine (fbgemm, x86 or qnnpack)")
    with warnings.catch_warnings():  # the deprecation notice; the module docstring says why we stay
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        plan = {
            name: per_channel_dynamic_qconfig
            for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name not in FLOAT_MODULES
        }
        return quantize_dynamic(model, plan)
