"""Where the CSV writers put their split folders: checked before the work, published in one step.

A writer never removes a file it did not write: a split folder that already holds files is
refused unless ``overwrite`` says to replace it, and even then the old folder goes only once the
new one is complete (``modelzoo.common.atomic.replace_folders``: the old output folder or the
complete new one, never a mix). A place that cannot be written is one line, not a traceback.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List

from modelzoo.common.atomic import replace_folders, staging_folder
from modelzoo.common.errors import DataFileError, os_error_reason


def check_output_place(output_dir: Path) -> None:
    """Raise DataFileError if ``output_dir`` cannot be a folder (it, or a folder above it, is a file)."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise DataFileError(output_dir, None, f"cannot be the output folder: {folder} is a file")
            break


def check_output_dir(output_dir: Path, splits: List[str], overwrite: bool) -> None:
    """Raise DataFileError if ``output_dir`` cannot hold the splits, or would lose files without ``overwrite``."""
    check_output_place(output_dir)
    occupied = [split for split in splits if (output_dir / split).exists() and _holds_files(output_dir / split)]
    if occupied and not overwrite:
        first = output_dir / occupied[0]
        names = ", ".join(sorted(entry.name for entry in first.iterdir())[:3]) if first.is_dir() else first.name
        raise DataFileError(
            first,
            None,
            f"already holds files ({names}); nothing was written. --overwrite replaces the split folder(s) "
            f"{', '.join(occupied)} once the new ones are complete",
        )


def _holds_files(path: Path) -> bool:
    return not path.is_dir() or any(path.iterdir())


@contextlib.contextmanager
def publishing(output_dir: Path, splits: List[str]) -> Iterator[Path]:
    """A staging folder to write ``staging/<split>`` into; on success ``output_dir`` gets them all at once."""
    try:
        with staging_folder(output_dir) as staging:
            yield staging
            replace_folders(staging, output_dir, splits)
    except OSError as error:
        raise DataFileError(output_dir, None, f"cannot write the output folder: {os_error_reason(error)}") from None
