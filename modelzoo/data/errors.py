"""The one error type for bad data files, worded as ``FILE:LINE: problem``.

Both the offline writer (``data_processing/write_csv_ner.py``) and the readers raise it, so a
command-line tool can print ``str(error)`` as one line that tells the user where to look.
"""

from __future__ import annotations

from pathlib import Path


class DataFileError(ValueError):
    """A problem in a data file; ``line`` is 1-based, or None when the whole file is at fault."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")
