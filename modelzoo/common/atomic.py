"""Files and folders that appear complete or not at all.

Everything this project writes (checkpoints, params, eval reports, CSV folders, converted
checkpoints) is first written under a temporary name beside its target, flushed to disk, then
renamed over the target in one ``os.replace``. A crash, a full disk or a kill mid-write leaves the
previous file untouched and, at worst, a ``.NAME.tmp-*`` file that :func:`is_temporary` recognises.
A full disk is one :class:`DiskFullError` line naming the file and the file system, however the
writer reported it (``torch.save`` turns the ``OSError`` of its write into a ``RuntimeError``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, List, Optional, Union

from modelzoo.common.errors import DiskFullError, OutputPathError, os_error_reason

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a leftover of an interrupted atomic write (never a result)."""
    return path.name.startswith(".") and ".tmp-" in path.name


@contextlib.contextmanager
def _writable_place(target: Path) -> Iterator[None]:
    """Creating the temporary beside ``target`` fails only for a place the user chose: one line naming it."""
    try:
        yield
    except OSError as error:
        raise OutputPathError(f"{target}: cannot create it: {os_error_reason(error)}") from None


@contextlib.contextmanager
def atomic_file(path: Union[str, Path], mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a stream on a temporary file beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    with _writable_place(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), dir=path.parent)
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(handle, mode, encoding=encoding) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except Exception as error:
        if _disk_full(error) is None:
            raise
        raise DiskFullError(f"{path}: no space left on device ({_mount_point(path.parent)}); nothing was replaced") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _disk_full(error: Optional[BaseException]) -> Optional[OSError]:
    """The full-disk OSError behind ``error``: itself, or what it was raised from or while handling."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _mount_point(folder: Path) -> Path:
    """The mount point of the file system holding ``folder`` (the "device" a user frees space on)."""
    folder = folder.resolve()
    while not os.path.ismount(folder):
        folder = folder.parent
    return folder


def write_text_atomic(path: Union[str, Path], text: str) -> Path:
    with atomic_file(path) as stream:
        stream.write(text)
    return Path(path)


def json_values(payload: Any) -> Any:
    """``payload`` with every non-finite float as None: JSON has no NaN or Infinity (``json.dumps`` would write them)."""
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, dict):
        return {key: json_values(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [json_values(value) for value in payload]
    return payload


def write_json_atomic(path: Union[str, Path], payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(json_values(payload), indent=2, allow_nan=False) + "\n")


@contextlib.contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (same file system, so renames out of it are atomic); removed at the end."""
    with _writable_place(target):
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


def replace_folders(staging: Path, output_dir: Path, names: List[str]) -> None:
    """Make ``output_dir`` hold the complete ``staging/NAME`` folders, all in one step.

    The new ``output_dir`` is assembled inside ``staging`` (the new folders, plus hard links to every
    other entry of the old one) and swapped in by one rename, so a crash at any moment leaves either
    the old ``output_dir`` or the complete new one, never new folders beside old ones. The old
    folders end up in ``staging`` and go with it.
    """
    assembled = staging / ".assembled"
    assembled.mkdir()
    if output_dir.is_dir():
        for entry in output_dir.iterdir():
            if entry.name not in names:
                link_tree(entry, assembled / entry.name)
        shutil.copymode(output_dir, assembled)
    else:
        assembled.chmod(0o755)  # mkdtemp's parent is private; the result is an ordinary folder
    for name in names:
        (staging / name).rename(assembled / name)
    if output_dir.is_dir():
        _exchange(assembled, output_dir)
    else:
        os.replace(assembled, output_dir)


def link_tree(source: Path, target: Path) -> None:
    """``source`` again at ``target`` without copying data: hard links (a copy where links are refused)."""
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source: Union[str, Path], target: Union[str, Path]) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(first: Path, second: Path) -> None:
    """Swap two folders atomically (Linux ``renameat2``); elsewhere by two renames, the old one set aside first."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_cwd = -100
        if libc.renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE) == 0:
            return
    except (AttributeError, OSError):  # no renameat2 in this C library
        pass
    aside = first.with_name(first.name + ".old")
    os.replace(second, aside)
    os.replace(first, second)
    os.replace(aside, first)
