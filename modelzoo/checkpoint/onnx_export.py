"""A token classifier as ``model.onnx`` for ONNX Runtime: our own model's padded path, one graph for any shape.

The padded path (``skip_padding`` off) is exported because skipping the padding gathers a
data-dependent number of tokens, which would make the graph's inner shapes data-dependent; with
padding every shape follows the two dynamic axes (batch, sequence). The exporter is torch's
``torch.export``-based one (``dynamo=True``): the TorchScript exporter is deprecated since torch 2.9.
Opset 18 is the exporter's own (a lower one goes through a version converter); the file is checked
with ``onnx.checker`` before it is renamed into place.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Dict, List

import torch
from torch import nn

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.checkpoint.files import require_empty_output_dir
from modelzoo.checkpoint.hf_export import (
    ModelFiles,
    hf_label_names,
    read_labels,
    require_labels,
    require_vocab,
    write_shipped_files,
)
from modelzoo.checkpoint.model_card import gather_facts
from modelzoo.common.atomic import atomic_folder
from modelzoo.common.errors import CheckpointError, UserError

ONNX_FORMAT = "onnx"
ONNX_FILE = "model.onnx"
OPSET = 18
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"


class OnnxMissingError(UserError):
    """The ONNX export needs packages that are not installed."""


def require_onnx_exporter() -> None:
    """Fail in one line, before anything is read or written, when ``onnx`` or ``onnxscript`` is missing."""
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise OnnxMissingError(
                f"--tgt-fmt onnx needs the {package} package, which is not installed: pip install -r requirements.txt"
            ) from None


class PaddedLogits(nn.Module):
    """The token classifier as the three named inputs in, logits out: the graph's signature."""

    def __init__(self, model: BertForTokenClassification) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits



def write_onnx(model: BertForTokenClassification, path: Path) -> None:
    """Export ``model`` to ``path`` (inside the caller's temporary folder), with dynamic batch and sequence axes."""
    import onnx

    wrapper = PaddedLogits(model).eval()
    # Two rows of eight (torch.export specialises axes of size 0 or 1), the second padded, each input
    # its own tensor: the exporter treats one tensor passed twice as one input.
    input_ids = torch.arange(16, dtype=torch.int64).reshape(2, 8) % model.config.vocab_size
    attention_mask = torch.ones((2, 8), dtype=torch.int64)
    attention_mask[1, 5:] = 0
    sample = (input_ids, attention_mask, torch.zeros((2, 8), dtype=torch.int64))
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    axes = {name: {0: batch, 1: sequence} for name in INPUT_NAMES}
    # The exporter's warnings and log lines are notes on its own internals (torchvision absent,
    # deprecated pytree names), none about this model; onnx.checker below is the check that counts.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, sample, dynamo=True, opset_version=OPSET, verbose=False,
                input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME], dynamic_shapes=axes,
            )
    finally:
        exporter_log.setLevel(level)
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)


def export_onnx(
    state_dict: Dict[str, torch.Tensor], config: BertConfig, source: Path, output_dir: Path, files: ModelFiles, command: str
) -> List[str]:
    """Write ``model.onnx`` with the label vocab, tokenizer files and model card; returns the files written.

    ``state_dict`` is in this project's naming.
    """
    require_onnx_exporter()
    if config.head != "token_classification" or "classifier.weight" not in state_dict:
        raise CheckpointError(
            f"{source}: --tgt-fmt onnx exports token classifiers; export the sequence classifier with --tgt-fmt hf"
        )
    id_to_label = read_labels(require_labels(files, source), config)
    vocab = require_vocab(files, source)
    exported_names = list(hf_label_names(id_to_label, config.head)["id2label"].values())
    facts = gather_facts(source, config.head, "onnx", command, id_to_label, exported_names)
    model = BertForTokenClassification(config)
    model.load_state_dict(state_dict)
    require_empty_output_dir(output_dir)
    with atomic_folder(output_dir) as folder:
        write_onnx(model, folder / ONNX_FILE)
        write_shipped_files(folder, id_to_label, vocab, config, facts)
    return sorted(path.name for path in output_dir.iterdir())
