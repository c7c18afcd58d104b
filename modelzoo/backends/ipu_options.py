"""The IPU side of a run: the pipeline stage plan, the batch arithmetic and the ``poptorch.Options``
built from the ``ipu:`` section.

Nothing here imports poptorch: the backend passes the module in (``require_poptorch()``), so every
rule below is checked on machines without the Poplar SDK.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple

from modelzoo.common.errors import ParamsError, UserError
from modelzoo.params.ipu import IPUParams, ipu_params_from_json


def resolve_ipu_params(params: IPUParams, num_hidden_layers: int) -> IPUParams:
    """The effective section: the ipu_config_file's values if one is named, checked against the
    model's depth, so that a bad pipeline fails before anything is compiled or written."""
    resolved = params
    where = "ipu"
    if params.ipu_config_file is not None:
        # loss_scaling is a training argument in optimum, not an IPUConfig key: it stays the section's.
        resolved = dataclasses.replace(
            ipu_params_from_json(params.ipu_config_file, params.pod_type), loss_scaling=params.loss_scaling
        )
        where = params.ipu_config_file
    layer_placement(num_hidden_layers, resolved.layers_per_ipu, resolved.ipus_per_replica, where=where)
    return resolved


# --- pipeline stages ---------------------------------------------------------------------------


def layer_placement(
    num_hidden_layers: int, layers_per_ipu: Optional[List[int]], ipus_per_replica: int, *, where: str = "ipu"
) -> List[int]:
    """The IPU of each encoder layer. The embeddings run on IPU 0 and the head on the last IPU.

    ``layers_per_ipu=None`` splits the layers evenly; -1 entries share the layers the other entries
    leave, as optimum does (a remainder goes to the last -1 IPU). An IPU between the first and the
    last with no layer would be an empty pipeline stage, so it is an error.
    """
    counts = list(layers_per_ipu) if layers_per_ipu is not None else [-1] * ipus_per_replica
    if len(counts) != ipus_per_replica:
        raise ParamsError(
            f"{where}.layers_per_ipu: {counts} names {len(counts)} IPUs, not {ipus_per_replica}"
        )
    wildcards = [ipu for ipu, n in enumerate(counts) if n == -1]
    placed = sum(n for n in counts if n != -1)
    if not wildcards and placed != num_hidden_layers:
        raise ParamsError(
            f"{where}.layers_per_ipu: {counts} places {placed} encoder layers but the model has "
            f"{num_hidden_layers} (num_hidden_layers)"
        )
    if wildcards:
        if placed > num_hidden_layers:
            raise ParamsError(
                f"{where}.layers_per_ipu: {counts} places {placed} layers before the -1 entries, "
                f"more than the model's {num_hidden_layers}"
            )
        share, remainder = divmod(num_hidden_layers - placed, len(wildcards))
        for ipu in wildcards:
            counts[ipu] = share
        counts[wildcards[-1]] += remainder
    for ipu in range(1, ipus_per_replica - 1):
        if counts[ipu] == 0:
            raise ParamsError(
                f"{where}.layers_per_ipu: {counts} leaves IPU {ipu} with nothing to run (an empty pipeline stage)"
            )
    return [ipu for ipu, n in enumerate(counts) for _ in range(n)]


def apply_pipeline_plan(
    model: Any,
    placement: List[int],
    ipus_per_replica: int,
    begin_block: Callable[..., Any],
    recompute_checkpoint: Optional[Callable[..., Any]] = None,
) -> List[Tuple[str, int]]:
    """Mark where each pipeline stage begins, and return the blocks begun as (name, ipu) for the log.

    ``begin_block`` is ``poptorch.BeginBlock`` (``(module, user_id=, ipu_id=)``, returning the
    module). A block runs until the next one begins, so a block starts at the embeddings (IPU 0),
    at each encoder layer whose IPU differs from the one before, and at the classifier if the last
    IPU has not begun yet (the pooler and the loss run with the block they follow). With
    ``recompute_checkpoint`` (``poptorch.recomputationCheckpoint``), every encoder layer's output
    but the last is kept for the backward pass and the rest is recomputed.
    """
    layers = model.bert.encoder.layer
    if len(placement) != len(layers):
        raise ValueError(f"placement covers {len(placement)} encoder layers, the model has {len(layers)}")
    blocks = [("embeddings", 0)]
    model.bert.embeddings = begin_block(model.bert.embeddings, user_id="embeddings", ipu_id=0)
    current_ipu = 0
    for index, ipu in enumerate(placement):
        if ipu != current_ipu:
            name = f"encoder_layer_{index}"
            layers[index] = begin_block(layers[index], user_id=name, ipu_id=ipu)
            blocks.append((name, ipu))
            current_ipu = ipu
    head_ipu = ipus_per_replica - 1
    if head_ipu != current_ipu:
        model.classifier = begin_block(model.classifier, user_id="classifier", ipu_id=head_ipu)
        blocks.append(("classifier", head_ipu))
    if recompute_checkpoint is not None:
        for layer in list(layers)[:-1]:
            layer.register_forward_hook(_checkpoint_outputs_hook(recompute_checkpoint))
    return blocks


def _checkpoint_outputs_hook(recompute_checkpoint: Callable[..., Any]) -> Callable[..., Any]:
    def hook(module: Any, inputs: Any, outputs: Any) -> Any:
        if isinstance(outputs, tuple):
            return tuple(recompute_checkpoint(output) for output in outputs)
        return recompute_checkpoint(outputs)

    return hook


# --- batch arithmetic --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """How one YAML batch is cut on the IPU."""

    micro_batch_size: int  # samples per replica per forward pass: poptorch.DataLoader's batch_size
    gradient_accumulation: int  # micro batches per optimizer step (1 in inference)
    replication_factor: int
    device_iterations: int  # optimizer steps (training) or batches (inference) per host call

    @property
    def global_batch_size(self) -> int:
        """Samples per optimizer step (per forward over all replicas in inference)."""
        return self.micro_batch_size * self.gradient_accumulation * self.replication_factor

    @property
    def combined_batch_size(self) -> int:
        """Samples per host call: what poptorch.DataLoader yields per step."""
        return self.global_batch_size * self.device_iterations


def batch_plan(batch_size: int, params: IPUParams, *, training: bool, key: str) -> BatchPlan:
    """Cut the YAML ``batch_size`` (samples per optimizer step, as on CPU and GPU) into micro batches.

    Inference accumulates nothing, so there only the replicas divide the batch. ``key`` names the
    YAML key in the error, e.g. ``"train_input.batch_size"``.
    """
    accumulation = params.gradient_accumulation if training else 1
    divisor = accumulation * params.replication_factor
    if batch_size < 1 or batch_size % divisor:
        factors = f"ipu.replication_factor ({params.replication_factor})"
        if training:
            factors = f"ipu.gradient_accumulation ({accumulation}) x {factors}"
        lower = batch_size // divisor * divisor
        choices = " or ".join(str(b) for b in (lower, lower + divisor) if b > 0)
        raise ParamsError(
            f"{key}: {batch_size} does not split into micro batches: it must be a multiple of "
            f"{factors} = {divisor}, e.g. {choices}"
        )
    return BatchPlan(batch_size // divisor, accumulation, params.replication_factor, params.device_iterations)


# --- poptorch ----------------------------------------------------------------------------------


class PoptorchMissingError(UserError):
    """poptorch cannot be imported; the CLI prints the message and exits 2 before touching model_dir."""


def require_poptorch() -> ModuleType:
    """poptorch, or :class:`PoptorchMissingError` with a one-line message that says what to install."""
    try:
        import poptorch
    except ImportError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PoptorchMissingError(
            "IPU runs need poptorch, the Poplar SDK's PyTorch wheel (not on PyPI): enable the SDK and "
            f"install its poptorch wheel as PYTHON-SETUP.md describes (import failed: {reason})"
        ) from error
    return poptorch


_OUTPUT_MODES = {"all": "All", "sum": "Sum", "final": "Final", "default": "Default"}


def build_poptorch_options(params: IPUParams, poptorch: ModuleType, training: bool) -> Any:
    """``poptorch.Options`` for a training or an inference model from the resolved section.

    Inference pipelines nothing between micro batches (sharded execution, as optimum does), returns
    every output and never rounds stochastically, so that predictions are complete and repeatable.
    """
    import torch  # only for the partials dtype; the rest of this module stays importable without it

    options = poptorch.Options()
    options.deviceIterations(params.device_iterations)
    options.replicationFactor(params.replication_factor)
    if training:
        options.Training.gradientAccumulation(params.gradient_accumulation)
    if params.ipus_per_replica > 1:
        strategy = poptorch.PipelinedExecution if training else poptorch.ShardedExecution
        options.setExecutionStrategy(strategy(poptorch.AutoStage.SameAsIpu))
    output_mode = params.output_mode if training else "all"
    options.outputMode(getattr(poptorch.OutputMode, _OUTPUT_MODES[output_mode]))
    options.Precision.setPartialsType(torch.float16 if params.enable_half_partials else torch.float32)
    options.Precision.enableStochasticRounding(params.stochastic_rounding and training)
    proportion = params.available_memory_proportion
    if proportion is not None:
        per_ipu = proportion if isinstance(proportion, list) else [proportion]
        if len(per_ipu) == 1:
            per_ipu = per_ipu * params.ipus_per_replica
        options.setAvailableMemoryProportion({f"IPU{ipu}": share for ipu, share in enumerate(per_ipu)})
    if params.executable_cache_dir is not None:
        options.enableExecutableCaching(params.executable_cache_dir)
    if params.random_seed is not None:
        options.randomSeed(params.random_seed)
    return options
