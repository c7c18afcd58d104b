"""``--quantize int8``: the encoder's linear layers as int8 matrix multiplies, for faster CPU prediction.

Prediction on CPU spends most of its time in the encoder's matrix multiplies, which already run
near the float32 peak of the cores, so the way to go faster is fewer bits. Each weight matrix is
stored as int8 with one scale per output channel, and each call quantizes its input on the fly
(dynamic quantization), so no calibration data is needed. The classifier stays in float: it is
tiny, and its logits decide every tag.

Where the bits go. The input gets one scale for the whole batch and keeps all 8 bits (PyTorch's
dynamic quantization takes 7, ``reduce_range``, which costs entity F1); a scale per row would need
a rescaling pass after the multiply and give up the fused GELU. One scale suits inputs whose rows
are alike, but the input of the FFN's second linear (the GELU output) has a few tokens many times
larger than the rest, which would leave the others a handful of levels: there those rows get a
scale of their own in a second, small multiply (``outlier_rows``), and that brings int8's entity
F1 back to float32's (docs/PREDICT.md, docs/MEASURED.md). The weights have a scale per output channel and
lose almost nothing at 7 bits (-64..63). That keeps every pair of products that an int8 kernel
without VNNI adds into 16 bits below 2 x 255 x 64 = 32640, so the same weights are exact on every
x86 CPU. The export's ``model_int8.onnx`` has these weights and one input scale per batch.

The kernels. The matrix multiply is oneDNN's ``onednn::qlinear_pointwise``, the op that
``torch.compile`` emits for quantized linears on x86: it runs on AMX or VNNI where the CPU has them,
adds the bias and applies the layer's GELU in the same pass (the GELU output is the largest tensor
of the layer). ``torch.ao``'s ``quantize_dynamic`` (fbgemm) has neither and was markedly slower, and
torchao's eager CPU path has no fast x86 int8 kernel yet (pytorch/ao#4365). The input is quantized by
``torch.quantize_per_tensor``, one pass, and handed to oneDNN as its uint8 storage.
``benchmarks/predict.py`` prints speed and F1 of float32 and int8 (docs/PREDICT.md, docs/MEASURED.md).
"""

from __future__ import annotations

import warnings
from typing import Dict, Tuple

import torch
from torch import nn

from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import ParamsError

QUANTIZE_CHOICES = ("int8",)
FLOAT_MODULES = ("classifier", "bert.pooler.dense")  # what decides the label stays float
WEIGHT_RANGE = (-64, 63)  # 7 bits: see the module docstring
INPUT_LEVELS = 255  # uint8, all 8 bits
ROW_BUCKET = 64  # the int8 kernel multiplies a multiple of 64 rows: see _multiply
OUTLIER_FACTOR = 3.0  # Int8Linear(outlier_rows=True): rows beyond 3x the median row's magnitude get their own scale

# BertConfig.encoder_nonlinearity -> oneDNN's post-op (name, algorithm), fused into the FFN's first linear
FUSED_ACTIVATIONS: Dict[str, Tuple[str, str]] = {
    "gelu": ("gelu", "none"),  # erf
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "relu": ("relu", ""),
}


def onednn_int8_available() -> bool:
    return onednn_op_available("onednn", "qlinear_pointwise")


def onednn_op_available(namespace: str, name: str) -> bool:
    """Whether this torch build has oneDNN and the op ``torch.ops.<namespace>.<name>``."""
    try:
        getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        return False
    return torch.backends.mkldnn.is_available()


class Int8Linear(nn.Module):
    """``activation(linear(x))`` with int8 weights (a scale per output row) and the input quantized per call.

    ``outlier_rows``: quantize the rows whose largest magnitude passes ``OUTLIER_FACTOR`` times the
    median row's on their own, with a second, small multiply (see the module docstring).
    """

    def __init__(self, linear: nn.Linear, activation: Tuple[str, str] = ("none", ""), outlier_rows: bool = False) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_scale = (weight.abs().amax(1) / WEIGHT_RANGE[1]).clamp(min=torch.finfo(torch.float32).tiny)
        self.int8_weight = torch.round(weight / self.weight_scale[:, None]).clamp(*WEIGHT_RANGE).to(torch.int8)
        self.packed_weight = torch.ops.onednn.qlinear_prepack(self.int8_weight, None)
        self.weight_zero_point = torch.zeros(self.out_features, dtype=torch.int64)
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        self.activation = activation
        self.outlier_rows = outlier_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        output = self._split_outlier_rows(rows) if self.outlier_rows else self._multiply(rows, *torch.aminmax(rows))
        return output.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def _multiply(self, rows: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``rows`` quantized to uint8 over ``[low, high]`` (values beyond saturate), through the int8 kernel.

        oneDNN builds a kernel for each new row count (building takes longer than running it) and
        caches it, and batches of varying sentences bring ever new row counts; so the rows go in
        padded to a multiple of ``ROW_BUCKET`` (a few dozen kernels then serve every batch), and the
        padding's outputs are dropped."""
        low, high = min(float(low), 0.0), max(float(high), 0.0)  # the range holds 0 (uint8 with a zero point)
        scale = max(high - low, torch.finfo(torch.float32).eps) / INPUT_LEVELS
        zero_point = min(max(round(-low / scale), 0), INPUT_LEVELS)
        with warnings.catch_warnings():  # quantized tensors are deprecated; this one lives for one line
            warnings.simplefilter("ignore")
            int8_rows = _uint8_view(torch.quantize_per_tensor(rows, scale, zero_point, torch.quint8))
        padding = -len(rows) % ROW_BUCKET
        if padding:
            int8_rows = torch.cat((int8_rows, int8_rows.new_zeros(padding, self.in_features)))
        name, algorithm = self.activation
        output = torch.ops.onednn.qlinear_pointwise(
            int8_rows, scale, zero_point, self.packed_weight, self.weight_scale, self.weight_zero_point, self.bias,
            1.0, 0, torch.float32, name, [], algorithm,
        )
        return output[: len(rows)]

    def _split_outlier_rows(self, rows: torch.Tensor) -> torch.Tensor:
        row_low, row_high = rows.amin(1), rows.amax(1)  # two passes: torch.aminmax(dim=1) is slower still
        magnitude = torch.maximum(row_high, -row_low)
        outliers = magnitude > OUTLIER_FACTOR * magnitude.median()
        outlier_index = torch.nonzero(outliers).squeeze(1)
        if len(outlier_index) == 0:
            return self._multiply(rows, row_low.min(), row_high.max())
        output = self._multiply(rows, row_low[~outliers].min(), row_high[~outliers].max())
        outlier_rows = rows.index_select(0, outlier_index)
        return output.index_copy_(0, outlier_index, self._multiply(outlier_rows, *torch.aminmax(outlier_rows)))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation[0]}, "
                f"outlier_rows={self.outlier_rows}")


def _uint8_view(quantized: torch.Tensor) -> torch.Tensor:
    """The uint8 storage of a ``torch.quint8`` tensor as a plain tensor, without the copy of ``int_repr``."""
    return torch.empty(0, dtype=torch.uint8).set_(
        quantized.untyped_storage(), quantized.storage_offset(), quantized.shape, quantized.stride()
    )


def quantize_int8(model: nn.Module, setup: DeviceSetup) -> nn.Module:
    """``model`` with every ``nn.Linear`` except the classifier (and pooler) as :class:`Int8Linear`,
    each encoder layer's activation fused into its FFN's first linear."""
    if not setup.is_cpu:
        raise ParamsError("--quantize int8 runs on CPU only; on a GPU use runconfig.precision: bfloat16")
    if not onednn_int8_available():
        raise ParamsError(
            "--quantize int8: this torch build has no oneDNN int8 kernels (onednn::qlinear_pointwise); "
            "use --engine onnxruntime --quantize int8"
        )
    for layer in model.bert.encoder.layer:
        layer.intermediate = Int8Linear(layer.intermediate, FUSED_ACTIVATIONS[model.config.encoder_nonlinearity])
        layer.activation = nn.Identity()
        layer.output = Int8Linear(layer.output, outlier_rows=True)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name not in FLOAT_MODULES:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, Int8Linear(module))
    return model
