"""GPU back-end: one CUDA device per process (torchrun for many, NCCL), AMP, optional torch.compile."""

from __future__ import annotations

import torch

from modelzoo.backends.torch_backend import TorchBackend
from modelzoo.common.errors import UserError
from modelzoo.params.params import Params


class CudaUnavailableError(UserError):
    """run.py GPU on a machine where torch sees no CUDA device."""


def require_cuda() -> torch.device:
    """The CUDA device, or one clear error before anything is read or written (every GPU mode)."""
    if not torch.cuda.is_available():
        raise CudaUnavailableError(
            f"run.py GPU: no CUDA device is available (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}); use run.py CPU, or see PYTHON-SETUP.md"
        )
    return torch.device("cuda")


def gpu_of_rank(local_rank: int) -> torch.device:
    """The process's GPU, made current (one GPU per process under torchrun)."""
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def gpu_backend(params: Params) -> TorchBackend:
    require_cuda()
    return TorchBackend(params, gpu_of_rank, "nccl")
