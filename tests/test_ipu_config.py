"""The IPU params without a chip: stage plan, batch arithmetic, poptorch options (recorded by a
stand-in, see tests/poptorch_standin.py), optimum-graphcore ipu_config.json and the poptorch check."""

from __future__ import annotations

import json
import logging
import sys
from typing import Tuple

import pytest
import torch
from torch import nn

from modelzoo.backends.ipu_options import (
    BatchPlan,
    PoptorchMissingError,
    apply_pipeline_plan,
    batch_plan,
    build_poptorch_options,
    layer_placement,
    require_poptorch,
    resolve_ipu_params,
)
from modelzoo.common.errors import ParamsError, UserError
from modelzoo.common.schema import build
from modelzoo.params.ipu import IPUParams, ipu_params_from_json
from modelzoo.params.params import load_params
from tests.conftest import REPO_ROOT
from tests.poptorch_standin import AutoStage, OutputMode, StandinPoptorch, Strategy

# --- stage plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_layers", [12, 24])
@pytest.mark.parametrize("ipus", [1, 2, 4])
def test_even_split_puts_equal_consecutive_runs_on_each_ipu(num_layers, ipus):
    per_ipu = num_layers // ipus
    expected = [ipu for ipu in range(ipus) for _ in range(per_ipu)]
    assert layer_placement(num_layers, None, ipus) == expected


@pytest.mark.parametrize(
    ("num_layers", "layers_per_ipu", "counts"),
    [
        (12, [0, 4, 4, 4], [0, 4, 4, 4]),  # Graphcore's bert-base: IPU 0 holds only the embeddings
        (24, [3, 7, 7, 7], [3, 7, 7, 7]),  # Graphcore's bert-large
        (12, [12], [12]),
        (24, [10, 14], [10, 14]),
        (12, [1, 2, -1, -1], [1, 2, 4, 5]),  # -1 shares the rest, remainder on the last -1 (as optimum)
        (24, [-1, -1], [12, 12]),
        (12, [4, 4, 4, 0], [4, 4, 4, 0]),  # the last IPU may hold only the head
    ],
)
def test_explicit_and_wildcard_layers_per_ipu(num_layers, layers_per_ipu, counts):
    expected = [ipu for ipu, n in enumerate(counts) for _ in range(n)]
    assert layer_placement(num_layers, layers_per_ipu, len(layers_per_ipu)) == expected


@pytest.mark.parametrize(
    ("layers_per_ipu", "ipus", "words"),
    [
        ([3, 3, 3, 4], 4, ["places 13 encoder layers", "has 12"]),
        ([6, 6], 4, ["names 2 IPUs", "not 4"]),
        ([10, 4, -1, -1], 4, ["places 14 layers before the -1", "12"]),
        ([6, 0, 3, 3], 4, ["IPU 1 with nothing to run"]),
    ],
)
def test_inconsistent_layers_per_ipu_is_an_error_naming_the_key(layers_per_ipu, ipus, words):
    with pytest.raises(ParamsError) as error:
        layer_placement(12, layers_per_ipu, ipus, where="ipu")
    message = str(error.value)
    assert message.startswith("ipu.layers_per_ipu:")
    for word in words:
        assert word in message


class TinyBert(nn.Module):
    """The attribute names of the team's model (HF naming), with layers small enough to run."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.bert = nn.Module()
        self.bert.embeddings = nn.Linear(4, 4)
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleList(nn.Linear(4, 4) for _ in range(num_layers))
        self.classifier = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bert.embeddings(x)
        for layer in self.bert.encoder.layer:
            x = layer(x)
        return self.classifier(x)


def test_pipeline_plan_begins_a_block_where_the_ipu_changes():
    poptorch = StandinPoptorch()
    model = TinyBert(12)
    layer_3 = model.bert.encoder.layer[3]
    blocks = apply_pipeline_plan(model, layer_placement(12, None, 4), 4, poptorch.BeginBlock)
    expected = [("embeddings", 0), ("encoder_layer_3", 1), ("encoder_layer_6", 2), ("encoder_layer_9", 3)]
    assert blocks == expected
    assert [(user_id, ipu) for _, user_id, ipu in poptorch.blocks] == expected
    assert poptorch.blocks[1][0] is layer_3 and model.bert.encoder.layer[3] is layer_3


def test_head_gets_its_own_block_when_the_last_ipu_has_no_layer():
    poptorch = StandinPoptorch()
    model = TinyBert(12)
    blocks = apply_pipeline_plan(model, layer_placement(12, [4, 4, 4, 0], 4), 4, poptorch.BeginBlock)
    assert blocks[-1] == ("classifier", 3)
    assert poptorch.blocks[-1][0] is model.classifier


def test_single_ipu_plan_begins_only_the_embeddings_block():
    poptorch = StandinPoptorch()
    blocks = apply_pipeline_plan(TinyBert(12), layer_placement(12, None, 1), 1, poptorch.BeginBlock)
    assert blocks == [("embeddings", 0)]


def test_recompute_checkpoints_every_layer_output_but_the_last():
    poptorch = StandinPoptorch()
    model = TinyBert(4)
    apply_pipeline_plan(model, [0, 0, 1, 1], 2, poptorch.BeginBlock, poptorch.recomputationCheckpoint)
    model(torch.ones(1, 4))
    assert len(poptorch.checkpointed) == 3


def test_plan_for_another_depth_than_the_model_is_refused():
    with pytest.raises(ValueError, match="covers 12 encoder layers, the model has 4"):
        apply_pipeline_plan(TinyBert(4), [0] * 12, 1, StandinPoptorch().BeginBlock)


# --- batch arithmetic --------------------------------------------------------------------------


def test_training_batch_is_micro_x_accumulation_x_replicas():
    params = IPUParams(device_iterations=2, replication_factor=4, gradient_accumulation=8)
    plan = batch_plan(256, params, training=True, key="train_input.batch_size")
    assert plan == BatchPlan(
        micro_batch_size=8, gradient_accumulation=8, replication_factor=4, device_iterations=2
    )
    assert plan.global_batch_size == 256
    assert plan.combined_batch_size == 512


def test_inference_batch_uses_no_accumulation():
    params = IPUParams(device_iterations=2, replication_factor=4, gradient_accumulation=8)
    plan = batch_plan(256, params, training=False, key="eval_input.batch_size")
    assert (plan.micro_batch_size, plan.gradient_accumulation) == (64, 1)
    assert plan.combined_batch_size == 512


def test_training_batch_that_does_not_divide_names_the_key_and_good_sizes():
    params = IPUParams(replication_factor=4, gradient_accumulation=8)
    with pytest.raises(ParamsError) as error:
        batch_plan(100, params, training=True, key="train_input.batch_size")
    message = str(error.value)
    assert message.startswith("train_input.batch_size: 100")
    assert "ipu.gradient_accumulation (8) x ipu.replication_factor (4) = 32" in message
    assert "96 or 128" in message


def test_inference_batch_that_does_not_divide_names_only_the_replicas():
    params = IPUParams(replication_factor=4, gradient_accumulation=8)
    with pytest.raises(ParamsError) as error:
        batch_plan(2, params, training=False, key="eval_input.batch_size")
    assert "ipu.replication_factor (4) = 4, e.g. 4" in str(error.value)
    assert "gradient_accumulation" not in str(error.value)


# --- poptorch options --------------------------------------------------------------------------


def pipelined_params() -> IPUParams:
    return IPUParams(
        device_iterations=2,
        replication_factor=2,
        gradient_accumulation=16,
        layers_per_ipu=[0, 4, 4, 4],
        enable_half_partials=True,
        available_memory_proportion=[0.1, 0.15, 0.15, 0.15],
        executable_cache_dir="exe_cache",
        random_seed=42,
    )


def test_training_options_map_every_key():
    poptorch = StandinPoptorch()
    build_poptorch_options(pipelined_params(), poptorch, training=True)
    assert poptorch.called("deviceIterations") == [(2,)]
    assert poptorch.called("replicationFactor") == [(2,)]
    assert poptorch.called("Training.gradientAccumulation") == [(16,)]
    assert poptorch.called("setExecutionStrategy") == [(Strategy("PipelinedExecution", AutoStage.SameAsIpu),)]
    assert poptorch.called("outputMode") == [(OutputMode.Final,)]
    assert poptorch.called("Precision.setPartialsType") == [(torch.float16,)]
    assert poptorch.called("Precision.enableStochasticRounding") == [(True,)]
    assert poptorch.called("setAvailableMemoryProportion") == [
        ({"IPU0": 0.1, "IPU1": 0.15, "IPU2": 0.15, "IPU3": 0.15},)
    ]
    assert poptorch.called("enableExecutableCaching") == [("exe_cache",)]
    assert poptorch.called("randomSeed") == [(42,)]


def test_inference_options_shard_return_all_and_round_to_nearest():
    poptorch = StandinPoptorch()
    build_poptorch_options(pipelined_params(), poptorch, training=False)
    assert poptorch.called("Training.gradientAccumulation") == []
    assert poptorch.called("setExecutionStrategy") == [(Strategy("ShardedExecution", AutoStage.SameAsIpu),)]
    assert poptorch.called("outputMode") == [(OutputMode.All,)]
    assert poptorch.called("Precision.enableStochasticRounding") == [(False,)]


def test_default_options_leave_poptorch_defaults_alone():
    poptorch = StandinPoptorch()
    build_poptorch_options(IPUParams(), poptorch, training=True)
    assert poptorch.called("setExecutionStrategy") == []
    assert poptorch.called("setAvailableMemoryProportion") == []
    assert poptorch.called("enableExecutableCaching") == []
    assert poptorch.called("randomSeed") == []
    assert poptorch.called("Precision.setPartialsType") == [(torch.float32,)]


def test_one_memory_proportion_applies_to_every_ipu():
    poptorch = StandinPoptorch()
    build_poptorch_options(
        IPUParams(ipus_per_replica=2, available_memory_proportion=0.3), poptorch, training=True
    )
    assert poptorch.called("setAvailableMemoryProportion") == [({"IPU0": 0.3, "IPU1": 0.3},)]


# --- the YAML section --------------------------------------------------------------------------


def test_yaml_section_derives_ipus_per_replica_from_layers_per_ipu():
    params = build(IPUParams, {"layers_per_ipu": [0, 4, 4, 4], "gradient_accumulation": 16}, "ipu")
    assert params.ipus_per_replica == 4


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"ipu_config_file": "x.json", "device_iterations": 4}, ["remove device_iterations", "x.json"]),
        ({"pod_type": "pod16"}, ["ipu.pod_type", "ipu_config_file"]),
        ({"layers_per_ipu": [4, 4, 4]}, ["3 IPUs", "powers of two"]),
        ({"layers_per_ipu": [6, 6], "ipus_per_replica": 4}, ["names 2 IPUs", "ipu.ipus_per_replica is 4"]),
        ({"available_memory_proportion": 1.5}, ["ipu.available_memory_proportion", "(0, 1]"]),
        ({"gradient_accumulation": 0}, ["ipu.gradient_accumulation: must be at least 1"]),
        ({"gradient_accumlation": 8}, ["did you mean 'gradient_accumulation'"]),
        ({"loss_scaling": 0}, ["ipu.loss_scaling: must be a positive finite number, got 0"]),
        ({"loss_scaling": -8.0}, ["ipu.loss_scaling", "got -8.0"]),
    ],
)
def test_bad_yaml_section_is_an_error_naming_the_key(values, words):
    with pytest.raises(ParamsError) as error:
        build(IPUParams, values, "ipu")
    for word in words:
        assert word in str(error.value)


def test_resolve_checks_yaml_layers_against_the_model():
    params = IPUParams(layers_per_ipu=[0, 4, 4, 4])
    assert resolve_ipu_params(params, 12) is params
    with pytest.raises(
        ParamsError, match=r"^ipu\.layers_per_ipu: .* places 12 encoder layers but the model has 24"
    ):
        resolve_ipu_params(params, 24)


# --- optimum-graphcore ipu_config.json ---------------------------------------------------------

GRAPHCORE_BERT_BASE = {  # the keys and values of Graphcore/bert-base-uncased's ipu_config.json on the Hub
    "device_iterations": 1,
    "embedding_serialization_factor": 2,
    "enable_half_first_order_momentum": True,
    "enable_half_partials": True,
    "executable_cache_dir": "./exe_cache",
    "gradient_accumulation_steps": 512,
    "inference_device_iterations": 4,
    "inference_replication_factor": 4,
    "ipus_per_replica": 4,
    "layers_per_ipu": [0, 4, 4, 4],
    "matmul_proportion": 0.22,
    "optimizer_state_offchip": False,
    "optimum_version": "0.1.2",
    "output_mode": "final",
    "profile_dir": None,
    "recompute_checkpoint_every_layer": True,
    "replicated_tensor_sharding": True,
    "replication_factor": 4,
    "seed": 42,
    "use_popdist": False,
}


@pytest.fixture
def write_config(tmp_path):
    def write(changes: dict, drop: Tuple[str, ...] = ()) -> str:
        config = {k: v for k, v in {**GRAPHCORE_BERT_BASE, **changes}.items() if k not in drop}
        path = tmp_path / "ipu_config.json"
        path.write_text(json.dumps(config))
        return str(path)

    return write


def test_graphcore_config_maps_to_our_keys_and_logs_the_unused_ones_once(write_config, caplog):
    with caplog.at_level(logging.INFO, logger="modelzoo.params.ipu"):
        params = ipu_params_from_json(write_config({}))
    assert params.gradient_accumulation == 512
    assert params.available_memory_proportion == 0.22
    assert params.random_seed == 42
    assert params.replication_factor == 4
    assert (params.layers_per_ipu, params.ipus_per_replica) == ([0, 4, 4, 4], 4)
    assert (params.enable_half_partials, params.recompute_checkpoint_every_layer) == (True, True)
    assert params.executable_cache_dir == "./exe_cache"
    ignored_lines = [r.getMessage() for r in caplog.records if "ignoring keys" in r.getMessage()]
    assert len(ignored_lines) == 1
    assert (
        "embedding_serialization_factor" in ignored_lines[0]
        and "inference_replication_factor" in ignored_lines[0]
    )


def test_absent_keys_take_optimum_defaults(write_config):
    params = ipu_params_from_json(write_config({}, drop=("enable_half_partials", "matmul_proportion")))
    assert (params.enable_half_partials, params.available_memory_proportion) == (True, 0.2)


def test_optimum_spellings_of_no_cache_and_default_split(write_config):
    params = ipu_params_from_json(write_config({"executable_cache_dir": "", "layers_per_ipu": [-1]}))
    assert params.executable_cache_dir is None
    placement = layer_placement(12, params.layers_per_ipu, params.ipus_per_replica)
    assert placement == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


PER_POD = {"pod4": 1, "pod16": 4, "default": 2}


@pytest.mark.parametrize(
    ("replication_factor", "pod_type", "expected"),
    [(PER_POD, None, 2), (PER_POD, "pod16", 4), ({"pod16": 4}, None, 4), (4, "pod16", 4)],
)
def test_per_pod_replication_factor(write_config, replication_factor, pod_type, expected):
    path = write_config({"replication_factor": replication_factor})
    assert ipu_params_from_json(path, pod_type).replication_factor == expected


def test_ipu_config_file_in_the_yaml_section_uses_its_pod_type(write_config):
    path = write_config({"replication_factor": PER_POD})
    params = build(IPUParams, {"ipu_config_file": path, "pod_type": "pod4"}, "ipu")
    resolved = resolve_ipu_params(params, 12)
    assert (resolved.replication_factor, resolved.gradient_accumulation) == (1, 512)
    assert resolved.ipu_config_file is None  # the resolved section holds the effective values itself


def test_loss_scaling_is_kept_beside_an_ipu_config_file(write_config):
    """optimum takes the loss scaling as a training argument, not an IPUConfig key: the section keeps it."""
    path = write_config({"replication_factor": PER_POD})
    params = build(IPUParams, {"ipu_config_file": path, "pod_type": "pod4", "loss_scaling": 64}, "ipu")
    assert resolve_ipu_params(params, 12).loss_scaling == 64


def test_the_pod4_config_follows_optimums_bert_base_and_splits_its_batches():
    params = load_params(REPO_ROOT / "configs" / "bert_base_ner.yaml")
    ipu = resolve_ipu_params(params.ipu, params.model.num_hidden_layers)
    assert (ipu.ipus_per_replica, ipu.layers_per_ipu, ipu.replication_factor) == (4, [0, 4, 4, 4], 1)
    assert layer_placement(12, ipu.layers_per_ipu, 4) == [1] * 4 + [2] * 4 + [3] * 4
    assert batch_plan(params.train_input.batch_size, ipu, training=True, key="k") == BatchPlan(1, 16, 1, 1)
    assert params.runconfig.precision == "bfloat16" and ipu.loss_scaling == 64  # float16 on the IPU


@pytest.mark.parametrize(
    ("changes", "pod_type", "words"),
    [
        (
            {"replication_factor": {"pod4": 1, "pod16": 4}},
            None,
            ["replication_factor", "no 'default'", "pod_type"],
        ),
        (
            {"replication_factor": PER_POD},
            "pod64",
            ["replication_factor", "no entry for ipu.pod_type 'pod64'"],
        ),
        ({"replication_factor": {"pdo16": 4}}, None, ["replication_factor", "'pdo16'"]),
        ({"layers_per_ipu": [4, 4, 4]}, None, ["layers_per_ipu", "names 3 IPUs", "ipus_per_replica is 4"]),
        (
            {"matmul_proportion": [0.1, 0.2, 0.2]},
            None,
            ["matmul_proportion", "3 values", "ipus_per_replica is 4"],
        ),
        (
            {"layers_per_ipus": [0, 4, 4, 4]},
            None,
            ["unknown key 'layers_per_ipus'", "did you mean 'layers_per_ipu'"],
        ),
        ({"gradient_accumulation_steps": "8"}, None, ["gradient_accumulation_steps: expected int", "'8'"]),
        ({"seed": 4.5}, None, ["seed: expected int"]),
    ],
)
def test_bad_ipu_config_is_an_error_naming_the_file_and_key(write_config, changes, pod_type, words):
    path = write_config(changes)
    with pytest.raises(ParamsError) as error:
        ipu_params_from_json(path, pod_type)
    message = str(error.value)
    assert message.startswith(path)
    for word in words:
        assert word in message


def test_layers_that_do_not_sum_to_the_model_depth_name_the_file(write_config):
    path = write_config({"layers_per_ipu": [3, 3, 3, 4]})
    params = IPUParams(ipu_config_file=path)
    with pytest.raises(ParamsError, match=r"ipu_config\.json\.layers_per_ipu: .* places 13 encoder layers"):
        resolve_ipu_params(params, 12)


def test_unreadable_ipu_config_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"seed": 1,\n}')
    with pytest.raises(ParamsError, match=r"broken\.json: not valid JSON .* line 2"):
        ipu_params_from_json(broken)
    with pytest.raises(ParamsError, match=r"ipu\.ipu_config_file: .*missing\.json not found"):
        ipu_params_from_json(tmp_path / "missing.json")


# --- poptorch availability ---------------------------------------------------------------------


def test_require_poptorch_without_poptorch_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "poptorch", None)  # makes `import poptorch` fail, installed or not
    with pytest.raises(PoptorchMissingError) as error:
        require_poptorch()
    message = str(error.value)
    assert "\n" not in message
    assert "poptorch" in message and "PYTHON-SETUP.md" in message
    assert isinstance(error.value, UserError)  # run.py prints it as one error line


def test_require_poptorch_returns_the_module_when_importable(monkeypatch):
    standin = StandinPoptorch()
    monkeypatch.setitem(sys.modules, "poptorch", standin)
    assert require_poptorch() is standin
