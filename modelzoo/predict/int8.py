"""``--quantize int8``: the encoder's linear layers with int8 weights, for faster CPU prediction.

Prediction on CPU spends most of its time in the encoder's matrix multiplies, which already run
near the float32 peak of the cores, so the way to go faster is fewer bits. Dynamic quantization
stores each weight matrix as int8 with one scale per output channel and quantizes each batch's
activations on the fly, so it needs no calibration data. The classifier stays in float: it is
tiny, and its logits decide every tag.

Where the bits go. The int8 kernels (fbgemm) multiply unsigned 8-bit activations by signed 8-bit
weights and add the products in pairs into 16 bits, which can overflow when both use their full
range (255 x 128 x 2 > 32767) on CPUs without VNNI. PyTorch's default guards against that by
quantizing the *activations* to 7 bits (``reduce_range``). That is the costly choice for BERT:
the activations have one scale for the whole batch, and a few outlier channels (a LayerNorm
output channel or a single FFN neuron tens of times larger than the typical value) stretch that
scale, so most values get only a handful of levels, and one bit more or less there decides many
tags. The weights have a scale per output channel and lose almost nothing at 7 bits. So here the
activations keep all 8 bits and the weights take 7 (-64..63): the pair sums stay below
2 x 255 x 64 = 32640 on every CPU, no overflow, and the kernels are the same, so the speed is too.
``benchmarks/predict.py`` prints speed and F1 of float32 and int8 (README: Predict, Measured).

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

with warnings.catch_warnings():  # the deprecation notice; the module docstring says why we stay
    warnings.simplefilter("ignore")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import QConfig, quantize_dynamic
    from torch.ao.quantization.observer import PerChannelMinMaxObserver, default_dynamic_quant_observer

QUANTIZE_CHOICES = ("int8",)
FLOAT_MODULES = ("classifier", "bert.pooler.dense")  # what decides the label stays float
WEIGHT_RANGE = (-64, 63)  # 7 bits: see the module docstring

SEVEN_BIT_WEIGHTS = QConfig(
    activation=default_dynamic_quant_observer,  # unsigned 8 bits, one scale per batch
    weight=PerChannelMinMaxObserver.with_args(
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=WEIGHT_RANGE[0], quant_max=WEIGHT_RANGE[1]
    ),
)


class FullRangeInt8Linear(DynamicInt8Linear):
    """A dynamic int8 linear whose activations use all 8 bits (PyTorch's uses 7: ``reduce_range``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


def quantize_int8(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every ``nn.Linear`` except the classifier (and pooler) dynamically quantized to int8."""
    if device.type != "cpu":
        raise ParamsError("--quantize int8 runs on CPU only; on a GPU use runconfig.precision: bfloat16")
    engines = [engine for engine in torch.backends.quantized.supported_engines if engine != "none"]
    if not engines:
        raise ParamsError("--quantize int8: this torch build has no int8 CPU engine (fbgemm, x86 or qnnpack)")
    plan = {
        name: SEVEN_BIT_WEIGHTS
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name not in FLOAT_MODULES
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, plan, mapping={nn.Linear: FullRangeInt8Linear})
