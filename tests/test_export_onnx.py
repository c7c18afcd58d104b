"""Export to ONNX: fused float32 and int8 graphs with dynamic axes, logits as torch's, and --engine onnxruntime
tagging as torch does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from modelzoo.bert import BertForTokenClassification
from modelzoo.checkpoint.training import load_model_weights
from modelzoo.cli.main import main as run_main
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.params.params import load_params
from modelzoo.tools.convert_checkpoint import main as convert_main
from tests.export_runs import DATA, export_checkpoint, raw_sentences

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_export(ner_run, tmp_path_factory) -> Path:
    return export_checkpoint(ner_run, "onnx", tmp_path_factory.mktemp("onnx_export") / "onnx")


def test_graphs_have_the_named_dynamic_inputs(onnx_export):
    assert {"model.onnx", "model_int8.onnx", "label2id.json", "vocab.txt", "tokenizer.json", "README.md"} <= {
        path.name for path in onnx_export.iterdir()}
    for name in ("model.onnx", "model_int8.onnx"):
        model = onnx.load(onnx_export / name)
        assert max(opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")) >= 17
        inputs = {value.name: value for value in model.graph.input}
        assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
        assert [output.name for output in model.graph.output] == ["logits"]
        for value in inputs.values():  # both axes symbolic: any batch, any length
            assert all(dim.dim_param for dim in value.type.tensor_type.shape.dim)


def test_float32_graph_is_fused_by_onnx_runtime(onnx_export):
    """Attention, skip LayerNorm and bias-GELU in ONNX Runtime's fused kernels, one of each a layer (2 layers)."""
    operators = [node.op_type for node in onnx.load(onnx_export / "model.onnx").graph.node]
    assert operators.count("Attention") == 2 and operators.count("BiasGelu") == 2
    assert operators.count("SkipLayerNormalization") == 4 and "Softmax" not in operators


def test_int8_graph_has_seven_bit_weights_with_a_scale_per_output_channel(onnx_export):
    """Weights within +-64 (onnxruntime's reduce_range), so 8-bit activations cannot overflow the kernels' pair sums."""
    model = onnx.load(onnx_export / "model_int8.onnx")
    initializers = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    weights = [initializers[node.input[1]] for node in model.graph.node if node.op_type == "MatMulInteger"]
    assert len(weights) == 12  # q, k, v, attention output and the two feed-forward matrices of 2 layers
    assert "/classifier/MatMul" in [node.name for node in model.graph.node if node.op_type == "MatMul"]  # float
    for weight in weights:
        assert weight.dtype == np.int8 and np.abs(weight.astype(np.int16)).max() <= 64
    # per channel: one zero point (and scale) for each output column of a weight matrix
    zero_points = [initializers[node.input[3]] for node in model.graph.node if node.op_type == "MatMulInteger"]
    assert all(point.size == weight.shape[1] for point, weight in zip(zero_points, weights))


def test_logits_match_torch_within_1e_4_on_padded_batches_of_real_sentences(ner_run, onnx_export):
    """At the real tokens: what a padding position computes is never read, and differs (ours attends
    padding to padding, the exported Hugging Face graph padding to the sentence)."""
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
        real = inputs["attention_mask"].numpy() == 1
        assert np.abs(logits[real] - expected[real]).max() < 1e-4
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
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    code = convert_main(["convert", str(ner_run / "checkpoint_40.mdl"), "--src-fmt", "modelzoo", "--tgt-fmt", "onnx",
                         "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "onnxruntime" in err and "requirements.txt" in err
    assert list(tmp_path.iterdir()) == []


def test_onnxruntime_engine_needs_an_onnx_file(ner_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("Angela Merkel met Emmanuel Macron in Paris .\n", encoding="utf-8")
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(tmp_path / "in.txt"),
                     "--engine", "onnxruntime", "--checkpoint_path", str(ner_run / "checkpoint_40.mdl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--tgt-fmt onnx" in err


def test_int8_engine_tags_almost_as_the_float_engine(ner_run, onnx_export, tmp_path):
    sentences = raw_sentences(DATA / "ner" / "test.tsv") + raw_sentences(DATA / "ner" / "train.tsv")
    (tmp_path / "in.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    float_records = predicted(ner_run, tmp_path, "--engine", "onnxruntime", "--checkpoint_path", str(onnx_export))
    int8_records = predicted(ner_run, tmp_path, "--engine", "onnxruntime", "--quantize", "int8",
                             "--checkpoint_path", str(onnx_export))
    tags = [[tag for record in records for tag in record["tags"]] for records in (float_records, int8_records)]
    assert len(tags[0]) == len(tags[1]) >= 500
    assert sum(a == b for a, b in zip(*tags)) / len(tags[0]) >= 0.95


def test_int8_engine_needs_the_export_folder(ner_run, onnx_export, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("Angela Merkel met Emmanuel Macron in Paris .\n", encoding="utf-8")
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(tmp_path / "in.txt"),
                     "--engine", "onnxruntime", "--quantize", "int8", "--checkpoint_path",
                     str(onnx_export / "model.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "model_int8.onnx" in err


@pytest.mark.parametrize("change", ["two ids swapped", "nine labels"])
def test_onnxruntime_engine_refuses_params_labels_other_than_the_exports(ner_run, onnx_export, tmp_path, capsys, change):
    """The graph's outputs are the export's labels: params naming them otherwise would tag every word wrongly."""
    label2id = json.loads((onnx_export / "label2id.json").read_text(encoding="utf-8"))
    if change == "two ids swapped":
        label2id["O"], label2id["B-PER"] = label2id["B-PER"], label2id["O"]
    else:
        kept = ["[PAD]", "B-LOC", "I-LOC", "B-PER", "I-PER", "O", "X", "[CLS]", "[SEP]"]
        label2id = {label: index for index, label in enumerate(kept)}
    (tmp_path / "labels.json").write_text(json.dumps(label2id), encoding="utf-8")
    params = yaml.safe_load((ner_run / "train_and_eval" / "params.yaml").read_text(encoding="utf-8"))
    params["eval_input"]["label_vocab_file"] = str(tmp_path / "labels.json")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "in.txt").write_text("Angela Merkel met Emmanuel Macron in Paris .\n", encoding="utf-8")
    code = run_main(["CPU", "--mode", "predict", "--params", str(tmp_path / "params.yaml"), "--input",
                     str(tmp_path / "in.txt"), "--engine", "onnxruntime", "--checkpoint_path", str(onnx_export)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1
    assert "differ from the ONNX export's" in captured.err


def test_the_onnx_folder_has_the_hugging_face_config_with_the_label_names(onnx_export):
    """optimum's ORTModelForTokenClassification infers the task and the labels from config.json."""
    config = json.loads((onnx_export / "config.json").read_text(encoding="utf-8"))
    label2id = json.loads((onnx_export / "label2id.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForTokenClassification"] and config["model_type"] == "bert"
    assert len(config["id2label"]) == len(label2id) == config["num_labels"]
    assert all(config["id2label"][str(index)] in (label, "O") for label, index in label2id.items())
