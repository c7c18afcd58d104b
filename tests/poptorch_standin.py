"""A stand-in for poptorch, NOT poptorch: a fake module that records what is called on it and runs
the model on the CPU so that the executor's loop can be exercised end to end.

poptorch ships with the Graphcore Poplar SDK and cannot be installed here, so the tests hand this
object to the code that would receive the real module (or put it in ``sys.modules["poptorch"]``).
``Options()`` returns a recorder whose attribute chains log ``(path, args)``, e.g.
``options.Training.gradientAccumulation(8)`` logs ``("Training.gradientAccumulation", (8,))``.
``trainingModel`` / ``inferenceModel`` return executors that run the wrapped module's forward on the
CPU per micro batch (backward, optimizer step and zero_grad for training), and ``DataLoader``
yields combined batches sized as poptorch documents. What they emulate is what the executor relies
on: the combined batch split into micro batches, outputs per ``outputMode``, a learning rate that
changes on the device only through ``setOptimizer``, a loss that must be marked with
``identity_loss``, and attach/detach rules. The wrapped forward runs under :class:`OperationCheck`,
which fails on the first operation poptorch's supported-operations list lacks
(tests/poptorch_supported_ops.py), and poptorch optimizers' ``loss_scaling`` scales the loss of the
backward pass and unscales the gradients. Nothing is compiled: a test that passes against it shows
which documented poptorch calls our code makes, that the forward keeps to the documented operations
and that the loop around them is sound, not that poptorch accepts them.
"""

from __future__ import annotations

import contextlib
import enum
import math
from collections import Counter
from types import SimpleNamespace
from typing import Any, Iterator, List, Set, Tuple, Type

import pytest
import torch
from torch.overrides import TorchFunctionMode, resolve_name

from modelzoo.common.iteration import zip_strict
from tests.poptorch_supported_ops import unsupported_reason


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

    def __init__(self, logs: Tuple[List[Tuple[str, Tuple[Any, ...]]], ...], path: str) -> None:
        self._logs = logs
        self._path = path

    def __getattr__(self, name: str) -> _RecordedCalls:
        if name.startswith("__"):  # copy/pickle probes are not option setters
            raise AttributeError(name)
        return _RecordedCalls(self._logs, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args: Any) -> _RecordedCalls:
        for log in self._logs:
            log.append((self._path, args))
        return self


class UnsupportedOperationError(RuntimeError):
    """The forward called an operation that poptorch's supported-operations list does not have."""


@contextlib.contextmanager
def skip_without_cpu_float16_kernels(precision: str = "float16") -> Iterator[None]:
    """Skip the test if a float16 run on the CPU meets a kernel this torch lacks (torch 2.0.1, poptorch
    3.3/3.4's, has no CPU float16 LayerNorm): the stand-in runs the IPU's float16 on the CPU. An
    UnsupportedOperationError (a RuntimeError too), or a RuntimeError in another ``precision``, still
    fails the test."""
    try:
        yield
    except RuntimeError as error:
        if isinstance(error, UnsupportedOperationError) or precision != "float16":
            raise
        pytest.skip(f"this torch has no CPU float16 kernel for the forward: {error}")


class OperationCheck(TorchFunctionMode):
    """Counts every torch function the code under it calls (in ``seen``, by resolved name) and raises
    :class:`UnsupportedOperationError` at the first one poptorch's list lacks. A mode sees the calls
    the model's code makes, not the ones inside them (``F.linear``, not the matmul inside it), which is
    the level poptorch's list is written at."""

    def __init__(self, seen: Counter) -> None:
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = resolve_name(func) or repr(func)
        self.seen[name] += 1
        reason = unsupported_reason(name, args, kwargs)
        if reason is not None:
            raise UnsupportedOperationError(f"stand-in poptorch: {reason}")
        return func(*args, **kwargs)


def option_value(options: _RecordedCalls, path: str, default: Any) -> Any:
    """The last value set through ``path`` on this ``Options()`` object (its own log is the last)."""
    values = [args[0] for called_path, args in options._logs[-1] if called_path == path]
    return values[-1] if values else default


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
        self.calls: List[Tuple[str, Tuple[Any, ...]]] = []
        self.blocks: List[Tuple[Any, str, int]] = []
        self.checkpointed: List[Any] = []
        self.events: List[Tuple[Any, ...]] = []  # executor and loader calls, in order, for ordering checks
        self.executors: List[StandinExecutor] = []
        self.loaders: List[StandinDataLoader] = []
        self.losses: Set[int] = set()  # ids of the tensors marked by identity_loss
        self.optim = SimpleNamespace(
            AdamW=_standin_optimizer(torch.optim.AdamW), Adam=_standin_optimizer(torch.optim.Adam),
            SGD=_standin_optimizer(torch.optim.SGD),
        )

    def Options(self) -> _RecordedCalls:
        return _RecordedCalls((self.calls, []), "")

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

    def identity_loss(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        assert reduction in ("sum", "mean", "none"), reduction
        loss = {"sum": tensor.sum, "mean": tensor.mean}.get(reduction, lambda: tensor)()
        self.losses.add(id(loss))
        return loss

    def trainingModel(self, model: torch.nn.Module, options: _RecordedCalls, optimizer: torch.optim.Optimizer):
        executor = StandinExecutor(self, model, options, optimizer)
        self.executors.append(executor)
        return executor

    def inferenceModel(self, model: torch.nn.Module, options: _RecordedCalls):
        executor = StandinExecutor(self, model, options, None)
        self.executors.append(executor)
        return executor

    def DataLoader(self, options: _RecordedCalls, dataset, batch_size: int = 1, **kwargs: Any):
        loader = StandinDataLoader(self, options, dataset, batch_size, **kwargs)
        self.loaders.append(loader)
        return loader

    def called(self, path: str) -> List[Tuple[Any, ...]]:
        """The argument tuples of every call to ``path`` (e.g. ``"Training.gradientAccumulation"``)."""
        return [args for called_path, args in self.calls if called_path == path]


def _standin_optimizer(base: Type[torch.optim.Optimizer]) -> Type[torch.optim.Optimizer]:
    """``poptorch.optim.X``: the torch optimizer, taking (and keeping in ``ipu_options``) poptorch's extra
    arguments; ``loss_scaling`` is undone on the gradients and ``max_grad_norm`` clips before each step, as
    poptorch documents for them."""

    class StandinOptimizer(base):
        IPU_ARGS = (
            "loss_scaling", "accum_type", "first_order_momentum_accum_type", "second_order_momentum_accum_type",
            "max_grad_norm", "velocity_scaling", "use_combined_accum",
        )

        def __init__(self, params, **kwargs: Any) -> None:
            self.ipu_options = {key: kwargs.pop(key) for key in self.IPU_ARGS if key in kwargs}
            super().__init__(params, **kwargs)

        def unscale(self, scale: float) -> None:
            """Undo ``loss_scaling`` on the gradients before the update, as poptorch's optimizers do."""
            for group in self.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad.div_(scale)

        def clip(self) -> None:
            limit = self.ipu_options.get("max_grad_norm", math.inf)
            if limit != math.inf:
                torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]], limit)

    StandinOptimizer.__name__ = base.__name__
    return StandinOptimizer


class StandinDataLoader(torch.utils.data.DataLoader):
    """``poptorch.DataLoader``: a torch DataLoader over a per-example dataset whose batches are the
    combined batch, micro batch x device iterations x replication x gradient accumulation."""

    def __init__(self, standin: StandinPoptorch, options, dataset, batch_size: int, **kwargs: Any) -> None:
        self.micro_batch_size = batch_size
        self.combined_batch_size = (
            batch_size
            * option_value(options, "deviceIterations", 1)
            * option_value(options, "replicationFactor", 1)
            * option_value(options, "Training.gradientAccumulation", 1)
        )
        self.kwargs = kwargs
        kwargs.setdefault("drop_last", True)  # poptorch's default
        if not kwargs["drop_last"]:
            assert len(dataset) % self.combined_batch_size == 0, "poptorch: not divisible and drop_last=False"
        standin.events.append(("DataLoader", batch_size, self.combined_batch_size))
        super().__init__(dataset, batch_size=self.combined_batch_size, **kwargs)


class StandinExecutor:
    """``poptorch.PoplarExecutor`` on the CPU: compiles (records) on the first call, then runs the
    combined batch as poptorch would: ``deviceIterations`` iterations of ``replicationFactor`` x
    ``gradientAccumulation`` micro batches, one optimizer step per iteration with the gradients
    averaged over its micro batches, at the learning rate last handed to the device."""

    def __init__(self, standin: StandinPoptorch, model, options, optimizer) -> None:
        self.standin, self.model, self.options, self.optimizer = standin, model, options, optimizer
        self.training = optimizer is not None
        self.kind = "training" if self.training else "inference"
        self.compiled = self.attached = False
        self.device_rates: List[float] = []
        self.rates_used: List[float] = []  # the rate of every optimizer step run on the "device"
        self.operations: Counter = Counter()  # the torch functions its forwards called, by resolved name
        self.calls = 0

    def _event(self, name: str, *details: Any) -> None:
        self.standin.events.append((name, self.kind, *details))

    def __call__(self, *inputs: torch.Tensor):
        if self.compiled and not self.attached:
            raise RuntimeError("stand-in poptorch: the executor is detached; call attachToDevice() first")
        if not self.compiled:
            self.compiled = self.attached = True
            if self.training:
                self.device_rates = [group["lr"] for group in self.optimizer.param_groups]
            self._event("compile")
        self.calls += 1
        self._event("call", len(inputs[0]))
        iterations = option_value(self.options, "deviceIterations", 1)
        per_iteration = option_value(self.options, "replicationFactor", 1)
        if self.training:
            per_iteration *= option_value(self.options, "Training.gradientAccumulation", 1)
        micro = len(inputs[0]) // (iterations * per_iteration)
        assert micro * iterations * per_iteration == len(inputs[0]), "not a combined batch"
        outputs = []
        for iteration in range(iterations):
            chunk = slice(iteration * per_iteration * micro, (iteration + 1) * per_iteration * micro)
            outputs += self._iteration([tensor[chunk] for tensor in inputs], micro, per_iteration)
        return self._combine(outputs)

    def _iteration(self, inputs: List[torch.Tensor], micro: int, count: int) -> List[Any]:
        outputs = []
        if not self.training:
            self.model.eval()
            with torch.no_grad():
                for m in range(count):
                    outputs.append(self._forward([tensor[m * micro : (m + 1) * micro] for tensor in inputs]))
            return outputs
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        scale = self.optimizer.ipu_options.get("loss_scaling", 1.0)
        for m in range(count):
            output = self._forward([tensor[m * micro : (m + 1) * micro] for tensor in inputs])
            loss = output[0] if isinstance(output, tuple) else output
            assert id(loss) in self.standin.losses, "stand-in poptorch: the loss must come from poptorch.identity_loss"
            (loss * (scale / count)).backward()
            outputs.append(tuple(o.detach() for o in output) if isinstance(output, tuple) else output.detach())
        host_rates = [group["lr"] for group in self.optimizer.param_groups]
        for group, rate in zip_strict(self.optimizer.param_groups, self.device_rates):
            group["lr"] = rate
        self.optimizer.unscale(scale)
        self.optimizer.clip()
        self.optimizer.step()
        self.rates_used.append(self.device_rates[0])
        for group, rate in zip_strict(self.optimizer.param_groups, host_rates):
            group["lr"] = rate
        self.optimizer.zero_grad(set_to_none=True)
        return outputs

    def _forward(self, inputs: List[torch.Tensor]) -> Any:
        with OperationCheck(self.operations):
            return self.model(*inputs)

    def _combine(self, outputs: List[Any]) -> Any:
        mode = option_value(self.options, "outputMode", OutputMode.Final if self.training else OutputMode.All)
        if isinstance(outputs[0], tuple):
            return tuple(self._combine([output[i] for output in outputs]) for i in range(len(outputs[0])))
        if mode == OutputMode.Final:
            return outputs[-1]
        if mode == OutputMode.Sum:
            return torch.stack(outputs).sum(0)
        return torch.cat([o.reshape(1) if o.dim() == 0 else o for o in outputs])

    def setOptimizer(self, optimizer: torch.optim.Optimizer) -> None:
        assert optimizer is self.optimizer, "the executor's own optimizer, with new hyper-parameters"
        self.device_rates = [group["lr"] for group in optimizer.param_groups]
        self._event("setOptimizer", self.device_rates[0])

    def isCompiled(self) -> bool:
        return self.compiled

    def isAttachedToDevice(self) -> bool:
        return self.attached

    def copyWeightsToHost(self) -> None:
        assert self.compiled, "stand-in poptorch: nothing compiled to copy from"
        self._event("copyWeightsToHost")

    def copyWeightsToDevice(self) -> None:
        assert self.compiled, "stand-in poptorch: nothing compiled to copy to"
        self._event("copyWeightsToDevice")

    def attachToDevice(self) -> None:
        assert self.compiled and not self.attached, "stand-in poptorch: attach needs a compiled, detached executor"
        self.attached = True
        self._event("attachToDevice")

    def detachFromDevice(self) -> None:
        assert self.compiled and self.attached, "stand-in poptorch: detach needs an attached executor"
        self.attached = False
        self._event("detachFromDevice")
