"""Export to ONNX: a checked graph with dynamic axes, logits as torch's, and --engine onnxruntime tagging as torch does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modelzoo.bert import BertForTokenClassification
from modelzoo.checkpoint.training import load_model_weights
from modelzoo.cli.main import main as run_main
from modelzoo.loop.distributed import DistContext
from modelzoo.loop.tasks import build_task
from modelzoo.params.params import load_params
from modelzoo.tools.convert_checkpoint import main as convert_main
from tests.export_runs import DATA, export_checkpoint, raw_sentences

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_export(ner_run, tmp_path_factory) -> Path:
    return export_checkpoint(ner_run, "onnx", tmp_path_factory.mktemp("onnx_export") / "onnx")


def test_graph_has_the_named_dynamic_inputs_and_passes_the_checker(onnx_export):
    assert {"model.onnx", "label2id.json", "vocab.txt", "tokenizer.json", "README.md"} <= {
        path.name for path in onnx_export.iterdir()}
    model = onnx.load(onnx_export / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert max(opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")) >= 17
    inputs = {value.name: value for value in model.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert [output.name for output in model.graph.output] == ["logits"]
    for value in inputs.values():  # both axes symbolic: any batch, any length
        assert all(dim.dim_param for dim in value.type.tensor_type.shape.dim)


def test_logits_match_torch_within_1e_4_on_padded_batches_of_real_sentences(ner_run, onnx_export):
    params = load_params(ner_run / "train_and_eval" / "params.yaml")
    model = BertForTokenClassification(params.model)
    load_model_weights(model, ner_run / "checkpoint_40.mdl")
    model.eval()
    session = onnxruntime.InferenceSession(str(onnx_export / "model.onnx"), providers=["CPUExecutionProvider"])
    shapes = set()
    for _, batch in zip(range(3), build_task(params).dataloader("eval_input", DistContext()), strict=False):
        longest = int((batch["attention_mask"] != 0).sum(1).max())  # each batch padded to its own longest row
        inputs = {name: batch[name][:, :longest].long() for name in ("input_ids", "attention_mask", "token_type_ids")}
        assert (inputs["attention_mask"] == 0).any()  # padded rows, the case the graph must get right
        with torch.inference_mode():
            expected = model(**inputs).logits.numpy()
        (logits,) = session.run(["logits"], {name: tensor.numpy() for name, tensor in inputs.items()})
        assert np.abs(logits - expected).max() < 1e-4
        shapes.add(logits.shape)
    assert len(shapes) == 3  # three different batch/sequence shapes through one graph


def predicted(model_dir: Path, tmp_path: Path, *args: str) -> list[dict]:
    output = tmp_path / f"out{len(list(tmp_path.iterdir()))}.jsonl"
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(model_dir), "--input", str(tmp_path / "in.txt"),
                     "--output", str(output), *args]) == 0
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def test_onnxruntime_engine_tags_as_the_torch_engine(ner_run, onnx_export, tmp_path):
    sentences = raw_sentences(DATA / "ner" / "test.tsv") + raw_sentences(DATA / "ner" / "train.tsv")
    (tmp_path / "in.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    torch_records = predicted(ner_run, tmp_path, "--checkpoint_path", str(ner_run / "checkpoint_40.mdl"))
    onnx_records = predicted(ner_run, tmp_path, "--engine", "onnxruntime", "--checkpoint_path", str(onnx_export))
    entities = [[{(e["type"], e["start"], e["end"]) for e in r["entities"]} for r in records]
                for records in (torch_records, onnx_records)]
    same = sum(len(a & b) for a, b in zip(*entities, strict=True))
    either = sum(len(a | b) for a, b in zip(*entities, strict=True))
    assert either >= 100 and same / either >= 0.999
    assert [r["words"] for r in torch_records] == [r["words"] for r in onnx_records]


def test_export_without_onnx_installed_is_one_error_and_no_folder(ner_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    code = convert_main(["convert", str(ner_run / "checkpoint_40.mdl"), "--src-fmt", "modelzoo", "--tgt-fmt", "onnx",
                         "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "onnxscript" in err and "requirements.txt" in err
    assert list(tmp_path.iterdir()) == []


def test_onnxruntime_engine_needs_an_onnx_file(ner_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("Angela Merkel met Emmanuel Macron in Paris .\n", encoding="utf-8")
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(tmp_path / "in.txt"),
                     "--engine", "onnxruntime", "--checkpoint_path", str(ner_run / "checkpoint_40.mdl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--tgt-fmt onnx" in err
