"""CPU back-end: float32 or bfloat16 autocast; several processes under torchrun use gloo."""

from __future__ import annotations

import torch

from modelzoo.common.errors import ParamsError
from modelzoo.params.params import Params

DISTRIBUTED_BACKEND = "gloo"


def cpu_device(params: Params) -> torch.device:
    """The CPU, once the params ask for nothing it cannot do."""
    if params.runconfig.precision == "float16":
        raise ParamsError("runconfig.precision: float16 needs a GPU (loss scaling); use float32 or bfloat16 on CPU")
    return torch.device("cpu")
