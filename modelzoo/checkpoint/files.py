"""Reading and writing BERT checkpoints as folders, one layout per format.

- ``hf``: ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin`` when reading).
- ``modelzoo``: ``model.mdl`` (``torch.save`` of ``{"model": state_dict}``, the file ``run.py``
  loads) + ``params.yaml`` holding the ``model:`` section. A training checkpoint
  (``checkpoint_N.mdl``) is read too: its params travel inside it.
- ``cs-1.8``, ``cs-1.9``, ``cs-2.0``, ``cs-2.1``: ``model.mdl`` with Cerebras model-zoo tensor names
  (read with or without the ``model.`` prefix) + ``params.yaml`` holding the ``model:`` section as
  Cerebras' own converter writes it, so a Cerebras run reads it; our keys Cerebras has no place
  for (packing, head) go to ``modelzoo_model.yaml``, which no Cerebras run opens.

A folder is written under a temporary name beside the target and renamed only when complete, so a
failed conversion leaves nothing behind.
"""

from __future__ import annotations

import inspect
import json
import shutil
import zipfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
import yaml
from safetensors.torch import load_file, save_file

from modelzoo.bert.config import HF_CONFIG_NAMES, HF_SHARED_NAMES, BertConfig
from modelzoo.checkpoint.cerebras_model import from_cerebras, to_cerebras
from modelzoo.checkpoint.naming import CS_FORMATS, MixedPrefixError, strip_model_prefix
from modelzoo.common.atomic import atomic_folder
from modelzoo.common.errors import CheckpointError, ParamsError
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.heads import head_spec
from modelzoo.heads.spec import head_of_hf_architectures

MODEL_FILE = "model.mdl"
PARAMS_FILE = "params.yaml"
OURS_FILE = "modelzoo_model.yaml"  # beside a cs-* checkpoint: our model keys Cerebras has no place for


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
    spec = head_of_hf_architectures(hf_config.get("architectures", []))
    if spec is not None:
        values["head"] = spec.name
    try:
        return BertConfig.from_dict(values)
    except ParamsError as error:
        raise CheckpointError(f"{source}: {error}") from error


def config_to_hf(config: BertConfig, with_classifier: bool) -> dict:
    """BertConfig -> Hugging Face ``config.json`` contents for BertModel or BertForTokenClassification."""
    ours = asdict(config)
    hf_config = {"model_type": "bert", "position_embedding_type": "absolute"}
    hf_config["architectures"] = [head_spec(config.head).hf_architecture if with_classifier else "BertModel"]
    hf_config.update({name: ours[name] for name in HF_SHARED_NAMES})
    hf_config.update({hf_name: ours[our_name] for hf_name, our_name in HF_CONFIG_NAMES.items()})
    if not with_classifier:
        del hf_config["num_labels"]
    return hf_config


def read_checkpoint(path: Path, fmt: str) -> Tuple[Dict[str, torch.Tensor], BertConfig]:
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
    state_dict = contents["model"]
    if fmt in CS_FORMATS:
        try:
            state_dict = strip_model_prefix(state_dict)
        except MixedPrefixError as error:
            raise CheckpointError(f"{model_file}: {error}") from error
        ours_file = model_file.parent / OURS_FILE
        ours = (yaml.safe_load(ours_file.read_text()) or {}).get("model") if ours_file.is_file() else None
        model_params = from_cerebras(_model_section(model_file) or {}, ours, model_file.parent / PARAMS_FILE)
    else:
        model_params = (contents.get("params") or {}).get("model") or _model_section(model_file)
    known = {f.name for f in fields(BertConfig)}
    try:
        config = BertConfig.from_dict({k: v for k, v in (model_params or {}).items() if k in known})
    except ParamsError as error:
        raise CheckpointError(f"{model_file}: {error}") from error
    return state_dict, config


def _model_section(model_file: Path) -> Optional[dict]:
    params_file = model_file.parent / PARAMS_FILE
    if not params_file.is_file():
        raise CheckpointError(f"{params_file}: missing (the model: section must sit beside {model_file.name})")
    return (yaml.safe_load(params_file.read_text()) or {}).get("model")


_TORCH_LOAD_MAPS = "mmap" in inspect.signature(torch.load).parameters


def load_mdl(model_file: Path, mmap: bool = False) -> dict:
    """``torch.load`` a .mdl file with tensors and plain data only, naming the file on failure.

    ``mmap``: map the tensors instead of reading them, for a caller that wants only the plain data
    or some of the tensors (where torch has it: torch 2.0, poptorch 3.3/3.4's, reads them).
    """
    if not model_file.is_file():
        raise CheckpointError(f"{model_file}: no such file")
    mapped = {"mmap": True} if mmap and _TORCH_LOAD_MAPS else {}
    try:
        return torch.load(model_file, map_location="cpu", weights_only=True, **mapped)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise _not_loadable(model_file) from error


def _not_loadable(path: Path) -> CheckpointError:
    """The refusal of a file ``torch.load(weights_only=True)`` rejects, without torch's advice to load it unsafely."""
    if zipfile.is_zipfile(path):
        reason = "it holds Python objects besides tensors and plain values, and loading those could run code"
    else:
        reason = "truncated, or not a file written by torch.save"
    return CheckpointError(f"{path}: not a checkpoint this project can load safely ({reason})")


def _read_hf(folder: Path) -> Tuple[Dict[str, torch.Tensor], BertConfig]:
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


def require_empty_output_dir(output_dir: Path) -> None:
    """Refuse an output folder that holds files, or that is a file, before anything is read or written."""
    if output_dir.exists() and not output_dir.is_dir():
        raise CheckpointError(f"{output_dir}: is a file, not a folder; choose another --output-dir")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise CheckpointError(f"{output_dir}: exists and is not empty; choose another --output-dir")


def write_checkpoint(
    state_dict: Dict[str, torch.Tensor],
    config: BertConfig,
    fmt: str,
    output_dir: Path,
    source: Optional[Path] = None,
    add_files: Optional[Callable[[Path], None]] = None,
) -> None:
    """Write a checkpoint folder atomically (temporary sibling folder, renamed when complete).

    The tokenizer files of a ``source`` folder travel along, so that the weights and the vocabulary
    they were trained with stay together (configs point ``vocab_file`` at the converted folder).
    ``add_files(folder)`` writes further files (labels, tokenizer, model card) before the rename.
    """
    output_dir = Path(output_dir)
    require_empty_output_dir(output_dir)
    with atomic_folder(output_dir) as folder:
        if fmt == "hf":
            with_classifier = any(key.startswith("classifier.") for key in state_dict)
            (folder / "config.json").write_text(json.dumps(config_to_hf(config, with_classifier), indent=2) + "\n")
            # format "pt", as save_pretrained writes it: transformers 4 (the IPU environment's) loads
            # nothing else
            save_file({k: v.contiguous() for k, v in state_dict.items()}, folder / "model.safetensors",
                      metadata={"format": "pt"})
        elif fmt in CS_FORMATS:
            with_classifier = any(key.startswith("classifier.") for key in state_dict)
            section, ours = to_cerebras(config, with_classifier, fmt)
            torch.save({"model": state_dict}, folder / MODEL_FILE)
            (folder / PARAMS_FILE).write_text(yaml.safe_dump({"model": section}, sort_keys=False))
            (folder / OURS_FILE).write_text(yaml.safe_dump({"model": ours}, sort_keys=False))
        else:
            torch.save({"model": state_dict}, folder / MODEL_FILE)
            (folder / PARAMS_FILE).write_text(yaml.safe_dump({"model": asdict(config)}, sort_keys=False))
        source_folder = source if source is not None and source.is_dir() else None
        for name in (*TOKENIZER_FILES, LABEL_VOCAB_FILE) if source_folder else ():
            if (source_folder / name).is_file():
                shutil.copyfile(source_folder / name, folder / name)
        if add_files is not None:
            add_files(folder)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
