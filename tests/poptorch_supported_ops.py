"""poptorch's list of supported operations, transcribed for the stand-in's operation check.

Source: "IPU supported operations", ``docs/user_guide/supported_ops.rst`` of the PopTorch user guide in
github.com/graphcore/poptorch at tag ``sdk/poptorch/3.4.0`` (commit c2a8b17762f1d7106f7bf048ff011ab4fee7685e;
the file is the same at ``sdk/poptorch/3.3.0``), i.e. poptorch 3.3 and 3.4 of Poplar SDK 3.3 and 3.4.
:data:`DOCUMENTED` holds the document's bulleted entries verbatim, section by section, so that it can be
checked against the document line by line.

The check sees what a ``torch.overrides.TorchFunctionMode`` sees: the torch functions, Tensor methods and
``torch.nn.functional`` calls the model's own code makes, named as ``torch.overrides.resolve_name`` names
them. The document names modules (``torch.nn.Linear``) where such a trace shows the functional call their
forward makes (``torch.nn.functional.linear``): :data:`FUNCTIONAL_FORMS` maps one to the other. A Tensor
method or operator of a listed ``torch.X`` counts as ``torch.X``. What the document allows in prose rather
than in a list (views, shape queries, casts, slicing with constant bounds) is in :data:`TENSOR_OPERATIONS`
with the sentence that allows it. Of the document's caveats, the one our model could break is encoded:
Embedding's ``padding_idx`` ("with the exception of the ``padding_idx`` parameter being unsupported").
Passing this check does not show that poptorch compiles the model: only a Poplar SDK can show that.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from modelzoo.common.strings import remove_prefix

# The document's bulleted entries, verbatim, under its section headings.
DOCUMENTED: Dict[str, Tuple[str, ...]] = {
    "Creation ops": (
        "torch.arange", "tensor.fill", "torch.full", "torch.full_like", "torch.Tensor.new_ones",
        "torch.Tensor.new_zeros", "torch.ones", "torch.ones_like", "torch.zeros", "torch.zeros_like",
    ),
    "Indexing, slicing, joining and mutating ops: PyTorch functions": (
        "torch.bincount", "torch.bucketize", "torch.cat", "torch.chunk", "torch.gather",
        "torch.index_select", "torch.index_reduce", "torch.reshape", "torch.roll", "torch.scatter",
        "torch.scatter_add", "torch.scatter_reduce", "torch.stack", "torch.split", "torch.squeeze",
        "torch.t", "torch.take_along_dim", "torch.transpose", "torch.unbind", "torch.unsqueeze",
        "torch.where",
    ),
    "Indexing, slicing, joining and mutating ops: Tensor methods": (
        "tensor.expand", "tensor.expand_as", "tensor.masked_fill", "tensor.index_fill_",
    ),
    "Random samplers": (
        "torch.bernoulli", "torch.distributions.Bernoulli", "torch.randn", "torch.normal",
        "torch.distributions.Normal", "torch.rand", "torch.uniform", "torch.distributions.Uniform",
        "torch.exponential", "torch.distributions.Exponential",
    ),
    "Pointwise ops": (
        "torch.abs", "torch.acos", "torch.acosh", "torch.add", "torch.addcdiv", "torch.amax", "torch.amin",
        "torch.asin", "torch.asinh", "torch.atan", "torch.atanh", "torch.bitwise_and", "torch.bitwise_not",
        "torch.bitwise_or", "torch.bitwise_xor", "torch.cdist", "torch.ceil", "torch.clamp",
        "torch.clamp_max", "torch.clamp_min", "torch.cos", "torch.cosh", "torch.div", "torch.exp",
        "torch.expm1", "torch.floor", "torch.floor_divide", "torch.fmod", "torch.frac", "torch.log",
        "torch.log10", "torch.log1p", "torch.log2", "torch.logical_and", "torch.logical_or", "torch.mul",
        "torch.norm", "torch.neg", "torch.pow", "torch.reciprocal", "torch.remainder", "torch.round",
        "torch.rsqrt", "torch.sigmoid", "torch.sign", "torch.sin", "torch.sinh", "torch.sqrt",
        "torch.square", "torch.sub", "torch.tan", "torch.tanh", "torch.true_divide", "torch.trunc",
    ),
    "Reduction ops": (
        "torch.all", "torch.any", "torch.argmax", "torch.argmin", "torch.count_nonzero", "torch.mean",
        "torch.median", "torch.prod", "torch.logsumexp", "torch.std", "torch.std_mean", "torch.sum",
        "torch.var", "torch.var_mean",
    ),
    "Comparison ops": (
        "torch.eq", "torch.ge", "torch.gt", "torch.le", "torch.lt", "torch.max", "torch.min", "torch.ne",
        "torch.isnan", "torch.topk", "torch.argsort", "torch.randperm", "torch.sort",
    ),
    "torch.linalg ops": (
        "torch.linalg.norm", "torch.linalg.matrix_norm", "torch.linalg.vector_norm",
    ),
    "Other ops": (
        "torch.cumsum", "torch.cumprod", "torch.cross", "torch.meshgrid", "torch.cartesian_prod",
        "torch.tensordot",
    ),
    "BLAS and LAPACK Operations": (
        "torch.addmm", "torch.matmul", "torch.bmm",
    ),
    "Convolution layers": (
        "torch.nn.Conv1d", "torch.nn.Conv2d", "torch.nn.Conv3d", "torch.nn.ConvTranspose1d",
        "torch.nn.ConvTranspose2d", "torch.nn.ConvTranspose3d",
    ),
    "Pooling layers": (
        "torch.nn.MaxPool1d", "torch.nn.MaxPool2d", "torch.nn.MaxPool3d", "torch.nn.AvgPool1d",
        "torch.nn.AvgPool2d", "torch.nn.AvgPool3d", "torch.nn.AdaptiveAvgPool1d",
        "torch.nn.AdaptiveAvgPool2d", "torch.nn.AdaptiveAvgPool3d",
    ),
    "Padding layers": (
        "torch.nn.ReflectionPad1d", "torch.nn.ReflectionPad2d", "torch.nn.ReplicationPad1d",
        "torch.nn.ReplicationPad2d", "torch.nn.ReplicationPad3d", "torch.nn.ZeroPad2d",
        "torch.nn.ConstantPad1d", "torch.nn.ConstantPad2d", "torch.nn.ConstantPad3d",
    ),
    "Activations": (
        "torch.nn.ELU", "torch.nn.CELU", "torch.nn.GELU", "torch.nn.Hardshrink", "torch.nn.LeakyReLU",
        "torch.nn.LogSoftmax", "torch.nn.Mish", "torch.nn.ReLU", "torch.nn.SELU", "torch.nn.SiLU",
        "torch.nn.Sigmoid", "torch.nn.Softmax", "torch.nn.Softplus", "torch.nn.Softsign",
        "torch.nn.Softshrink", "torch.nn.Tanh", "torch.nn.PReLU", "torch.nn.RReLU", "torch.nn.Hardtanh",
        "torch.nn.functional.glu", "torch.nn.Threshold",
    ),
    "Normalization layers": (
        "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d", "torch.nn.LayerNorm",
        "torch.nn.GroupNorm", "torch.nn.InstanceNorm1d", "torch.nn.InstanceNorm2d",
        "torch.nn.InstanceNorm3d", "torch.nn.utils.weight_norm",
    ),
    "Recurrent layers": (
        "torch.nn.RNN", "torch.nn.GRU", "torch.nn.LSTM",
    ),
    "Linear layers": (
        "torch.nn.Identity", "torch.nn.Linear", "torch.nn.Bilinear",
    ),
    "Dropout": (
        "torch.nn.dropout",
    ),
    "Sparse layers": (
        "torch.nn.Embedding", "torch.nn.EmbeddingBag", "torch.nn.functional.one_hot",
    ),
    "Loss functions": (
        "torch.nn.L1Loss", "torch.nn.MSELoss", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss",
        "torch.nn.BCELoss", "torch.nn.KLDivLoss", "torch.nn.PoissonNLLLoss", "torch.nn.HingeEmbeddingLoss",
        "torch.nn.BCEWithLogitsLoss", "torch.nn.SmoothL1Loss", "torch.nn.SoftMarginLoss",
        "torch.nn.CosineEmbeddingLoss", "torch.nn.MarginRankingLoss", "torch.nn.TripletMarginLoss",
        "torch.nn.CTCLoss",
    ),
    "Vision Layers": (
        "torch.nn.Upsample",
    ),
    "PyTorch Scatter functions": (
        "torch_scatter.scatter", "torch_scatter.composite.scatter_log_softmax",
        "torch_scatter.composite.scatter_softmax", "torch_scatter.composite.scatter_std",
        "torch_scatter.composite.scatter_logsumexp",
    ),
    "PyTorch Spline Convolution functions": (
        "torch_spline_conv.spline_basis", "torch_spline_conv.spline_weighting",
    ),
}


# The document names module classes; a trace shows the functional call each one's forward makes.
FUNCTIONAL_FORMS: Dict[str, str] = {
    "torch.nn.functional.linear": "torch.nn.Linear",
    "torch.nn.functional.bilinear": "torch.nn.Bilinear",
    "torch.nn.functional.embedding": "torch.nn.Embedding",
    "torch.nn.functional.embedding_bag": "torch.nn.EmbeddingBag",
    "torch.nn.functional.layer_norm": "torch.nn.LayerNorm",
    "torch.nn.functional.group_norm": "torch.nn.GroupNorm",
    "torch.nn.functional.batch_norm": "torch.nn.BatchNorm1d",
    "torch.nn.functional.instance_norm": "torch.nn.InstanceNorm1d",
    "torch.nn.functional.dropout": "torch.nn.dropout",
    "torch.nn.functional.gelu": "torch.nn.GELU",
    "torch.nn.functional.relu": "torch.nn.ReLU",
    "torch.nn.functional.elu": "torch.nn.ELU",
    "torch.nn.functional.celu": "torch.nn.CELU",
    "torch.nn.functional.selu": "torch.nn.SELU",
    "torch.nn.functional.leaky_relu": "torch.nn.LeakyReLU",
    "torch.nn.functional.silu": "torch.nn.SiLU",
    "torch.nn.functional.mish": "torch.nn.Mish",
    "torch.nn.functional.softplus": "torch.nn.Softplus",
    "torch.nn.functional.softsign": "torch.nn.Softsign",
    "torch.nn.functional.softshrink": "torch.nn.Softshrink",
    "torch.nn.functional.hardshrink": "torch.nn.Hardshrink",
    "torch.nn.functional.hardtanh": "torch.nn.Hardtanh",
    "torch.nn.functional.prelu": "torch.nn.PReLU",
    "torch.nn.functional.rrelu": "torch.nn.RReLU",
    "torch.nn.functional.threshold": "torch.nn.Threshold",
    "torch.nn.functional.sigmoid": "torch.nn.Sigmoid",
    "torch.nn.functional.tanh": "torch.nn.Tanh",
    "torch.nn.functional.softmax": "torch.nn.Softmax",
    "torch.nn.functional.log_softmax": "torch.nn.LogSoftmax",
    "torch.nn.functional.l1_loss": "torch.nn.L1Loss",
    "torch.nn.functional.mse_loss": "torch.nn.MSELoss",
    "torch.nn.functional.cross_entropy": "torch.nn.CrossEntropyLoss",
    "torch.nn.functional.nll_loss": "torch.nn.NLLLoss",
    "torch.nn.functional.binary_cross_entropy": "torch.nn.BCELoss",
    "torch.nn.functional.binary_cross_entropy_with_logits": "torch.nn.BCEWithLogitsLoss",
    "torch.nn.functional.kl_div": "torch.nn.KLDivLoss",
    "torch.nn.functional.poisson_nll_loss": "torch.nn.PoissonNLLLoss",
    "torch.nn.functional.hinge_embedding_loss": "torch.nn.HingeEmbeddingLoss",
    "torch.nn.functional.smooth_l1_loss": "torch.nn.SmoothL1Loss",
    "torch.nn.functional.soft_margin_loss": "torch.nn.SoftMarginLoss",
    "torch.nn.functional.cosine_embedding_loss": "torch.nn.CosineEmbeddingLoss",
    "torch.nn.functional.margin_ranking_loss": "torch.nn.MarginRankingLoss",
    "torch.nn.functional.triplet_margin_loss": "torch.nn.TripletMarginLoss",
    "torch.nn.functional.ctc_loss": "torch.nn.CTCLoss",
    "torch.nn.functional.conv1d": "torch.nn.Conv1d",
    "torch.nn.functional.conv2d": "torch.nn.Conv2d",
    "torch.nn.functional.conv3d": "torch.nn.Conv3d",
    "torch.nn.functional.max_pool1d": "torch.nn.MaxPool1d",
    "torch.nn.functional.max_pool2d": "torch.nn.MaxPool2d",
    "torch.nn.functional.max_pool3d": "torch.nn.MaxPool3d",
    "torch.nn.functional.avg_pool1d": "torch.nn.AvgPool1d",
    "torch.nn.functional.avg_pool2d": "torch.nn.AvgPool2d",
    "torch.nn.functional.avg_pool3d": "torch.nn.AvgPool3d",
    "torch.nn.functional.interpolate": "torch.nn.Upsample",
}

_VIEWS = 'Tensor operations: "We will also create tensor views."'
_HOST_SIDE = (
    'Tensor operations: "Many of the tensor operations will be executed before even reaching the IPU"'
)
_IGNORED = 'Tensor operations: "Some, like contiguous(), make no sense on [the IPU] so are ignored."'
_CASTS = '16-bit float operations: "Tensors and models can be freely cast to and from float16"'
_SLICES = "Indexing, slicing, joining and mutating ops: a slice whose start and end are constants"

# What the document allows in prose: name -> the sentence that allows it.
TENSOR_OPERATIONS: Dict[str, str] = {
    "torch.Tensor.view": _VIEWS,
    "torch.Tensor.permute": _VIEWS,
    "torch.Tensor.flatten": _VIEWS,
    "torch.flatten": _VIEWS,
    "torch.Tensor.__getitem__": _SLICES,
    "torch.Tensor.shape.__get__": _HOST_SIDE,
    "torch.Tensor.dtype.__get__": _HOST_SIDE,
    "torch.Tensor.device.__get__": _HOST_SIDE,
    "torch.Tensor.ndim.__get__": _HOST_SIDE,
    "torch.Tensor.size": _HOST_SIDE,
    "torch.Tensor.dim": _HOST_SIDE,
    "torch.Tensor.contiguous": _IGNORED,
    "torch.Tensor.to": _CASTS,
    "torch.Tensor.type_as": _CASTS,
    "torch.Tensor.float": _CASTS,
    "torch.Tensor.half": _CASTS,
    "torch.Tensor.int": _CASTS,
    "torch.Tensor.long": _CASTS,
    "torch.Tensor.bool": _CASTS,
}

# Python operators on tensors -> the listed torch function they compute (names differ across torch versions:
# 2.0 resolves ``==`` to ``torch.Tensor.eq``, later versions to ``torch.Tensor.__eq__``).
_OPERATORS = {
    "__add__": "torch.add", "__radd__": "torch.add", "__iadd__": "torch.add",
    "__sub__": "torch.sub", "__rsub__": "torch.sub", "__isub__": "torch.sub",
    "__mul__": "torch.mul", "__rmul__": "torch.mul", "__imul__": "torch.mul",
    "__truediv__": "torch.div", "__rtruediv__": "torch.div", "__itruediv__": "torch.div",
    "__floordiv__": "torch.floor_divide", "__mod__": "torch.remainder",
    "__pow__": "torch.pow", "__rpow__": "torch.pow", "__matmul__": "torch.matmul",
    "__neg__": "torch.neg", "__abs__": "torch.abs",
    "__eq__": "torch.eq", "__ne__": "torch.ne", "__lt__": "torch.lt", "__le__": "torch.le",
    "__gt__": "torch.gt", "__ge__": "torch.ge",
    "__and__": "torch.bitwise_and", "__or__": "torch.bitwise_or", "__xor__": "torch.bitwise_xor",
    "__invert__": "torch.bitwise_not",
}

_LISTED = {entry for entries in DOCUMENTED.values() for entry in entries}


def documented_as(name: str) -> Optional[str]:
    """The document's entry (or sentence) that allows the torch function ``name``, or None if none does."""
    if name in TENSOR_OPERATIONS:
        return TENSOR_OPERATIONS[name]
    if name in FUNCTIONAL_FORMS:
        return FUNCTIONAL_FORMS[name]
    if name in _LISTED:
        return name
    method = remove_prefix(name, "torch.Tensor.")
    if method == name:
        return None
    if method in _OPERATORS:
        return _OPERATORS[method]
    for spelling in (method, method.rstrip("_")):  # an in-place method counts as its listed form
        for prefix in ("torch.", "tensor.", "torch.Tensor."):
            if prefix + spelling in _LISTED:
                return prefix + spelling
    return None


def unsupported_reason(name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[str]:
    """Why poptorch 3.3/3.4 would refuse the call ``name(*args, **kwargs)``, or None if its list has it."""
    entry = documented_as(name)
    if entry is None:
        return f"{name} is not in poptorch's supported operations (supported_ops.rst, poptorch 3.4.0)"
    if name == "torch.nn.functional.embedding":
        padding_idx = kwargs.get("padding_idx", args[2] if len(args) > 2 else None)
        if padding_idx is not None:
            return (
                f"{name} with padding_idx={padding_idx}: supported_ops.rst says Embedding is supported "
                '"with the exception of the padding_idx parameter being unsupported"'
            )
    return None
