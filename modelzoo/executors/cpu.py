"""CPU executor: float32 or bfloat16 autocast; several processes under torchrun use gloo."""

from __future__ import annotations

import torch

from modelzoo.common.schema import ParamsError
from modelzoo.executors.torch_runner import run_on_torch_device
from modelzoo.run.params import Params


def run(params: Params, mode: str, strict_loading: bool = True) -> None:
    if params.runconfig.precision == "float16":
        raise ParamsError("runconfig.precision: float16 needs a GPU (loss scaling); use float32 or bfloat16 on CPU")
    run_on_torch_device(params, mode, torch.device("cpu"), "gloo", strict_loading)
