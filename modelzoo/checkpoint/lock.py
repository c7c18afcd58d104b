"""One training run writes a model_dir at a time.

Two trainers in one model_dir would resume from each other's checkpoints and delete each other's
files while rotating, and end with a checkpoint that belongs to neither run. So a trainer holds an
OS lock (``flock`` through ``filelock``) on ``model_dir/.writer.lock`` for its whole life; the kernel
drops it on any exit, ``kill -9`` included, so a crashed run never blocks the next one. The holder
writes who it is into the lock file, and a second trainer is refused at once with that line. A
clean exit removes the file while still holding the lock (``filelock`` retries a lock taken on a
removed file), so a finished model_dir holds nothing but its results.
Evaluation and prediction take no lock: they read only complete checkpoints (written under a
temporary name and renamed), so they may run beside a trainer.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

import filelock

from modelzoo.checkpoint.training import remove_partial_checkpoints, rotate_checkpoints
from modelzoo.common.errors import UserError, os_error_reason

LOCK_FILE = ".writer.lock"


class ModelDirLockedError(UserError):
    """Another training run holds the model_dir; the message names it (PID, host, start time)."""


class ModelDirUnwritableError(UserError):
    """The model_dir cannot be created or written (read-only place, a file in the path...)."""


class WriterLock:
    """The held lock of one model_dir; ``release`` (or process exit) frees it."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.path = self.model_dir / LOCK_FILE
        self._lock = filelock.FileLock(self.path, timeout=0, on_acquired=_write_holder)

    def acquire(self) -> WriterLock:
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except filelock.Timeout:
            raise ModelDirLockedError(f"{self.model_dir}: {describe_holder(self.path)}") from None
        except OSError as error:
            raise ModelDirUnwritableError(f"{self.model_dir}: cannot write the model_dir: {os_error_reason(error)}") from None
        return self

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def take_model_dir(model_dir: Path, context, keep_checkpoint_max: Optional[int]) -> Optional[WriterLock]:
    """Become model_dir's one writer, then clear what a killed writer left; the lock (main rank) or None.

    ``context`` is the run's ``DistContext``: the main rank takes the lock and every rank raises
    the same error if it is refused, so with several ranks none trains on while the main one
    stops. A writer killed midway may have left a partial checkpoint file (removed here, never
    loaded) or one checkpoint more than ``keep_checkpoint_max`` (rotated here).
    """
    lock, refusal = None, None
    if context.is_main:
        try:
            lock = WriterLock(model_dir).acquire()
        except UserError as error:
            refusal = (type(error), str(error))
    main_refusal = context.gather_objects(refusal)[0]
    if main_refusal is not None:
        if lock is not None:
            lock.release()
        kind, message = main_refusal
        raise kind(message)
    if lock is not None:
        for path in remove_partial_checkpoints(model_dir):
            context.say(f"removed {path}: a write that never finished")
        rotate_checkpoints(model_dir, keep_checkpoint_max)
    return lock


def _write_holder(descriptor: int) -> None:
    """Record who holds the lock, in the lock file itself (rewritten at every acquisition)."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    data = (json.dumps(holder) + "\n").encode()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, data, 0)


def describe_holder(lock_path: Path) -> str:
    """The refusal line: who holds the lock, as far as its file says."""
    try:
        holder = json.loads(lock_path.read_text(encoding="utf-8"))
        who = f"PID {holder['pid']} on host {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        who = "a process that has not yet recorded itself"
    return f"another training run is writing here ({who}); wait for it to end, or train in another --model_dir"
