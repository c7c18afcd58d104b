"""Cerebras checkpoints of releases 1.8 to 2.1, both ways, any pair in one step, and what we write for Cerebras.

Facts from Cerebras' model zoo (GitHub Cerebras/modelzoo; paths under
modelzoo/common/pytorch/model_utils/checkpoint_converters/):
- 1.8/1.9/2.0 share one naming; their converters (``Converter_BertForTokenClassification_HF_CS18``,
  bert_finetune.py) accept keys with or without the ``model.`` prefix of the deprecated
  PyTorchBaseModel and write them without it.
- 2.1 (``Converter_Bert_CS20_CS21``, bert.py, Release_2.1.0 e2a52f1ff248887253d36743a8d158244ed01472)
  renames ``embedding_layer.position_embeddings.weight`` to ``embedding_layer.position_embeddings.embed.weight``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from safetensors.torch import load_file

from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.checkpoint.naming import CS_FORMATS
from modelzoo.params.params import load_params
from modelzoo.tools.convert_checkpoint import main
from tests.hf_reference import SMALL_HF_CONFIG, small_hf_token_classifier

# The model: section Cerebras' config converter writes for a Hugging Face BertForTokenClassification,
# ConfigConverter_BertForTokenClassification_HF_CS18 (formats hf <-> cs-1.8, cs-1.9[, cs-2.0]) in
# Release_1.9.1 (70a5b0317694df4fcb5d762a332a0096364d3883) and ..._HF_CS21 (hf <-> cs-2.1) in
# Release_2.1.0 (e2a52f1ff248887253d36743a8d158244ed01472), bert_finetune.py + bert.py + base_converter.py:
# the rules map each HF key, then post_config_convert adds loss_weight, include_padding_in_loss
# (token classifier), pooler_nonlinearity, mlm_nonlinearity (1.8+), enable_vts, mixed_precision.
# The 2.1 token-classifier converter subclasses the 1.8 one, so the set is the same for both releases.
CEREBRAS_TOKEN_CLASSIFIER_KEYS = {
    "cs-1.9": {
        "vocab_size", "hidden_size", "num_hidden_layers", "num_heads", "filter_size", "encoder_nonlinearity",
        "dropout_rate", "attention_dropout_rate", "max_position_embeddings", "layer_norm_epsilon",
        "share_embedding_weights", "initializer_range", "position_embedding_type",
        "encoder_output_dropout_rate", "num_classes", "loss_weight", "include_padding_in_loss",
        "pooler_nonlinearity", "mlm_nonlinearity", "enable_vts", "mixed_precision",
    },
}
CEREBRAS_TOKEN_CLASSIFIER_KEYS["cs-2.1"] = CEREBRAS_TOKEN_CLASSIFIER_KEYS["cs-1.9"]
# A bare BERT (ConfigConverter_Bert_HF_CS18 / _HF_CS21, bert.py): no classifier keys, and the 2.1
# converter deletes enable_vts from its defaults.
CEREBRAS_BERT_KEYS = {
    "cs-1.9": CEREBRAS_TOKEN_CLASSIFIER_KEYS["cs-1.9"]
    - {"encoder_output_dropout_rate", "num_classes", "loss_weight", "include_padding_in_loss"},
}
CEREBRAS_BERT_KEYS["cs-2.1"] = CEREBRAS_BERT_KEYS["cs-1.9"] - {"enable_vts"}


@pytest.fixture()
def hf_dir(tmp_path) -> Path:
    folder = tmp_path / "hf"
    small_hf_token_classifier().save_pretrained(folder)
    return folder


def convert(capsys, source, src, tgt, output, *extra) -> tuple[int, str, str]:
    code = main(["convert", str(source), "--src-fmt", src, "--tgt-fmt", tgt, "--output-dir", str(output), *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def mdl(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.mdl", map_location="cpu", weights_only=True)["model"]


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]) for key in a)


def save_bare_bert(folder: Path) -> None:
    torch.manual_seed(0)
    config = transformers.BertConfig(**{k: v for k, v in SMALL_HF_CONFIG.items() if k != "num_labels"})
    transformers.BertModel(config).save_pretrained(folder)


def with_prefix(source: Path, target: Path, prefix_of) -> Path:
    """A copy of the cs folder ``source`` whose keys carry ``model.`` where ``prefix_of(index)`` says so."""
    target.mkdir()
    (target / "params.yaml").write_text((source / "params.yaml").read_text())
    state_dict = {("model." if prefix_of(i) else "") + key: value for i, (key, value) in enumerate(mdl(source).items())}
    torch.save({"model": state_dict}, target / "model.mdl")
    return target


def test_a_model_prefixed_cs19_checkpoint_converts_to_hf_bit_identically(hf_dir, tmp_path, capsys):
    assert convert(capsys, hf_dir, "hf", "cs-1.9", tmp_path / "cs")[0] == 0
    prefixed = with_prefix(tmp_path / "cs", tmp_path / "cs-prefixed", lambda index: True)
    assert all(key.startswith("model.bert.") or key.startswith("model.classifier.") for key in mdl(prefixed))
    assert convert(capsys, tmp_path / "cs", "cs-1.9", "hf", tmp_path / "plain-hf")[0] == 0
    assert convert(capsys, prefixed, "cs-1.9", "hf", tmp_path / "prefixed-hf")[0] == 0
    plain, from_prefixed = (tmp_path / name / "model.safetensors" for name in ("plain-hf", "prefixed-hf"))
    assert from_prefixed.read_bytes() == plain.read_bytes()
    assert same_tensors(load_file(plain), load_file(hf_dir / "model.safetensors"))


def test_mixed_prefixes_are_one_line_and_nothing_is_written(hf_dir, tmp_path, capsys):
    convert(capsys, hf_dir, "hf", "cs-2.0", tmp_path / "cs")
    mixed = with_prefix(tmp_path / "cs", tmp_path / "mixed", lambda index: index % 2 == 1)
    code, _, err = convert(capsys, mixed, "cs-2.0", "hf", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert "model.mdl: keys with and without the 'model.' prefix" in err and "model.bert." in err
    assert not (tmp_path / "out").exists()


def test_hf_to_cs21_and_back_is_bit_exact_and_uses_the_21_position_name(hf_dir, tmp_path, capsys):
    assert convert(capsys, hf_dir, "hf", "cs-2.1", tmp_path / "cs21")[0] == 0
    keys = set(mdl(tmp_path / "cs21"))
    assert "bert.embedding_layer.position_embeddings.embed.weight" in keys
    assert "bert.embedding_layer.position_embeddings.weight" not in keys
    assert convert(capsys, tmp_path / "cs21", "cs-2.1", "hf", tmp_path / "back")[0] == 0
    assert same_tensors(load_file(tmp_path / "back" / "model.safetensors"), load_file(hf_dir / "model.safetensors"))


def test_cs19_to_cs21_and_back_is_bit_exact_in_one_step_each_way(hf_dir, tmp_path, capsys):
    convert(capsys, hf_dir, "hf", "cs-1.9", tmp_path / "cs19")
    assert convert(capsys, tmp_path / "cs19", "cs-1.9", "cs-2.1", tmp_path / "cs21")[0] == 0
    assert convert(capsys, tmp_path / "cs21", "cs-2.1", "cs-1.9", tmp_path / "back")[0] == 0
    assert same_tensors(mdl(tmp_path / "back"), mdl(tmp_path / "cs19"))
    assert (tmp_path / "back" / "params.yaml").read_text() == (tmp_path / "cs19" / "params.yaml").read_text()
    renamed = {key.replace("position_embeddings.embed.", "position_embeddings.") for key in mdl(tmp_path / "cs21")}
    assert renamed == set(mdl(tmp_path / "cs19"))


@pytest.mark.parametrize("src, tgt", list(itertools.permutations(CS_FORMATS, 2)))
def test_any_pair_of_cerebras_releases_converts_directly(hf_dir, tmp_path, capsys, src, tgt):
    convert(capsys, hf_dir, "hf", src, tmp_path / "src")
    assert convert(capsys, tmp_path / "src", src, tgt, tmp_path / "tgt")[0] == 0
    source, target = mdl(tmp_path / "src"), mdl(tmp_path / "tgt")
    rename = {"cs-2.1": "position_embeddings.embed.weight"}
    position = {fmt: rename.get(fmt, "position_embeddings.weight") for fmt in (src, tgt)}
    assert {key.replace(position[src], position[tgt]) for key in source} == set(target)
    assert all(torch.equal(value, target[key.replace(position[src], position[tgt])]) for key, value in source.items())


@pytest.mark.parametrize("fmt", ["cs-1.9", "cs-2.1"])
def test_params_yaml_holds_exactly_the_model_section_cerebras_writes(hf_dir, tmp_path, capsys, fmt):
    convert(capsys, hf_dir, "hf", fmt, tmp_path / "cs")
    written = yaml.safe_load((tmp_path / "cs" / "params.yaml").read_text())
    assert list(written) == ["model"]
    section = written["model"]
    assert set(section) == CEREBRAS_TOKEN_CLASSIFIER_KEYS[fmt]
    assert None not in section.values()
    assert section["num_classes"] == 7 and section["num_heads"] == 4 and section["filter_size"] == 96
    assert section["encoder_output_dropout_rate"] == 0.1 and section["layer_norm_epsilon"] == 1e-12
    assert section["pooler_nonlinearity"] == "tanh" and section["mlm_nonlinearity"] == "gelu"
    assert section["position_embedding_type"] == "learned" and section["include_padding_in_loss"] is False
    ours = yaml.safe_load((tmp_path / "cs" / "modelzoo_model.yaml").read_text())["model"]
    assert ours == {"head": "token_classification", "max_sequences_per_pack": 1, "pad_token_id": 0}


@pytest.mark.parametrize("fmt", ["cs-1.9", "cs-2.1"])
def test_a_bare_bert_gets_the_bert_section_of_its_release(tmp_path, capsys, fmt):
    save_bare_bert(tmp_path / "base")
    assert convert(capsys, tmp_path / "base", "hf", fmt, tmp_path / "cs")[0] == 0
    section = yaml.safe_load((tmp_path / "cs" / "params.yaml").read_text())["model"]
    assert set(section) == CEREBRAS_BERT_KEYS[fmt]


def test_a_packed_sequence_classifier_keeps_its_packing_outside_the_cerebras_section(tmp_path, capsys):
    save_bare_bert(tmp_path / "base")
    convert(capsys, tmp_path / "base", "hf", "modelzoo", tmp_path / "sc", "--num-labels", 2, "--model", "bert-sequence-classification")
    params = yaml.safe_load((tmp_path / "sc" / "params.yaml").read_text())
    params["model"]["max_sequences_per_pack"] = 4
    (tmp_path / "sc" / "params.yaml").write_text(yaml.safe_dump(params))
    assert convert(capsys, tmp_path / "sc", "modelzoo", "cs-1.9", tmp_path / "cs")[0] == 0
    section = yaml.safe_load((tmp_path / "cs" / "params.yaml").read_text())["model"]
    assert {"task_dropout", "num_labels", "problem_type"} <= set(section) and section["num_labels"] == 2
    assert not {"num_classes", "max_sequences_per_pack", "head", "use_pooler"} & set(section)
    _, config_back = read_checkpoint(tmp_path / "cs", "cs-1.9")
    _, original = read_checkpoint(tmp_path / "sc", "modelzoo")
    assert config_back.max_sequences_per_pack == 4 and config_back.head == "sequence_classification"
    assert config_back.num_classes == original.num_classes


def test_a_cerebras_written_folder_without_our_side_file_reads(hf_dir, tmp_path, capsys):
    """A folder as Cerebras itself leaves it: its params.yaml only (the section also runs here as a model: section)."""
    convert(capsys, hf_dir, "hf", "cs-1.9", tmp_path / "cs")
    (tmp_path / "cs" / "modelzoo_model.yaml").unlink()
    _, config = read_checkpoint(tmp_path / "cs", "cs-1.9")
    assert config.head == "token_classification" and config.num_classes == 7 and config.num_heads == 4
    assert config.layer_norm_epsilon == 1e-12
    params = load_params(tmp_path / "cs" / "params.yaml")
    assert params.model.num_classes == 7 and params.model.layer_norm_epsilon == 1e-12
    # A section Cerebras' training wrote: epsilon as YAML 1.1 reads `1e-5` (a string), or left to its default
    section = yaml.safe_load((tmp_path / "cs" / "params.yaml").read_text())
    for written, expected in (("1e-5", 1e-5), (None, 1e-5)):
        section["model"].pop("layer_norm_epsilon", None)
        text = yaml.safe_dump(section) + (f"  layer_norm_epsilon: {written}\n" if written else "")
        (tmp_path / "cs" / "params.yaml").write_text(text)
        assert read_checkpoint(tmp_path / "cs", "cs-1.9")[1].layer_norm_epsilon == expected


def test_a_model_cerebras_cannot_express_is_refused_in_one_line(hf_dir, tmp_path, capsys):
    convert(capsys, hf_dir, "hf", "modelzoo", tmp_path / "mz")
    params = yaml.safe_load((tmp_path / "mz" / "params.yaml").read_text())
    params["model"]["encoder_nonlinearity"] = "gelu_pytorch_tanh"
    (tmp_path / "mz" / "params.yaml").write_text(yaml.safe_dump(params))
    code, _, err = convert(capsys, tmp_path / "mz", "modelzoo", "cs-2.0", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "Cerebras has no activation named 'gelu_pytorch_tanh'" in err
    assert not (tmp_path / "out").exists()


def test_list_shows_every_cerebras_release(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for fmt in ("cs-1.8", "cs-1.9", "cs-2.0", "cs-2.1"):
        assert f"  {fmt} " in out
