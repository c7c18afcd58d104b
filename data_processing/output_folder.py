"""Where the CSV writers put their split folders: checked before the work, published in one step.

A writer never removes a file it did not write: a split folder that already holds files is
refused unless ``overwrite`` says to replace it, and even then only what a writer wrote there goes
(``meta.dat``, ``label2id.json`` and the shards ``meta.dat`` lists); any other file is carried into
the new split folder (a hard link), and one that a new file would replace is refused by name. The
old folder goes only once the new one is complete (``modelzoo.common.atomic.replace_folders``: the
old output folder or the complete new one, never a mix). A place that cannot be written is one
line, not a traceback.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List, Set

from modelzoo.common.atomic import link_tree, replace_folders, staging_folder
from modelzoo.common.errors import DataFileError, os_error_reason
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE, read_meta


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
            f"{', '.join(occupied)} once the new ones are complete (files the writer did not write stay)",
        )
    for split in occupied:
        if not (output_dir / split).is_dir():
            raise DataFileError(output_dir / split, None, "is a file where the split folder goes; nothing was written")


def _holds_files(path: Path) -> bool:
    return not path.is_dir() or any(path.iterdir())


@contextlib.contextmanager
def publishing(output_dir: Path, splits: List[str]) -> Iterator[Path]:
    """A staging folder to write ``staging/<split>`` into; on success ``output_dir`` gets them all at once."""
    try:
        with staging_folder(output_dir) as staging:
            yield staging
            kept = [entry for split in splits for entry in _carry_foreign_files(output_dir / split, staging / split)]
            replace_folders(staging, output_dir, splits)
    except OSError as error:
        raise DataFileError(output_dir, None, f"cannot write the output folder: {os_error_reason(error)}") from None
    for entry in kept:
        print(f"kept {entry}: not written by a CSV writer")


def _carry_foreign_files(old: Path, new: Path) -> List[Path]:
    """Link the entries of the split folder ``old`` that no writer wrote into ``new``; returns them."""
    if not old.is_dir():
        return []
    carried = []
    written = _written_by_a_writer(old)
    for entry in sorted(old.iterdir()):
        if entry.name in written:
            continue
        if (new / entry.name).exists():
            raise DataFileError(
                entry, None, "was not written by a CSV writer, and the new split has a file of that name; nothing "
                "was written (move it away)"
            )
        link_tree(entry, new / entry.name)
        carried.append(entry)
    return carried


def _written_by_a_writer(split_folder: Path) -> Set[str]:
    """The names a writer wrote in ``split_folder``: none without a ``meta.dat``, else it, the label vocab and
    the shards it lists (one it cannot read: just those two)."""
    if not (split_folder / META_FILE).is_file():
        return set()
    try:
        shards = {shard.name for shard, _, _ in read_meta(split_folder) if shard.parent == split_folder}
    except DataFileError:
        shards = set()
    return {META_FILE, LABEL_VOCAB_FILE, *shards}
