"""The library runs on the oldest Python that pyproject.toml's requires-python admits (checked by vermin).

The floor is 3.8, the Python of the Poplar SDK 3.3/3.4 Ubuntu 20.04 build, whose poptorch pins torch
2.0.1 (PYTHON-SETUP.md). vermin reads every module of the library and the offline scripts, annotations
included (the params schema evaluates them at run time): ``--eval-annotations`` makes it count
``list[int]`` (3.9) and ``--feature union-types`` makes it count ``int | None`` (3.10), which 3.8 cannot
evaluate, even under ``from __future__ import annotations``. The newest Python feature it finds must
not be newer than the floor; tests/check_torch201.py runs the model and IPU tests on 3.8 itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Tuple

from tests.conftest import REPO_ROOT

SOURCES = ("modelzoo", "data_processing", "run.py")


def _requires_python_floor() -> Tuple[int, int]:
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', text, re.MULTILINE)
    assert match, "pyproject.toml: requires-python must read \">=X.Y\""
    return int(match.group(1)), int(match.group(2))


def test_no_module_needs_a_newer_python_than_requires_python():
    major, minor = _requires_python_floor()
    result = subprocess.run(
        # --exclude long: vermin takes Tensor.long() for Python 2's long type.
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "--eval-annotations",
         "--feature", "union-types", "--exclude", "long", "--violations", f"--target={major}.{minor}-",
         *SOURCES],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"needs a Python newer than {major}.{minor}:\n{result.stdout}{result.stderr}"
    assert "incompatible versions" not in result.stdout, result.stdout
    found = re.search(r"Minimum required versions: (\d+)\.(\d+)", result.stdout)
    assert found, result.stdout
    assert (int(found.group(1)), int(found.group(2))) <= (major, minor), result.stdout
