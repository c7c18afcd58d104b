"""The first seconds of benchmarks/gpu_check.sh: whether everything its long steps need is here.

One line and one JSON entry per check: the packages the steps import (with their versions, the
record of what the machine's image holds), this checkout's modelzoo imported (PYTHONPATH, not an
installed copy), the device (CUDA visible, a bfloat16 matrix product runs on it, NCCL there for
torchrun; gloo on a CPU dry run), room in the work folder, and the carried assets (every file's
size and SHA-256 against write_gpu_assets.py's manifest). Exits 1 when a check fails: the script then
stops within seconds instead of failing each long step in turn.

    python benchmarks/gpu_preflight.py --device cuda --assets gpu_assets --work DIR --json preflight.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch
from gpu_manifest import REAL_ASSETS, read_manifest, summary, verify

REPO_ROOT = Path(__file__).resolve().parents[1]
# module -> distribution: what the steps import beside torch (model_step.py and gpu_parity.py import
# transformers and accelerate; run.py yaml, numpy, tqdm, filelock and torch's tensorboard writer).
PACKAGES = {
    "transformers": "transformers", "tokenizers": "tokenizers", "safetensors": "safetensors",
    "accelerate": "accelerate", "numpy": "numpy", "yaml": "PyYAML", "tqdm": "tqdm", "filelock": "filelock",
    "tensorboard": "tensorboard",
}
PROJECT_MODULES = ("modelzoo.cli.main", "modelzoo.tools.convert_checkpoint", "data_processing.write_csv_ner")
MIN_FREE_BYTES = 2 * 2**30  # CSV folders, a few MiniLM checkpoints and torch.compile's cache

Check = Tuple[str, bool, str]


def packages() -> Check:
    versions, missing = [f"python {platform.python_version()}", f"torch {torch.__version__}"], []
    for module, distribution in PACKAGES.items():
        try:
            importlib.import_module(module)
            versions.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except ImportError as error:
            missing.append(f"{module} ({error})")
    if missing:
        return "packages", False, "missing: " + ", ".join(missing)
    return "packages", True, ", ".join(versions)


def project() -> Check:
    """The steps run this checkout's code: an installed modelzoo elsewhere would be tested instead."""
    try:
        for module in PROJECT_MODULES:
            importlib.import_module(module)
    except ImportError as error:
        return "project", False, f"{error} (PYTHONPATH={REPO_ROOT}?)"
    found = Path(sys.modules["modelzoo"].__file__).resolve()
    if REPO_ROOT not in found.parents:
        return "project", False, f"modelzoo imported from {found}, not from {REPO_ROOT}"
    return "project", True, f"modelzoo from {found.parent}"


def device(kind: str) -> Check:
    if kind == "cpu":
        import torch.distributed as dist

        return "device", dist.is_gloo_available(), f"CPU ({platform.processor() or platform.machine()}), gloo"
    if not torch.cuda.is_available():
        return "device", False, f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}) sees no CUDA device"
    import torch.distributed as dist

    name, capability = torch.cuda.get_device_name(), torch.cuda.get_device_capability()
    matrix = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
    finite = bool(torch.isfinite((matrix @ matrix).float()).all())  # .all() on the host: a full round trip
    free, total = torch.cuda.mem_get_info()
    detail = (f"{name}, compute capability {capability[0]}.{capability[1]}, {free / 2**30:.0f} of {total / 2**30:.0f} "
              f"GiB free, bfloat16 {'yes' if torch.cuda.is_bf16_supported() else 'NO'}, "
              f"NCCL {'yes' if dist.is_nccl_available() else 'NO'}, a bfloat16 matmul {'ran' if finite else 'FAILED'}")
    return "device", finite and torch.cuda.is_bf16_supported() and dist.is_nccl_available(), detail


def work_space(work: Path) -> Check:
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    return "work folder", free >= MIN_FREE_BYTES, f"{work}: {free / 2**30:.1f} GiB free (needs {MIN_FREE_BYTES / 2**30:.0f})"


def assets(folder: Path, kind: str) -> Check:
    """On CUDA the real assets: the tiny stand-in would make the fine-tune's figures meaningless."""
    problems = verify(folder)
    if not problems and kind == "cuda" and read_manifest(folder)["kind"] != REAL_ASSETS:
        problems = [f"{folder} holds the dry run's stand-in: write {REAL_ASSETS} with python benchmarks/write_gpu_assets.py"]
    return "assets", not problems, "; ".join(problems) if problems else f"{summary(folder)} verified"


def run_check(check: Callable[[], Check], name: str) -> Check:
    """A check that raises is a failed check with its error, not a traceback that hides the others."""
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - reported as the check's failure, the run goes on
        return name, False, f"{type(error).__name__}: {error}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--assets", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="where the steps write their big files")
    parser.add_argument("--json", type=Path, help="also write the checks here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    checks = [
        run_check(packages, "packages"),
        run_check(project, "project"),
        run_check(lambda: device(args.device), "device"),
        run_check(lambda: work_space(args.work), "work folder"),
        run_check(lambda: assets(args.assets, args.device), "assets"),
    ]
    for name, ok, detail in checks:
        print(f"{name:11s} {'ok' if ok else 'FAILED'}: {detail}")
    report = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" and torch.cuda.is_available() else "CPU",
        "torch": torch.__version__,
        "checks": [{"check": name, "ok": ok, "detail": detail} for name, ok, detail in checks],
        "seconds": round(time.perf_counter() - started, 2),
        "passed": all(ok for _, ok, _ in checks),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
