"""run.py IPU end to end with a STAND-IN for poptorch (tests/poptorch_standin.py), not poptorch.

The stand-in records every poptorch call and runs the model on the CPU as poptorch would split it,
so these tests show that the executor drives training, evaluation and checkpointing through
poptorch's documented API and that its checkpoints move between IPU and CPU; they do not show that
poptorch or an IPU accepts the program.
"""

from __future__ import annotations

import json
import re
import sys
from typing import List

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.cli import main as cli
from modelzoo.loop import trainer
from modelzoo.optim.lr_schedule import learning_rate_at, parse_learning_rate
from tests.poptorch_standin import AutoStage, OutputMode, StandinPoptorch, Strategy
from tests.run_fixtures import model_tensors, tiny_params, write_params

SCHEDULE = [
    {"scheduler": "Linear", "initial_learning_rate": 1.0e-3, "end_learning_rate": 4.0e-3, "total_iters": 4},
    {"scheduler": "Linear", "initial_learning_rate": 4.0e-3, "end_learning_rate": 1.0e-3, "total_iters": 8},
    {"scheduler": "Constant", "learning_rate": 1.0e-3},  # open-ended: a resume may train past step 12
]
RUN = {"max_steps": 12, "save_checkpoints_steps": 4, "eval_frequency": 8, "log_steps": 3}
IPU_SECTION = {
    "device_iterations": 2,
    "replication_factor": 2,
    "gradient_accumulation": 2,
    "layers_per_ipu": [1, 1],
    "recompute_checkpoint_every_layer": True,
    "executable_cache_dir": "exe_cache",
    "random_seed": 5,
}


def _install_standin(monkeypatch) -> StandinPoptorch:
    """The stand-in as ``poptorch``, with every checkpoint save logged among its events."""
    poptorch = StandinPoptorch()
    monkeypatch.setitem(sys.modules, "poptorch", poptorch)
    original = trainer.save_checkpoint

    def logged_save(state, path, keep_checkpoint_max=None):
        poptorch.events.append(("save", path.name))
        original(state, path, keep_checkpoint_max)

    monkeypatch.setattr(trainer, "save_checkpoint", logged_save)
    return poptorch


@pytest.fixture
def standin(monkeypatch) -> StandinPoptorch:
    return _install_standin(monkeypatch)


@pytest.fixture(scope="module")
def ipu_run(ner_csv, tmp_path_factory):
    """One IPU train_and_eval run (12 steps, evaluated at 8 and 12) and what the stand-in recorded."""
    monkeypatch = pytest.MonkeyPatch()
    poptorch = _install_standin(monkeypatch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared 2-core machine: more threads only contend
    root = tmp_path_factory.mktemp("ipu_run")
    params = tiny_params(
        ner_csv, root / "model", runconfig=RUN, optimizer={"learning_rate": SCHEDULE}
    )
    params["ipu"] = IPU_SECTION
    path = write_params(root / "params.yaml", params)
    try:
        code = cli.main(["IPU", "--mode", "train_and_eval", "--params", str(path)])
    finally:
        monkeypatch.undo()
        torch.set_num_threads(threads)
    return {"code": code, "poptorch": poptorch, "model_dir": root / "model", "params": params, "root": root}


def _events(poptorch: StandinPoptorch, *names: str) -> List[tuple]:
    return [event for event in poptorch.events if event[0] in names]


def _metrics(model_dir, step: int) -> dict:
    return json.loads((model_dir / "eval" / f"metrics_step_{step}.json").read_text())


def test_options_come_from_the_ipu_section(ipu_run):
    poptorch = ipu_run["poptorch"]
    assert ipu_run["code"] == 0
    assert poptorch.called("deviceIterations") == [(2,), (2,)]  # inference options, then training options
    assert poptorch.called("replicationFactor") == [(2,), (2,)]
    assert poptorch.called("Training.gradientAccumulation") == [(2,)]
    assert poptorch.called("setExecutionStrategy") == [
        (Strategy("ShardedExecution", AutoStage.SameAsIpu),),
        (Strategy("PipelinedExecution", AutoStage.SameAsIpu),),
    ]
    assert poptorch.called("outputMode") == [(OutputMode.All,), (OutputMode.Final,)]
    assert poptorch.called("enableExecutableCaching") == [("exe_cache",), ("exe_cache",)]
    assert poptorch.called("randomSeed") == [(5,), (5,)]


def test_pipeline_stages_follow_the_plan(ipu_run):
    poptorch = ipu_run["poptorch"]
    assert [(user_id, ipu) for _, user_id, ipu in poptorch.blocks] == [("embeddings", 0), ("encoder_layer_1", 1)]
    assert poptorch.checkpointed, "recomputation checkpoints were requested but never placed"


def test_training_and_inference_models_run_the_combined_batch(ipu_run):
    poptorch = ipu_run["poptorch"]
    training, inference = poptorch.executors
    assert (training.kind, inference.kind) == ("training", "inference")
    assert type(training.optimizer).__name__ == "AdamW"
    assert training.optimizer.ipu_options["max_grad_norm"] == 1.0
    # train batch 8 = micro 2 x accumulation 2 x replication 2; 2 device iterations per host call
    assert [(loader.micro_batch_size, loader.combined_batch_size) for loader in poptorch.loaders][:1] == [(2, 16)]
    assert {event[2] for event in _events(poptorch, "call") if event[1] == "training"} == {16}
    assert training.calls == 6 and len(training.rates_used) == 12
    # eval batch 16 = micro 8 x replication 2 (no accumulation in inference); 2 device iterations
    eval_loaders = [loader for loader in poptorch.loaders if loader.micro_batch_size == 8]
    assert eval_loaders and all(loader.combined_batch_size == 32 for loader in eval_loaders)


def test_the_learning_rate_reaches_the_device_through_set_optimizer(ipu_run):
    training = ipu_run["poptorch"].executors[0]
    phases = parse_learning_rate(SCHEDULE)
    # one rate per host call (2 steps), the schedule's value at the call's first step
    expected = [learning_rate_at(phases, 2 * (step // 2)) for step in range(12)]
    assert training.rates_used == pytest.approx(expected)
    set_calls = _events(ipu_run["poptorch"], "setOptimizer")
    assert len(set_calls) == 5  # every call after the first moves the rate


def test_weights_are_copied_to_the_host_before_every_checkpoint(ipu_run):
    poptorch = ipu_run["poptorch"]
    saves = [i for i, event in enumerate(poptorch.events) if event[0] == "save"]
    assert [poptorch.events[i][1] for i in saves] == ["checkpoint_4.mdl", "checkpoint_8.mdl", "checkpoint_12.mdl"]
    for i in saves:
        since_last_call = poptorch.events[max(j for j in range(i) if poptorch.events[j][0] == "call") : i]
        assert ("copyWeightsToHost", "training") in since_last_call
    # the IPUs are released at the end, and evaluation never ran while training held them
    assert not any(executor.attached for executor in poptorch.executors)
    assert ("detachFromDevice", "training") in poptorch.events and ("attachToDevice", "training") in poptorch.events


def test_loss_falls_and_both_evaluations_are_reported(ipu_run):
    model_dir = ipu_run["model_dir"]
    assert _metrics(model_dir, 8)["step"] == 8 and "f1" in _metrics(model_dir, 12)
    events = EventAccumulator(str(model_dir / "train")).Reload()
    losses = [scalar.value for scalar in events.Scalars("loss")]
    assert len(losses) >= 4 and losses[-1] < losses[0]


def test_ipu_checkpoint_has_the_cpu_layout_and_evaluates_on_cpu(ipu_run, ner_csv, tmp_path):
    checkpoint = ipu_run["model_dir"] / "checkpoint_12.mdl"
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert set(state) == {"model", "optimizer", "scheduler", "scaler", "step", "epoch", "batches_done", "rng", "params"}
    cpu_model = BertForTokenClassification(BertConfig.from_dict(ipu_run["params"]["model"]))
    assert list(model_tensors(checkpoint)) == list(cpu_model.state_dict())
    params = tiny_params(ner_csv, tmp_path / "cpu_eval")
    path = write_params(tmp_path / "params.yaml", params)
    assert cli.main(["CPU", "--mode", "eval", "--params", str(path), "--checkpoint_path", str(checkpoint)]) == 0
    on_cpu, on_ipu = _metrics(tmp_path / "cpu_eval", 12), _metrics(ipu_run["model_dir"], 12)
    assert on_cpu["loss"] == pytest.approx(on_ipu["loss"], rel=1e-4)
    assert on_cpu["f1"] == pytest.approx(on_ipu["f1"], abs=1e-9)


def test_ipu_resumes_from_the_latest_checkpoint(ipu_run, standin, capsys):
    path = write_params(ipu_run["root"] / "params.yaml", ipu_run["params"])
    assert cli.main(["IPU", "--mode", "train", "--params", str(path), "--max_steps", "16"]) == 0
    assert "(step 12)" in capsys.readouterr().out
    assert standin.executors[0].calls == 2
    assert (ipu_run["model_dir"] / "checkpoint_16.mdl").is_file()


def test_cpu_checkpoint_evaluates_on_ipu(ner_csv, standin, tmp_path):
    params = tiny_params(ner_csv, tmp_path / "cpu", runconfig={"max_steps": 4, "save_checkpoints_steps": 0})
    path = write_params(tmp_path / "params.yaml", params)
    assert cli.main(["CPU", "--mode", "train_and_eval", "--params", str(path)]) == 0
    params["ipu"] = {"replication_factor": 2, "device_iterations": 3}
    path = write_params(tmp_path / "ipu_params.yaml", params)
    checkpoint = tmp_path / "cpu" / "checkpoint_4.mdl"
    argv = ["IPU", "--mode", "eval", "--params", str(path), "--checkpoint_path", str(checkpoint)]
    assert cli.main([*argv, "--model_dir", str(tmp_path / "ipu")]) == 0
    on_cpu, on_ipu = _metrics(tmp_path / "cpu", 4), _metrics(tmp_path / "ipu", 4)
    assert on_ipu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)
    assert on_ipu["f1"] == pytest.approx(on_cpu["f1"], abs=1e-9)
    assert [executor.kind for executor in standin.executors] == ["inference"]
    assert not standin.executors[0].attached


def test_optimum_ipu_config_json_replaces_the_ipu_section(ner_csv, standin, tmp_path):
    config = {
        "layers_per_ipu": [1, 1],
        "ipus_per_replica": 2,
        "replication_factor": {"default": 1, "pod16": 4},
        "gradient_accumulation_steps": 2,
        "matmul_proportion": [0.2, 0.25],
        "executable_cache_dir": "",
        "optimum_version": "1.6.0",
    }
    (tmp_path / "ipu_config.json").write_text(json.dumps(config))
    params = tiny_params(ner_csv, tmp_path / "model", runconfig={"max_steps": 2})
    params["ipu"] = {"ipu_config_file": str(tmp_path / "ipu_config.json")}
    path = write_params(tmp_path / "params.yaml", params)
    assert cli.main(["IPU", "--mode", "train", "--params", str(path)]) == 0
    assert standin.called("Training.gradientAccumulation") == [(2,)]
    assert standin.called("replicationFactor") == [(1,)]
    assert standin.called("setAvailableMemoryProportion") == [({"IPU0": 0.2, "IPU1": 0.25},)]
    assert standin.called("Precision.setPartialsType") == [(torch.float16,)]  # optimum's default
    assert standin.called("enableExecutableCaching") == []
    assert [user_id for _, user_id, _ in standin.blocks] == ["embeddings", "encoder_layer_1"]
    assert standin.loaders[0].micro_batch_size == 4  # batch 8 = micro 4 x accumulation 2


def test_without_poptorch_ipu_exits_2_naming_what_to_install(ner_csv, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "poptorch", None)
    path = write_params(tmp_path / "params.yaml", tiny_params(ner_csv, tmp_path / "model"))
    assert cli.main(["IPU", "--mode", "train", "--params", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "poptorch" in lines[0] and "PYTHON-SETUP.md" in lines[0]
    assert not (tmp_path / "model").exists()


def test_cpu_accumulation_key_is_refused_on_ipu_before_model_dir(ner_csv, standin, tmp_path, capsys):
    params = tiny_params(ner_csv, tmp_path / "model", runconfig={"gradient_accumulation_steps": 2})
    path = write_params(tmp_path / "params.yaml", params)
    assert cli.main(["IPU", "--mode", "train", "--params", str(path)]) == 2
    assert re.search(r"ipu\.gradient_accumulation", capsys.readouterr().err)
    assert not (tmp_path / "model").exists() and standin.events == []
