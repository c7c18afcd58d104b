"""The one base for failures a user can fix, and the kinds every layer raises.

``run.py`` and the tools catch :class:`UserError` alone and print it as one ``error:`` line with its
``exit_code``; anything else is a programming error and keeps its traceback, so a bug never
passes for bad input.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Optional, Union


class UserError(Exception):
    """A problem in what the user gave (params, files, machine), worded to say where and what."""

    exit_code = 2


# ParamsError and DataFileError stay ValueErrors too, so readers that turn a low-level ValueError
# (a bad number in a cell) into a located message keep catching both the same way.


class ParamsError(UserError, ValueError):
    """A params problem: it names the section, the key and what is wrong."""


class CheckpointError(UserError):
    """A checkpoint that cannot be read, found or written, named by its path."""


class OutputPathError(UserError):
    """A place chosen for output cannot be written (read-only, a file where a folder should be...)."""


class DiskFullError(OutputPathError):
    """A write ran out of space (or quota); the file it was replacing is unchanged."""


class DataFileError(UserError, ValueError):
    """A problem in a data file, worded ``FILE:LINE: problem``; ``line`` is 1-based, or None for the whole file."""

    def __init__(self, path: Union[str, Path], line: Optional[int], problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


def os_error_reason(error: OSError) -> str:
    """Why a path could not be written, in words a user can act on (the OS's own words otherwise)."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of the path is a file, not a folder"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({error.strerror})"
    return error.strerror or str(error)
