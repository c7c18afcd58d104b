"""``--engine onednn``: float32 CPU prediction with each encoder layer's linears in fused oneDNN kernels.

An eager encoder layer makes separate passes over its largest tensors for what a matrix multiply
could do on its way out: ``addmm`` first copies the bias into the output, GELU reads and writes the
FFN's widest tensor again, and each residual add is one more pass before its LayerNorm. oneDNN's
linear (``mkldnn::_linear_pointwise``, the op ``torch.compile`` emits for a linear with a pointwise
epilogue on x86) takes the weight prepacked once into its own blocked layout, adds the bias and
applies the GELU (a post-op) or adds the residual (a binary post-op) while the output tile is still
in cache. That is the float32 counterpart of :mod:`modelzoo.predict.int8`'s ``qlinear_pointwise``.
Attention and LayerNorm stay as the model computes them, so with ``skip_padding`` attention still
runs per sequence on the real tokens, with neither padding nor mask.

The arithmetic is the same up to float32 rounding (the kernels sum in another order), so predictions
are the float model's. Whether these kernels beat torch's default (MKL's ``sgemm`` with separate
passes) depends on the CPU: oneDNN picks its kernels by instruction set (AMX, AVX-512, AVX2), MKL is
tuned per vendor. :mod:`modelzoo.predict.engine_choice` times both on the host where it runs
(``--engine auto``, the default) and keeps the faster.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from modelzoo.bert.model import BertLayer, RealTokens
from modelzoo.common.errors import ParamsError
from modelzoo.predict.int8 import FUSED_ACTIVATIONS, onednn_op_available

NO_POST_OP = ("none", "")


def onednn_float32_available() -> bool:
    return onednn_op_available("mkldnn", "_linear_pointwise")


class OneDnnLinear(nn.Module):
    """``activation(linear(x))``, or ``linear(x) + residual``, in one oneDNN call with a prepacked weight."""

    def __init__(self, linear: nn.Linear, activation: Tuple[str, str] = NO_POST_OP) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().float(), None)
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        self.activation = activation

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if residual is not None:
            return torch.ops.mkldnn._linear_pointwise(x, residual, self.packed_weight, self.bias, "add")
        name, algorithm = self.activation
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, name, [], algorithm)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation[0]}"


class FusedBertLayer(nn.Module):
    """A trained :class:`~modelzoo.bert.model.BertLayer` for inference: the same post-LN layer, its
    bias, GELU and residual adds inside the linears (:class:`OneDnnLinear`), no dropout."""

    def __init__(self, layer: BertLayer, activation: Tuple[str, str]) -> None:
        super().__init__()
        self.attention = layer.attention
        self.attention.qkv = OneDnnLinear(layer.attention.qkv)
        self.attention.output = OneDnnLinear(layer.attention.output)
        self.attention_norm = layer.attention_norm
        self.intermediate = OneDnnLinear(layer.intermediate, activation)
        self.output = OneDnnLinear(layer.output)
        self.output_norm = layer.output_norm

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor],
        real_tokens: Optional[RealTokens] = None,
    ) -> torch.Tensor:
        context = self.attention.context(hidden_states, attention_mask, real_tokens)
        hidden_states = self.attention_norm(self.attention.output(context, residual=hidden_states))
        return self.output_norm(self.output(self.intermediate(hidden_states), residual=hidden_states))


def fuse_float32(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` (a trained token or sequence classifier, in eval mode) with every encoder layer as a
    :class:`FusedBertLayer`; the embeddings and the classifier stay as they are."""
    if device.type != "cpu":
        raise ParamsError("--engine onednn runs on CPU only")
    if not onednn_float32_available():
        raise ParamsError("--engine onednn: this torch build has no oneDNN linear (mkldnn::_linear_pointwise); "
                          "use --engine torch")
    activation = FUSED_ACTIVATIONS[model.config.encoder_nonlinearity]
    layers = model.bert.encoder.layer
    for index, layer in enumerate(layers):
        layers[index] = FusedBertLayer(layer, activation)
    return model.eval()
