"""A stand-in for poptorch, NOT poptorch: a fake module that only records what is called on it.

poptorch ships with the Graphcore Poplar SDK and cannot be installed here, so the tests hand this
object to the code that would receive the real module. ``Options()`` returns a recorder whose
attribute chains log ``(path, args)``, e.g. ``options.Training.gradientAccumulation(8)`` logs
``("Training.gradientAccumulation", (8,))``. Nothing is compiled, checked or run: a test that
passes against it shows which documented poptorch calls our code makes, not that poptorch accepts them.
"""

from __future__ import annotations

import enum
from typing import Any


class AutoStage(enum.Enum):
    SameAsIpu = "SameAsIpu"
    AutoIncrement = "AutoIncrement"


class OutputMode(enum.Enum):
    All = "All"
    Sum = "Sum"
    Final = "Final"
    Default = "Default"
    EveryN = "EveryN"


class _RecordedCalls:
    """One attribute path of a recorder: calling it logs the call and returns the recorder, as
    poptorch's setters return the options object for chaining."""

    def __init__(self, log: list[tuple[str, tuple[Any, ...]]], path: str) -> None:
        self._log = log
        self._path = path

    def __getattr__(self, name: str) -> _RecordedCalls:
        return _RecordedCalls(self._log, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args: Any) -> _RecordedCalls:
        self._log.append((self._path, args))
        return self


class Strategy:
    """What ``PipelinedExecution(...)`` / ``ShardedExecution(...)`` were given."""

    def __init__(self, kind: str, *args: Any) -> None:
        self.kind = kind
        self.args = args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Strategy) and (self.kind, self.args) == (other.kind, other.args)

    def __repr__(self) -> str:
        return f"{self.kind}{self.args}"


class StandinPoptorch:
    """A fresh stand-in module per test: ``calls`` holds every ``Options()`` setter call in order,
    ``blocks`` every ``BeginBlock`` and ``checkpointed`` every ``recomputationCheckpoint`` argument."""

    AutoStage = AutoStage
    OutputMode = OutputMode

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.blocks: list[tuple[Any, str, int]] = []
        self.checkpointed: list[Any] = []

    def Options(self) -> _RecordedCalls:
        return _RecordedCalls(self.calls, "")

    def PipelinedExecution(self, *args: Any) -> Strategy:
        return Strategy("PipelinedExecution", *args)

    def ShardedExecution(self, *args: Any) -> Strategy:
        return Strategy("ShardedExecution", *args)

    def BeginBlock(self, module: Any, user_id: str, ipu_id: int) -> Any:
        self.blocks.append((module, user_id, ipu_id))
        return module

    def recomputationCheckpoint(self, tensor: Any) -> Any:
        self.checkpointed.append(tensor)
        return tensor

    def called(self, path: str) -> list[tuple[Any, ...]]:
        """The argument tuples of every call to ``path`` (e.g. ``"Training.gradientAccumulation"``)."""
        return [args for called_path, args in self.calls if called_path == path]
