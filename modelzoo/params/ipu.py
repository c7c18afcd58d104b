"""The ``ipu:`` section of the params and optimum-graphcore's ipu_config.json read into it.

Declared with the other params sections (no poptorch needed), so a bad ``ipu:`` section fails at
params validation, before a chip is attached or ``model_dir`` is touched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import typing
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

from modelzoo.common.errors import ParamsError
from modelzoo.common.schema import build, param, unknown_key_message

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class IPUParams:
    """The YAML ``ipu:`` section. Cross-field rules are checked here; rules that need the model
    (how many encoder layers) are checked by :func:`resolve_ipu_params`."""

    device_iterations: int = param(1, "batches the IPU runs per host call; more amortises host I/O")
    replication_factor: int = param(1, "data-parallel copies of the model, each on ipus_per_replica IPUs")
    gradient_accumulation: int = param(1, "micro batches accumulated per optimizer step (training only)")
    layers_per_ipu: Optional[List[int]] = param(
        None, "encoder layers per pipeline IPU, e.g. [0, 4, 4, 4]; -1 shares the rest; null: even split"
    )
    ipus_per_replica: Optional[int] = param(
        None, "IPUs one model copy is pipelined over; null: len(layers_per_ipu) or 1"
    )
    recompute_checkpoint_every_layer: bool = param(
        False, "keep each encoder layer's output, recompute the rest in the backward pass (saves memory)"
    )
    enable_half_partials: bool = param(
        False, "float16 partial sums in matmuls (saves memory, costs precision)"
    )
    available_memory_proportion: Union[float, List[float], None] = param(
        None, "tile memory share for matmul temporaries: one value or one per IPU; null: poptorch's default"
    )
    stochastic_rounding: bool = param(
        True, "stochastic rounding of float16 results in training, never in inference"
    )
    executable_cache_dir: Optional[str] = param(
        None, "folder caching compiled executables between runs; null: none"
    )
    random_seed: Optional[int] = param(
        None, "seed of the IPU's random number generator; null: poptorch's default"
    )
    loss_scaling: float = param(
        1.0, "poptorch optimizers' loss_scaling: the loss is multiplied by it and the gradients divided, so "
        "that small float16 gradients do not flush to zero; 1: none. Allowed beside ipu_config_file"
    )
    output_mode: Literal["all", "sum", "final", "default"] = param(
        "final", "what a training call returns of its micro batches (inference always returns all)"
    )
    ipu_config_file: Optional[str] = param(
        None, "optimum-graphcore ipu_config.json used in place of the keys above"
    )
    pod_type: Optional[str] = param(
        None, "entry of per-pod values in ipu_config_file, e.g. pod16; null: 'default'"
    )

    def __post_init__(self) -> None:
        if self.ipu_config_file is None and self.pod_type is not None:
            raise ParamsError("ipu.pod_type: only used with ipu.ipu_config_file, which is not set")
        if self.ipu_config_file is not None:
            also_set = [
                f.name
                for f in dataclasses.fields(self)
                if f.name not in _BESIDE_CONFIG_FILE and getattr(self, f.name) != f.default
            ]
            if also_set:
                raise ParamsError(
                    f"ipu.ipu_config_file replaces the other ipu keys; remove {', '.join(also_set)} "
                    f"or set them in {self.ipu_config_file}"
                )
        if not (0 < self.loss_scaling < math.inf):
            raise ParamsError(f"ipu.loss_scaling: must be a positive finite number, got {self.loss_scaling}")
        if self.ipus_per_replica is None:
            self.ipus_per_replica = _default_ipus_per_replica(self.layers_per_ipu)
        _check_layout(dataclasses.asdict(self), "ipu", {})


# Keys that may be set together with ipu_config_file: they are not IPUConfig keys (optimum takes the loss
# scaling as a training argument, --loss_scaling).
_BESIDE_CONFIG_FILE = ("ipu_config_file", "pod_type", "loss_scaling")


def _default_ipus_per_replica(layers_per_ipu: Optional[List[int]]) -> int:
    """optimum's rule: one IPU per layers_per_ipu entry, one IPU without it."""
    return len(layers_per_ipu) if layers_per_ipu else 1


def _check_layout(values: Dict[str, Any], where: str, names: Dict[str, str]) -> None:
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


def _for_pod(where: str, value: Any, pod_type: Optional[str]) -> Any:
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


def ipu_params_from_json(path: Union[str, Path], pod_type: Optional[str] = None) -> IPUParams:
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
