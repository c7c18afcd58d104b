"""What a benchmark ran on: the CPU's model and the instruction sets its figures depend on.

bfloat16 is only fast where the CPU multiplies it (AMX tiles or AVX512-BF16; elsewhere torch
emulates it through float32), and int8 where it has VNNI, so a figure without these flags cannot be
compared with one from another host.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Dict, Optional

import torch

CPUINFO = Path("/proc/cpuinfo")
FLAGS = {  # the name a report gives -> the /proc/cpuinfo flags of which one suffices
    "AMX": ("amx_tile",),
    "AVX512-BF16": ("avx512_bf16",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AVX-512": ("avx512f",),
    "AVX2": ("avx2",),
    "FMA": ("fma",),
}


def cpu_description(cpuinfo: Path = CPUINFO) -> Dict[str, object]:
    """``{"model": ..., "flags": {"AMX": bool, ...}}``; flags None where the OS does not list them."""
    fields: Dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():  # the first processor's block says it for all
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags: Optional[Dict[str, bool]] = None
    if "flags" in fields:
        present = set(fields["flags"].split())
        flags = {name: any(flag in present for flag in names) for name, names in FLAGS.items()}
    return {"model": fields.get("model name") or platform.processor() or platform.machine(), "flags": flags}


def host_description() -> Dict[str, object]:
    """The CPU, torch's version and thread count, and the OpenMP wait policy (it changes timings on a
    shared machine: spinning threads steal other processes' cores)."""
    return {"cpu": cpu_description(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def describe(host: Dict[str, object]) -> str:
    """``host_description()`` on one line, for a benchmark's header."""
    cpu = host["cpu"]
    flags = cpu["flags"]
    if flags:
        absent = [name for name, present in flags.items() if not present]
        listed = ", ".join(name for name, present in flags.items() if present) or "none of"
        listed += f"; no {', '.join(absent)}" if absent else ""
    else:
        listed = "flags unknown"
    return (f"{cpu['model']} ({listed}); torch {host['torch']}, {host['threads']} threads, "
            f"OMP_WAIT_POLICY={host['OMP_WAIT_POLICY'] or 'unset'}")
