"""Rehearse benchmarks/gpu_check.sh as the GPU machine would run it, on this CPU.

What the device call would send (the files git tracks, untracked files it does not ignore, and
the carried gpu_assets/) is copied alone into an empty folder: no .git, no ../shared beside it, no
editable install. A fresh virtual environment of Python 3.12 gets the image's packages
(benchmarks/gpu_image.txt) and nothing else, and ``gpu_check.sh --dry-run`` runs there with the
device's defaults (its own PYTHONPATH, gpu_assets/ inside the copy). Prints the size that would
travel and the check's table; exits with the check's exit code. Needs the registry once (about
2.6 GB: torch 2.11.0 is PyPI's CUDA build; pip's cache keeps it for later runs) and a few minutes.

    python benchmarks/write_gpu_assets.py && python benchmarks/gpu_rehearsal.py [--python python3.12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from gpu_manifest import verify
from write_gpu_assets import DEFAULT_OUT, REPO_ROOT, AssetsError, report_travel, travelling_files

IMAGE_PACKAGES = REPO_ROOT / "benchmarks" / "gpu_image.txt"
IMAGE_PYTHON = "3.12"


def python_version(interpreter: str) -> Optional[str]:
    """``3.12`` for a Python 3.12 that runs, None for anything else (pyenv's shims exist for versions
    they do not select, and fail when run)."""
    try:
        result = subprocess.run([interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_python(requested: Optional[str]) -> str:
    """The interpreter of the image's Python version: ``--python``, else python3.12 on PATH or pyenv's."""
    candidates = [requested] if requested else [
        shutil.which(f"python{IMAGE_PYTHON}"),
        *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{IMAGE_PYTHON}.*/bin/python3"))),
    ]
    for candidate in candidates:
        if candidate and python_version(candidate) == IMAGE_PYTHON:
            return candidate
    raise SystemExit(f"error: no Python {IMAGE_PYTHON} found: give one with --python")


def copy_travelling(target: Path, carried: Path) -> None:
    """The device call's copy of the checkout in ``target`` (made anew), ``carried`` as its gpu_assets/
    (where the check looks by default)."""
    shutil.rmtree(target, ignore_errors=True)
    for source in travelling_files(REPO_ROOT, []):
        destination = target / source.relative_to(REPO_ROOT)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    shutil.copytree(carried, target / DEFAULT_OUT.name)


def timed(what: str, command: List[str], **options) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    result = subprocess.run(command, **options)
    print(f"{what}: exit {result.returncode}, {time.perf_counter() - started:.0f} s", flush=True)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", help=f"a Python {IMAGE_PYTHON} interpreter (default: found on PATH or in pyenv)")
    parser.add_argument("--assets", type=Path, default=DEFAULT_OUT, help="the folder the device call carries")
    parser.add_argument("--keep", type=Path,
                        help="build here and keep it; a second run reuses its environment (default: a temporary folder)")
    args = parser.parse_args(argv)
    problems = verify(args.assets)
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        report_travel(args.assets.resolve())
    except AssetsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    python = find_python(args.python)
    root = args.keep or Path(tempfile.mkdtemp(prefix="gpu_rehearsal."))
    checkout, venv = root / "checkout", root / "venv"  # nothing named shared/ beside the copy
    try:
        copy_travelling(checkout, args.assets.resolve())
        print(f"copied to {checkout}")
        if not (venv / "bin" / "python3").exists():
            if timed(f"venv ({python})", [python, "-m", "venv", str(venv)]).returncode:
                return 2
            install = [str(venv / "bin" / "python3"), "-m", "pip", "install", "-q", "-r", str(IMAGE_PACKAGES)]
            if timed(f"pip install -r {IMAGE_PACKAGES.name}", install).returncode:
                return 2
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "GPU_ASSETS")}
        env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHON="python3")
        check = timed("gpu_check.sh --dry-run", ["bash", str(checkout / "benchmarks" / "gpu_check.sh"), "--dry-run",
                                                 "--out", str(root / "out"), "--work", str(root / "work")],
                      cwd=root, env=env)
        return check.returncode
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
