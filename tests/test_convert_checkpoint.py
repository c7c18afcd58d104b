"""Checkpoint conversion: bit-exact round trips, a fresh head, and one clear error line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from modelzoo.bert import PackedBertForSequenceClassification
from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.tools.convert_checkpoint import main
from tests.hf_reference import SMALL_HF_CONFIG, small_hf_token_classifier


@pytest.fixture()
def hf_dir(tmp_path) -> Path:
    """A small HF token classifier saved as a BertModel would be: keys without ``bert.``, with position_ids."""
    model = small_hf_token_classifier()
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    return folder


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("middle", ["modelzoo", "cs-1.9"])
def test_round_trip_through_another_format_is_bit_exact(hf_dir, tmp_path, capsys, middle):
    assert _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", middle, "--output-dir", tmp_path / "mid")[0] == 0
    assert _run(capsys, "convert", tmp_path / "mid", "--src-fmt", middle, "--tgt-fmt", "hf", "--output-dir", tmp_path / "back")[0] == 0
    original, returned = load_file(hf_dir / "model.safetensors"), load_file(tmp_path / "back" / "model.safetensors")
    assert set(returned) == set(original)
    assert all(torch.equal(returned[key], original[key]) for key in original)
    assert json.loads((tmp_path / "back" / "config.json").read_text())["num_labels"] == 7
    code, out, _ = _run(capsys, "diff", hf_dir, tmp_path / "back")
    assert code == 0 and out.strip().endswith("identical")


def test_cerebras_names_follow_the_design_table(hf_dir, tmp_path, capsys):
    _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "cs-1.9", "--output-dir", tmp_path / "cs")
    keys = set(torch.load(tmp_path / "cs" / "model.mdl", weights_only=True)["model"])
    assert "bert.embedding_layer.segment_embeddings.weight" in keys
    assert "bert.embed_ln_f.weight" in keys
    assert "bert.transformer_encoder.layers.1.self_attn.proj_k_dense_layer.bias" in keys
    assert "bert.transformer_encoder.layers.0.ffn.ffn.1.linear_layer.weight" in keys
    assert "classifier.weight" in keys


def test_base_model_with_old_layernorm_names_becomes_a_token_classifier(tmp_path, capsys):
    """TF-era gamma/beta names and a bare BertModel (no ``bert.``): --num-labels adds a fresh head."""
    model = small_hf_token_classifier()
    base = {k.removeprefix("bert."): v for k, v in model.state_dict().items() if not k.startswith("classifier")}
    base = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in base.items()}
    folder = tmp_path / "base"
    model.save_pretrained(folder)
    save_file(base, folder / "model.safetensors")
    code, out, _ = _run(capsys, "convert", folder, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "tc", "--num-labels", 3)
    assert code == 0 and "fresh classifier with 3 labels" in out
    state_dict, config = read_checkpoint(tmp_path / "tc", "modelzoo")
    assert config.num_classes == 3 and state_dict["classifier.weight"].shape == (3, 48)
    assert torch.equal(state_dict["bert.embeddings.layer_norm.weight"], base["embeddings.LayerNorm.gamma"])


def test_truncated_weights_file_is_one_clear_error_and_leaves_nothing(hf_dir, tmp_path, capsys):
    weights = hf_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    code, out, err = _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1 and "model.safetensors: not a readable weights file" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_an_output_dir_that_is_a_file_is_one_error_before_anything_is_read(hf_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    code, _, err = _run(capsys, "convert", tmp_path / "missing", "--src-fmt", "hf", "--tgt-fmt", "cs-2.1",
                        "--output-dir", tmp_path / "a_file")
    assert code == 2 and err == f"error: {tmp_path / 'a_file'}: is a file, not a folder; choose another --output-dir\n"
    assert (tmp_path / "a_file").read_text() == "mine"


def test_missing_key_is_named(hf_dir, tmp_path, capsys):
    state_dict = load_file(hf_dir / "model.safetensors")
    del state_dict["bert.encoder.layer.1.output.dense.bias"]
    save_file(state_dict, hf_dir / "model.safetensors")
    code, _, err = _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "cs-1.9", "--output-dir", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1 and "missing key(s): bert.encoder.layer.1.output.dense.bias" in err
    assert not (tmp_path / "out").exists()


def test_wrong_shape_is_named(hf_dir, tmp_path, capsys):
    state_dict = load_file(hf_dir / "model.safetensors")
    state_dict["bert.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(95, 48)
    save_file(state_dict, hf_dir / "model.safetensors")
    code, _, err = _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1
    assert "bert.encoder.layer.0.intermediate.dense.weight (95, 48) (expected (96, 48))" in err
    assert not (tmp_path / "out").exists()


def test_unexpected_key_stops_unless_dropped_on_purpose(hf_dir, tmp_path, capsys):
    state_dict = load_file(hf_dir / "model.safetensors")
    state_dict["cls.predictions.bias"] = torch.zeros(120)
    save_file(state_dict, hf_dir / "model.safetensors")
    code, _, err = _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "a")
    assert code != 0 and "cls.predictions.bias" in err and not (tmp_path / "a").exists()
    code, out, _ = _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "b", "--drop-unmatched-keys")
    assert code == 0 and "dropped unmatched key cls.predictions.bias" in out


def test_diff_reports_a_changed_tensor(hf_dir, tmp_path, capsys):
    _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "mz")
    contents = torch.load(tmp_path / "mz" / "model.mdl", weights_only=True)
    contents["model"]["classifier.bias"] = contents["model"]["classifier.bias"] + 0.5
    torch.save(contents, tmp_path / "mz" / "model.mdl")
    code, out, _ = _run(capsys, "diff", hf_dir, tmp_path / "mz")
    assert code == 1 and "classifier.bias: max |diff| 5.000e-01" in out


def test_tokenizer_files_travel_with_the_weights(hf_dir, tmp_path, capsys):
    (hf_dir / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    _run(capsys, "convert", hf_dir, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir", tmp_path / "mz")
    assert (tmp_path / "mz" / "vocab.txt").read_text() == "[PAD]\n[UNK]\nhello\n"


def test_sequence_classifier_keeps_the_pretrained_pooler(tmp_path, capsys):
    """--model bert-sequence-classification: pooler kept, fresh head, a config run.py builds the packed classifier from."""
    torch.manual_seed(0)
    base = transformers.BertModel(transformers.BertConfig(**{k: v for k, v in SMALL_HF_CONFIG.items() if k != "num_labels"}))
    base.save_pretrained(tmp_path / "base")
    code, out, _ = _run(capsys, "convert", tmp_path / "base", "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir",
                        tmp_path / "sc", "--num-labels", 2, "--model", "bert-sequence-classification")
    assert code == 0 and "fresh classifier with 2 labels" in out and "dropped" not in out
    state_dict, config = read_checkpoint(tmp_path / "sc", "modelzoo")
    assert config.head == "sequence_classification" and config.num_classes == 2
    assert torch.equal(state_dict["bert.pooler.dense.weight"], base.pooler.dense.weight)
    PackedBertForSequenceClassification(config).load_state_dict(state_dict)  # strict: every key in place
    code, _, err = _run(capsys, "convert", tmp_path / "base", "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir",
                        tmp_path / "none", "--model", "bert-sequence-classification")
    assert code != 0 and "give --num-labels" in err
