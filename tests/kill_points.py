"""``run.py`` that SIGKILLs itself at a chosen moment, for the fault-injection tests.

    python -m tests.kill_points evaluation_end 10 CPU --mode train_and_eval --params P
    python -m tests.kill_points best_pair 1 CPU --mode train_and_eval --params P

Everything run.py writes appears by one ``os.replace`` (``modelzoo.common.atomic``), so the moments
are defined by those renames, which makes them exact where a kill from outside would race:

- ``evaluation_end N``: right after ``eval/metrics_step_N.json`` appears: the evaluation of step N
  has ended, its best checkpoint is not yet decided.
- ``best_pair N``: after the N-th new ``best_checkpoint.mdl`` of this process, with its
  ``best_checkpoint.json`` complete in a temporary file but not yet renamed over the record.

The process kills itself with SIGKILL, as the kernel would: no handler, no ``finally`` runs.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from modelzoo.checkpoint.best import BEST_CHECKPOINT_FILE, BEST_RECORD_FILE
from modelzoo.checkpoint.model_dir import eval_figures_file
from modelzoo.cli.main import main

MOMENTS = ("evaluation_end", "best_pair")


def kill_at(moment: str, count: int) -> None:
    """Make ``os.replace`` kill the process at ``moment`` (see the module doc)."""
    replace = os.replace
    renamed = []  # target names so far
    metrics_name = eval_figures_file(Path("."), count).name

    def replace_then_maybe_die(source, target, **kwargs) -> None:
        name = Path(target).name
        just_copied = renamed[-1:] == [BEST_CHECKPOINT_FILE] and renamed.count(BEST_CHECKPOINT_FILE) == count
        if moment == "best_pair" and name == BEST_RECORD_FILE and just_copied:
            os.kill(os.getpid(), signal.SIGKILL)
        replace(source, target, **kwargs)
        renamed.append(name)
        if moment == "evaluation_end" and name == metrics_name:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace_then_maybe_die


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in MOMENTS:
        sys.exit(f"usage: python -m tests.kill_points {{{','.join(MOMENTS)}}} N RUN_PY_ARGS...")
    kill_at(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
