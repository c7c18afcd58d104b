"""The IPU side of the params: the ``ipu:`` section, optimum-graphcore's ipu_config.json, the pipeline
stage plan, the batch arithmetic and the ``poptorch.Options`` built from them.

Nothing here imports poptorch: the executor passes the module in (``require_poptorch()``), so every
rule below is checked on machines without the Poplar SDK, and a bad ``ipu:`` section fails before a
chip is attached or ``model_dir`` is touched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import typing
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from modelzoo.common.schema import ParamsError, build, param, unknown_key_message

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class IPUParams:
    """The YAML ``ipu:`` section. Cross-field rules are checked here; rules that need the model
    (how many encoder layers) are checked by :func:`resolve_ipu_params`."""

    device_iterations: int = param(1, "batches the IPU runs per host call; more amortises host I/O")
    replication_factor: int = param(1, "data-parallel copies of the model, each on ipus_per_replica IPUs")
    gradient_accumulation: int = param(1, "micro batches accumulated per optimizer step (training only)")
    layers_per_ipu: list[int] | None = param(
        None, "encoder layers per pipeline IPU, e.g. [0, 4, 4, 4]; -1 shares the rest; null: even split"
    )
    ipus_per_replica: int | None = param(
        None, "IPUs one model copy is pipelined over; null: len(layers_per_ipu) or 1"
    )
    recompute_checkpoint_every_layer: bool = param(
        False, "keep each encoder layer's output, recompute the rest in the backward pass (saves memory)"
    )
    enable_half_partials: bool = param(
        False, "float16 partial sums in matmuls (saves memory, costs precision)"
    )
    available_memory_proportion: float | list[float] | None = param(
        None, "tile memory share for matmul temporaries: one value or one per IPU; null: poptorch's default"
    )
    stochastic_rounding: bool = param(
        True, "stochastic rounding of float16 results in training, never in inference"
    )
    executable_cache_dir: str | None = param(
        None, "folder caching compiled executables between runs; null: none"
    )
    random_seed: int | None = param(
        None, "seed of the IPU's random number generator; null: poptorch's default"
    )
    output_mode: Literal["all", "sum", "final", "default"] = param(
        "final", "what a training call returns of its micro batches (inference always returns all)"
    )
    ipu_config_file: str | None = param(
        None, "optimum-graphcore ipu_config.json used in place of the keys above"
    )
    pod_type: str | None = param(
        None, "entry of per-pod values in ipu_config_file, e.g. pod16; null: 'default'"
    )

    def __post_init__(self) -> None:
        if self.ipu_config_file is None and self.pod_type is not None:
            raise ParamsError("ipu.pod_type: only used with ipu.ipu_config_file, which is not set")
        if self.ipu_config_file is not None:
            also_set = [
                f.name
                for f in dataclasses.fields(self)
                if f.name not in ("ipu_config_file", "pod_type") and getattr(self, f.name) != f.default
            ]
            if also_set:
                raise ParamsError(
                    f"ipu.ipu_config_file replaces the other ipu keys; remove {', '.join(also_set)} "
                    f"or set them in {self.ipu_config_file}"
                )
        if self.ipus_per_replica is None:
            self.ipus_per_replica = _default_ipus_per_replica(self.layers_per_ipu)
        _check_layout(dataclasses.asdict(self), "ipu", {})


def _default_ipus_per_replica(layers_per_ipu: list[int] | None) -> int:
    """optimum's rule: one IPU per layers_per_ipu entry, one IPU without it."""
    return len(layers_per_ipu) if layers_per_ipu else 1


def _check_layout(values: dict[str, Any], where: str, names: dict[str, str]) -> None:
    """Rules shared by the YAML section and ipu_config.json; ``names`` maps our field names to the
    file's own key names so that the message names the key the user wrote."""

    def key(field: str) -> str:
        return f"{where}.{names.get(field, field)}"

    for field in ("device_iterations", "replication_factor", "gradient_accumulation", "ipus_per_replica"):
        if values[field] < 1:
            raise ParamsError(f"{key(field)}: must be at least 1, got {values[field]}")
    ipus = values["ipus_per_replica"]
    layers = values["layers_per_ipu"]
    if layers is not None:
        if any(n < -1 for n in layers):
            raise ParamsError(
                f"{key('layers_per_ipu')}: entries are layer counts or -1 (the rest), got {layers}"
            )
        if len(layers) != ipus:
            raise ParamsError(
                f"{key('layers_per_ipu')}: {layers} names {len(layers)} IPUs but "
                f"{key('ipus_per_replica')} is {ipus}"
            )
    proportion = values["available_memory_proportion"]
    if proportion is not None:
        per_ipu = proportion if isinstance(proportion, list) else [proportion]
        if len(per_ipu) not in (1, ipus):
            raise ParamsError(
                f"{key('available_memory_proportion')}: {proportion} has {len(per_ipu)} values; give one, "
                f"or one per IPU ({key('ipus_per_replica')} is {ipus})"
            )
        if not all(0 < p <= 1 for p in per_ipu):
            raise ParamsError(
                f"{key('available_memory_proportion')}: values must be in (0, 1], got {proportion}"
            )
    total_ipus = ipus * values["replication_factor"]
    if total_ipus & (total_ipus - 1):
        # poptorch attaches to IPU groups of 2**k chips and refuses other counts (autoRoundNumIPUs).
        raise ParamsError(
            f"{key('ipus_per_replica')} ({ipus}) x {key('replication_factor')} "
            f"({values['replication_factor']}) = {total_ipus} IPUs; IPUs are attached in powers of two"
        )


# --- optimum-graphcore's ipu_config.json -------------------------------------------------------

# optimum's key for each of our fields where the two names differ.
OPTIMUM_NAMES = {
    "gradient_accumulation": "gradient_accumulation_steps",
    "available_memory_proportion": "matmul_proportion",
    "random_seed": "seed",
}
# The optimum keys we read, and the field each one fills.
OPTIMUM_KEYS = {
    OPTIMUM_NAMES.get(name, name): name
    for name in (
        "device_iterations",
        "replication_factor",
        "gradient_accumulation",
        "layers_per_ipu",
        "ipus_per_replica",
        "recompute_checkpoint_every_layer",
        "enable_half_partials",
        "available_memory_proportion",
        "executable_cache_dir",
        "random_seed",
        "output_mode",
    )
}
# Keys optimum documents (or wrote in older versions) that this model zoo does not use.
OPTIMUM_IGNORED_KEYS = frozenset(
    {
        "inference_replication_factor",
        "inference_device_iterations",
        "inference_layers_per_ipu",
        "inference_ipus_per_replica",
        "inference_matmul_proportion",
        "inference_embedding_serialization_factor",
        "inference_serialized_embedding_splits_per_ipu",
        "inference_projection_serialization_factor",
        "inference_serialized_projection_splits_per_ipu",
        "inference_parallelize_kwargs",
        "embedding_serialization_factor",
        "serialized_embedding_splits_per_ipu",
        "projection_serialization_factor",
        "serialized_projection_splits_per_ipu",
        "parallelize_kwargs",
        "optimizer_state_offchip",
        "replicated_tensor_sharding",
        "auto_loss_scaling",
        "explicit_ir_inference",
        "execute_encoder_on_cpu_for_generation",
        "enable_half_first_order_momentum",
        "sharded_execution_for_inference",
        "use_popdist",
        "profile_dir",
        "optimum_version",
        "transformers_version",
    }
)
# optimum's defaults where they differ from ours: a file written for optimum means what optimum reads.
OPTIMUM_DEFAULTS = {"enable_half_partials": True, "available_memory_proportion": 0.2}

_IPU_FIELD_TYPES = typing.get_type_hints(IPUParams)
# The keys we read, under optimum's names, so that the schema's type errors name the key in the file.
_OptimumKeys = dataclasses.make_dataclass(
    "OptimumKeys",
    [(key, _IPU_FIELD_TYPES[field], dataclasses.field(default=None)) for key, field in OPTIMUM_KEYS.items()],
)
_POD_KEY = re.compile(r"pod\d+|default")


def _for_pod(where: str, value: Any, pod_type: str | None) -> Any:
    """The entry of a per-pod value (``{"pod4": 1, "pod16": 4}``) for ``pod_type``; other values as they are."""
    if not isinstance(value, dict):
        return value
    odd_keys = [k for k in value if not _POD_KEY.fullmatch(str(k))]
    if odd_keys:
        raise ParamsError(f"{where}: per-pod values need keys like 'pod16' or 'default', got {odd_keys[0]!r}")
    if pod_type is not None:
        if pod_type not in value:
            raise ParamsError(f"{where}: no entry for ipu.pod_type {pod_type!r} (it has {', '.join(value)})")
        return value[pod_type]
    if "default" in value:
        return value["default"]
    if len(value) == 1:
        return next(iter(value.values()))
    raise ParamsError(f"{where}: one value per pod ({', '.join(value)}) and no 'default'; set ipu.pod_type")


def ipu_params_from_json(path: str | Path, pod_type: str | None = None) -> IPUParams:
    """Read an optimum-graphcore ipu_config.json into :class:`IPUParams`.

    Every error names the file and the key. A key that is neither read nor documented by optimum is an
    error with the nearest known key (a misspelling would otherwise be ignored); documented keys we
    do not use are listed once in a log line.
    """
    where = str(path)
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ParamsError(f"ipu.ipu_config_file: {where} not found") from None
    except json.JSONDecodeError as error:
        raise ParamsError(f"{where}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(config, dict):
        raise ParamsError(f"{where}: expected a JSON object of IPUConfig keys, got {type(config).__name__}")

    known = set(OPTIMUM_KEYS) | OPTIMUM_IGNORED_KEYS
    for key in config:
        if key not in known:
            raise ParamsError(unknown_key_message(where, key, known))
    read = {
        key: _for_pod(f"{where}.{key}", value, pod_type)
        for key, value in config.items()
        if key in OPTIMUM_KEYS
    }
    build(_OptimumKeys, read, where)

    values = {**OPTIMUM_DEFAULTS, **{OPTIMUM_KEYS[key]: value for key, value in read.items()}}
    if values.get("layers_per_ipu") == [-1]:  # optimum's default: an even split, whatever ipus_per_replica
        values["layers_per_ipu"] = None
    if values.get("executable_cache_dir") in ("", "disabled"):  # optimum's ways of saying "no cache"
        values["executable_cache_dir"] = None
    if values.get("ipus_per_replica") is None:
        values["ipus_per_replica"] = _default_ipus_per_replica(values.get("layers_per_ipu"))
    defaults = {f.name: f.default for f in dataclasses.fields(IPUParams)}
    _check_layout({**defaults, **values}, where, OPTIMUM_NAMES)

    ignored = sorted(OPTIMUM_IGNORED_KEYS & set(config))
    if ignored:
        logger.info("%s: ignoring keys this model zoo does not use: %s", where, ", ".join(ignored))
    return IPUParams(**values)


def resolve_ipu_params(params: IPUParams, num_hidden_layers: int) -> IPUParams:
    """The effective section: the ipu_config_file's values if one is named, checked against the
    model's depth, so that a bad pipeline fails before anything is compiled or written."""
    resolved = params
    where = "ipu"
    if params.ipu_config_file is not None:
        resolved = ipu_params_from_json(params.ipu_config_file, params.pod_type)
        where = params.ipu_config_file
    layer_placement(num_hidden_layers, resolved.layers_per_ipu, resolved.ipus_per_replica, where=where)
    return resolved


# --- pipeline stages ---------------------------------------------------------------------------


def layer_placement(
    num_hidden_layers: int, layers_per_ipu: list[int] | None, ipus_per_replica: int, *, where: str = "ipu"
) -> list[int]:
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
    placement: list[int],
    ipus_per_replica: int,
    begin_block: Callable[..., Any],
    recompute_checkpoint: Callable[..., Any] | None = None,
) -> list[tuple[str, int]]:
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


class PoptorchMissingError(ImportError):
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
