"""Files and folders that appear complete or not at all.

Everything this project writes (checkpoints, params, eval reports, CSV folders, converted
checkpoints) is first written under a temporary name beside its target, flushed to disk, then
renamed over the target in one ``os.replace``. A crash, a full disk or a kill mid-write leaves the
previous file untouched and, at worst, a ``.NAME.tmp-*`` file that :func:`is_temporary` recognises.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a leftover of an interrupted atomic write (never a result)."""
    return path.name.startswith(".") and ".tmp-" in path.name


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a stream on a temporary file beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), dir=path.parent)
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(handle, mode, encoding=encoding) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_file(path) as stream:
        stream.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


@contextlib.contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (same file system, so renames out of it are atomic); removed at the end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; it becomes ``target`` (which must be absent or empty) only if the block succeeds."""
    with staging_folder(target) as temporary:
        yield temporary
        temporary.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        if target.exists():
            target.rmdir()  # only an empty folder reaches here
        os.replace(temporary, target)


def replace_folders(staging: Path, output_dir: Path, names: list[str]) -> None:
    """Move each complete ``staging/NAME`` to ``output_dir/NAME``, an older folder of that name set aside first."""
    output_dir.mkdir(exist_ok=True)
    for name in names:
        target = output_dir / name
        if target.exists():
            target.rename(staging / f"{name}.replaced")
        (staging / name).rename(target)
