"""CPU back-end: float32 or bfloat16 autocast; several processes under torchrun use gloo."""

from __future__ import annotations

import torch

from modelzoo.backends.torch_backend import TorchBackend
from modelzoo.common.errors import ParamsError
from modelzoo.params.params import Params


def cpu_backend(params: Params) -> TorchBackend:
    """The CPU, once the params ask for nothing it cannot do."""
    if params.runconfig.precision == "float16":
        raise ParamsError("runconfig.precision: float16 needs a GPU (loss scaling); use float32 or bfloat16 on CPU")
    return TorchBackend(params, lambda local_rank: torch.device("cpu"), "gloo")
