"""run.py IPU with the STAND-IN for poptorch, for both heads, packed and unpacked, float32 and float16:
every forward the stand-in's trainingModel and inferenceModel run keeps to the operations poptorch's
supported-operations list has (tests/poptorch_supported_ops.py), and an operation it lacks fails the run.

What this shows: the program the IPU backend hands poptorch is written in documented operations and
the documented loss form. What it cannot show: that poptorch compiles it, or any IPU number.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from modelzoo.backends.ipu import IpuBackend
from modelzoo.bert import model as bert_model
from modelzoo.cli import main as cli
from tests.poptorch_standin import (
    StandinPoptorch,
    UnsupportedOperationError,
    skip_without_cpu_float16_kernels,
)
from tests.run_fixtures import tiny_params, write_params

PACK = {"packing": True, "max_sequences_per_pack": 4}
SEQUENCE_MODEL = {"num_classes": 2, "head": "sequence_classification"}
IPU_SECTION = {"layers_per_ipu": [1, 1], "gradient_accumulation": 2}
CASES = ["token_unpacked", "token_packed", "sequence_unpacked", "sequence_packed"]
SDPA = "torch.nn.functional.scaled_dot_product_attention"


@pytest.fixture
def standin(monkeypatch) -> StandinPoptorch:
    poptorch = StandinPoptorch()
    monkeypatch.setitem(sys.modules, "poptorch", poptorch)
    return poptorch


def _params_file(case: str, precision: str, ner_csv, classifier_csv, root, **ipu) -> str:
    head, layout = case.split("_")
    packing = PACK if layout == "packed" else {}
    params = tiny_params(ner_csv, root / "model", runconfig={"max_steps": 2, "log_steps": 1,
                                                              "save_checkpoints_steps": 0, "precision": precision})
    if head == "sequence":
        params["model"].update(SEQUENCE_MODEL, max_sequences_per_pack=packing.get("max_sequences_per_pack", 1))
        params["train_input"]["data_dir"] = str(classifier_csv["train"])
        params["eval_input"]["data_dir"] = str(classifier_csv["dev"])
    for section in ("train_input", "eval_input"):
        params[section].update(packing)
    params["ipu"] = {**IPU_SECTION, **ipu}
    return str(write_params(root / "params.yaml", params))


def _run(path: str) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared machine: more threads only contend
    try:
        return cli.main(["IPU", "--mode", "train_and_eval", "--params", path])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("precision", ["float32", "float16"])
@pytest.mark.parametrize("case", CASES)
def test_training_and_evaluation_keep_to_poptorch_operations(case, precision, standin, ner_csv, classifier_csv,
                                                             tmp_path):
    path = _params_file(case, precision, ner_csv, classifier_csv, tmp_path)
    with skip_without_cpu_float16_kernels(precision):
        code = _run(path)
    assert code == 0
    training, inference = standin.executors
    for executor in (training, inference):
        assert executor.operations["torch.matmul"] > 0 and executor.operations["torch.nn.functional.softmax"] > 0
        assert SDPA not in executor.operations and "torch.nonzero" not in executor.operations
    dtypes = {parameter.dtype for parameter in training.model.parameters()}
    assert dtypes == {torch.float16 if precision == "float16" else torch.float32}


def test_the_cpu_attention_kernel_fails_the_ipu_run(standin, ner_csv, classifier_csv, tmp_path, monkeypatch):
    """The deliberately unsupported operation: SDPA, what CPU and GPU run, if the IPU backend kept it."""
    prepare = IpuBackend.prepare

    def prepare_keeping_sdpa(backend, model):
        prepare(backend, model)
        model.bert.use_attention_kernel("sdpa")

    monkeypatch.setattr(IpuBackend, "prepare", prepare_keeping_sdpa)
    path = _params_file("token_unpacked", "float32", ner_csv, classifier_csv, tmp_path)
    with pytest.raises(UnsupportedOperationError, match="scaled_dot_product_attention is not in poptorch"):
        _run(path)


def test_an_unsupported_operation_added_to_the_model_fails_the_ipu_run(standin, ner_csv, classifier_csv, tmp_path,
                                                                       monkeypatch):
    def attention_with_baddbmm(query, key, value, additive_mask, scale, dropout_rate, training):
        """The same attention with the mask added by baddbmm, which poptorch's list does not have."""
        batch, heads, seq, size = query.shape
        mask = additive_mask.expand(batch, heads, seq, seq).reshape(batch * heads, seq, seq)
        scores = torch.baddbmm(mask, query.reshape(-1, seq, size), key.reshape(-1, seq, size).transpose(1, 2),
                               alpha=scale)
        return torch.matmul(torch.softmax(scores, -1).view(batch, heads, seq, seq), value)

    monkeypatch.setattr(bert_model, "matmul_attention", attention_with_baddbmm)
    path = _params_file("token_packed", "float32", ner_csv, classifier_csv, tmp_path)
    with pytest.raises(UnsupportedOperationError, match="torch.baddbmm is not in poptorch"):
        _run(path)


def test_loss_scaling_reaches_the_poptorch_optimizer_and_is_undone_on_the_gradients(
    standin, ner_csv, classifier_csv, tmp_path
):
    """A power-of-two scale is exact in float32, so training with it lands on the same weights."""
    weights = {}
    for scale in (1, 1024):
        poptorch = StandinPoptorch()
        sys.modules["poptorch"] = poptorch
        root = tmp_path / f"scale_{scale}"
        root.mkdir()
        assert _run(_params_file("token_unpacked", "float32", ner_csv, classifier_csv, root, loss_scaling=scale)) == 0
        training = poptorch.executors[0]
        assert training.optimizer.ipu_options["loss_scaling"] == scale
        weights[scale] = {name: p.detach().clone() for name, p in training.model.named_parameters()}
    for name, tensor in weights[1].items():
        torch.testing.assert_close(weights[1024][name], tensor, rtol=1e-5, atol=1e-7, msg=name)


def test_packed_sequence_checkpoint_scores_the_same_on_ipu_and_cpu(standin, ner_csv, classifier_csv, tmp_path):
    """The packed sequence head returns max_sequences_per_pack logits rows per input row; the IPU evaluator
    must split a host call's outputs into batches by input row, as the CPU evaluation does."""
    path = _params_file("sequence_packed", "float32", ner_csv, classifier_csv, tmp_path)
    assert cli.main(["CPU", "--mode", "train_and_eval", "--params", path, "--model_dir", str(tmp_path / "cpu")]) == 0
    checkpoint = tmp_path / "cpu" / "checkpoint_2.mdl"
    ipu_path = _params_file("sequence_packed", "float32", ner_csv, classifier_csv, tmp_path,
                            layers_per_ipu=None, gradient_accumulation=1, replication_factor=2, device_iterations=2)
    argv = ["IPU", "--mode", "eval", "--params", ipu_path, "--checkpoint_path", str(checkpoint)]
    assert cli.main([*argv, "--model_dir", str(tmp_path / "ipu")]) == 0
    on_cpu, on_ipu = (json.loads((tmp_path / run / "eval" / "metrics_step_2.json").read_text()) for run in ("cpu", "ipu"))
    assert on_ipu["num_sequences"] == on_cpu["num_sequences"] > 0
    assert on_ipu["correct"] == on_cpu["correct"]
    assert on_ipu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)
