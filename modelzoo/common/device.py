"""Where and in what precision a run computes: one object the loop, evaluation and prediction share.

What differs between a CPU and a CUDA GPU beyond the device itself is decided here, once, as a
property of :class:`DeviceSetup`, so that no other module asks which kind of device it runs on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX tiles (elsewhere bfloat16 autocast is emulated and slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch 2.0's torch.cpu has neither
    return device.type == "cpu" and any(getattr(cpu, check, lambda: False)() for check in checks)


@dataclass
class DeviceSetup:
    """How the executor runs the model: device, autocast dtype, loss scaling, and the device's policies.

    ``precision`` "auto" becomes "bfloat16" where the device computes it natively, else "float32".
    """

    device: torch.device
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision == "auto":
            self.precision = "bfloat16" if native_bfloat16(self.device) else "float32"

    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    @property
    def skip_padding(self) -> bool:
        """Whether eager forwards run on the real tokens only (``BertModel``'s ``skip_padding``).

        On a CPU that does less work, and the per-length attention blocks cost nothing extra. On a GPU
        it would cost host synchronisations (the token count and the blocks depend on the data) and
        an attention launch per sequence length; one SDPA call over the padded or packed rows with
        the block-diagonal mask keeps the shapes static instead.
        """
        return self.is_cpu

    @property
    def attention_kernel(self) -> str:
        """SDPA, except bfloat16 on a CPU, where torch's SDPA backward is slower than matmul and softmax."""
        return "matmul" if self.is_cpu and self.precision == "bfloat16" else "sdpa"

    @property
    def fused_optimizer(self) -> bool:
        """torch's fused AdamW/Adam/SGD kernels run on CPU and CUDA tensors."""
        return self.device.type in ("cpu", "cuda")

    @property
    def ddp_device_ids(self) -> Optional[List[int]]:
        """``DistributedDataParallel``'s ``device_ids``: the process's GPU, none for CPU processes."""
        return [self.device.index] if self.device.type == "cuda" else None

    @property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        return {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.precision]

    def autocast(self):
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Dynamic loss scaling, on only for float16 (bfloat16 has float32's range).

        torch 2.0 (poptorch 3.3/3.4's) has only ``torch.cuda.amp.GradScaler``, which needs no GPU when off.
        """
        enabled = self.precision == "float16"
        if not hasattr(torch.amp, "GradScaler"):
            return torch.cuda.amp.GradScaler(enabled=enabled)
        return torch.amp.GradScaler(self.device.type, enabled=enabled)

    def to_device(self, batch: Dict[str, torch.Tensor], keys: Tuple[str, ...]) -> Dict[str, torch.Tensor]:
        non_blocking = self.device.type == "cuda"  # pinned host batches overlap their copy with compute
        return {key: batch[key].to(self.device, non_blocking=non_blocking) for key in keys if key in batch}
