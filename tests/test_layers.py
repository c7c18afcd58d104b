"""The house's layers (pyproject.toml, [tool.importlinter]): every import points downward.

import-linter builds the import graph of modelzoo and data_processing and checks the contracts; a
cycle or an upward import (say, the model importing the training loop) fails here with the chain
of imports that breaks the rule.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))"


def test_import_contracts_are_kept():
    result = subprocess.run(
        [sys.executable, "-c", LINT, str(REPO_ROOT / "pyproject.toml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
