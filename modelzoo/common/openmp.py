"""Prediction's OpenMP threads sleep as soon as they wait, set before torch loads OpenMP.

torch runs its CPU kernels on OpenMP threads, and OpenMP's default lets a thread that has done its
share of a parallel region spin for a while before it sleeps: on cores of its own that saves the
wake-up at the next region. On cores shared with other processes (a CI runner, a desktop, the
threads of ONNX Runtime in the same process) it does the opposite: the spinning thread holds a core
that the thread it waits for needs, and every region lasts as long as its slowest thread, so two
threads can run slower than one. Prediction is many short regions a batch, and the wake-ups that
sleeping threads cost are small against them, so prediction asks for passive waiting
(``OMP_WAIT_POLICY=PASSIVE``, read by GNU and Intel OpenMP alike). OpenMP reads the variable once,
when torch loads it, so this runs before torch is imported; a value the user set is kept. The
training modes keep OpenMP's default. ``benchmarks/predict.py`` prints what it measured.
"""

from __future__ import annotations

import os
import sys
from typing import List

PREDICTING_MODES = ("predict", "serve")


def wait_passively_when_predicting(argv: List[str]) -> None:
    """Passive OpenMP waiting if ``argv`` (run.py's arguments) asks for ``--mode predict`` or ``serve``."""
    modes = [value for flag, value in zip(argv, argv[1:]) if flag == "--mode"]
    modes += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--mode=")]
    if any(mode in PREDICTING_MODES for mode in modes):
        wait_passively()


def wait_passively() -> None:
    """Passive OpenMP waiting for this process, unless the user chose a policy or torch is already loaded."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
