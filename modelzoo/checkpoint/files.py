"""Reading and writing BERT checkpoints as folders, one layout per format.

- ``hf``: ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin`` when reading).
- ``modelzoo``: ``model.mdl`` (``torch.save`` of ``{"model": state_dict}``, the file ``run.py``
  loads) + ``params.yaml`` holding the ``model:`` section. A training checkpoint
  (``checkpoint_N.mdl``) is read too: its params travel inside it.
- ``cs-1.9``: the same two files with Cerebras model-zoo 1.9 tensor names.

A folder is written under a temporary name beside the target and renamed only when complete, so a
failed conversion leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from modelzoo.bert.config import HF_CONFIG_NAMES, HF_SHARED_NAMES, BertConfig
from modelzoo.common.atomic import atomic_folder
from modelzoo.common.errors import CheckpointError, ParamsError

MODEL_FILE = "model.mdl"
PARAMS_FILE = "params.yaml"


def config_from_hf(hf_config: dict, source: Path) -> BertConfig:
    """Hugging Face ``config.json`` -> BertConfig (Cerebras names); unused HF keys are ignored."""
    if hf_config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{source}: position_embedding_type must be 'absolute'")
    values = {name: hf_config[name] for name in HF_SHARED_NAMES if name in hf_config}
    for hf_name, our_name in HF_CONFIG_NAMES.items():
        if hf_name in hf_config:
            values[our_name] = hf_config[hf_name]
    if "num_classes" not in values and "id2label" in hf_config:
        values["num_classes"] = len(hf_config["id2label"])
    try:
        return BertConfig.from_dict(values)
    except ParamsError as error:
        raise CheckpointError(f"{source}: {error}") from error


def config_to_hf(config: BertConfig, with_classifier: bool) -> dict:
    """BertConfig -> Hugging Face ``config.json`` contents for BertModel or BertForTokenClassification."""
    ours = asdict(config)
    hf_config = {"model_type": "bert", "position_embedding_type": "absolute"}
    hf_config["architectures"] = ["BertForTokenClassification" if with_classifier else "BertModel"]
    hf_config.update({name: ours[name] for name in HF_SHARED_NAMES})
    hf_config.update({hf_name: ours[our_name] for hf_name, our_name in HF_CONFIG_NAMES.items()})
    if not with_classifier:
        del hf_config["num_labels"]
    return hf_config


def read_checkpoint(path: Path, fmt: str) -> tuple[dict[str, torch.Tensor], BertConfig]:
    """Load ``(state_dict in fmt naming, config)`` from a folder (or, for mdl formats, a .mdl file)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if fmt == "hf":
        return _read_hf(path)
    model_file = path if path.is_file() else path / MODEL_FILE
    contents = load_mdl(model_file)
    if "model" not in contents:
        raise CheckpointError(f"{model_file}: no 'model' entry (keys: {', '.join(contents)})")
    model_params = (contents.get("params") or {}).get("model")
    if model_params is None:
        params_file = model_file.parent / PARAMS_FILE
        if not params_file.is_file():
            raise CheckpointError(f"{params_file}: missing (the model: section must sit beside {model_file.name})")
        model_params = (yaml.safe_load(params_file.read_text()) or {}).get("model")
    known = {f.name for f in fields(BertConfig)}
    try:
        config = BertConfig.from_dict({k: v for k, v in (model_params or {}).items() if k in known})
    except ParamsError as error:
        raise CheckpointError(f"{model_file}: {error}") from error
    return contents["model"], config


def load_mdl(model_file: Path) -> dict:
    """``torch.load`` a .mdl file with tensors and plain data only, naming the file on failure."""
    if not model_file.is_file():
        raise CheckpointError(f"{model_file}: no such file")
    try:
        return torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{model_file}: not a readable checkpoint ({_first_line(error)})") from error


def _read_hf(folder: Path) -> tuple[dict[str, torch.Tensor], BertConfig]:
    config_file = folder / "config.json"
    try:
        hf_config = json.loads(config_file.read_text())
    except FileNotFoundError as error:
        raise CheckpointError(f"{config_file}: missing") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_file}:{error.lineno}: invalid JSON ({error.msg})") from error
    weights = folder / "model.safetensors"
    try:
        if weights.is_file():
            state_dict = load_file(weights)
        elif (folder / "pytorch_model.bin").is_file():
            weights = folder / "pytorch_model.bin"
            state_dict = torch.load(weights, map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(f"{folder}: neither model.safetensors nor pytorch_model.bin")
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{weights}: not a readable weights file ({_first_line(error)})") from error
    return state_dict, config_from_hf(hf_config, config_file)


TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def write_checkpoint(
    state_dict: dict[str, torch.Tensor], config: BertConfig, fmt: str, output_dir: Path, source: Path | None = None
) -> None:
    """Write a checkpoint folder atomically (temporary sibling folder, renamed when complete).

    The tokenizer files of a ``source`` folder travel along, so that the weights and the vocabulary
    they were trained with stay together (configs point ``vocab_file`` at the converted folder).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise CheckpointError(f"{output_dir}: exists and is not empty; choose another --output-dir")
    with atomic_folder(output_dir) as folder:
        if fmt == "hf":
            with_classifier = any(key.startswith("classifier.") for key in state_dict)
            (folder / "config.json").write_text(json.dumps(config_to_hf(config, with_classifier), indent=2) + "\n")
            save_file({k: v.contiguous() for k, v in state_dict.items()}, folder / "model.safetensors")
        else:
            torch.save({"model": state_dict}, folder / MODEL_FILE)
            (folder / PARAMS_FILE).write_text(yaml.safe_dump({"model": asdict(config)}, sort_keys=False))
        source_folder = source if source is not None and source.is_dir() else None
        for name in TOKENIZER_FILES if source_folder else ():
            if (source_folder / name).is_file():
                shutil.copyfile(source_folder / name, folder / name)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
