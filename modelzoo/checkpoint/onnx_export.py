"""A token classifier for ONNX Runtime: ``model.onnx`` (float32) and ``model_int8.onnx``, one graph for any shape.

Which graph. ONNX Runtime runs BERT fastest when it can fuse attention, the embedding and skip
LayerNorms and bias-GELU into its own kernels, and those fusions recognise the graph that torch's
TorchScript exporter writes for Hugging Face's ``BertForTokenClassification`` with eager attention.
Our model's own export (fused QKV, SDPA, block-diagonal masks) matches none of the patterns, and
ONNX Runtime ran it markedly slower (docs/PREDICT.md, docs/MEASURED.md). So the export goes through the
Hugging Face model, which holds the same weights (the converter's ``hf`` naming) and computes the same
logits (tests/test_hf_parity.py; the export is checked against our model's logits too), and
``model.onnx`` is that graph after ``onnxruntime.transformers.optimizer.optimize_model``. The padded
path is exported: every inner shape follows the two dynamic axes (batch, sequence). The TorchScript
exporter is deprecated since torch 2.9 but is the one whose graph the fusions know.

int8. ``model_int8.onnx`` is ``onnxruntime.quantization.quantize_dynamic`` of the unfused graph (the
fused one quantizes to a slower graph) with the weights of ``--quantize int8``
(:mod:`modelzoo.predict.int8`): about 7 bits (``reduce_range``: -64..63) with one scale per output
channel, activations quantized per batch to all 8 bits, the classifier in float32. ONNX Runtime's
default, one scale per weight matrix, costs entity F1; this scheme keeps it (docs/PREDICT.md,
docs/MEASURED.md). It has one activation scale for every row, where ``--quantize int8`` gives the FFN's
outlier rows their own: ``DynamicQuantizeLinear`` has no such split.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Iterator, List

import torch

from modelzoo.bert import BertConfig
from modelzoo.checkpoint.files import require_empty_output_dir, write_checkpoint
from modelzoo.checkpoint.hf_export import (
    ModelFiles,
    hf_label_names,
    read_labels,
    require_labels,
    require_vocab,
    write_hf_config,
    write_shipped_files,
)
from modelzoo.checkpoint.model_card import gather_facts
from modelzoo.common.atomic import atomic_folder
from modelzoo.common.errors import CheckpointError, UserError
from modelzoo.heads import head_spec

ONNX_FORMAT = "onnx"
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model_int8.onnx"
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"


class OnnxMissingError(UserError):
    """The ONNX export needs packages that are not installed."""


def require_onnx_exporter() -> None:
    """Fail in one line, before anything is read or written, when ``onnx`` or ``onnxruntime`` is missing."""
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise OnnxMissingError(
                f"--tgt-fmt onnx needs the {package} package, which is not installed: pip install -r requirements.txt"
            ) from None


@contextlib.contextmanager
def _quiet(*logger_names: str) -> Iterator[None]:
    """Silence the warnings and log lines of the exporter and the quantizer (deprecation notices,
    "consider pre-processing"): notes on their own internals, none about this model; onnx.checker and
    the logits test are the checks that count."""
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def write_unfused_onnx(hf_folder: Path, path: Path) -> None:
    """The TorchScript export of the Hugging Face model in ``hf_folder`` (eager attention), checked by ``onnx.checker``."""
    import onnx
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(hf_folder, attn_implementation="eager").eval()
    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with _quiet("torch.onnx"):
        torch.onnx.export(
            model, (sample, sample.clone(), torch.zeros_like(sample)), str(path), input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def write_onnx_files(hf_folder: Path, config: BertConfig, folder: Path) -> None:
    """``model.onnx`` (fused float32) and ``model_int8.onnx`` in ``folder``, from the Hugging Face model in ``hf_folder``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    with tempfile.TemporaryDirectory(prefix="onnx-export-") as scratch:
        unfused = Path(scratch) / "unfused.onnx"
        write_unfused_onnx(hf_folder, unfused)
        fused = optimize_model(str(unfused), model_type="bert", num_heads=config.num_heads,
                               hidden_size=config.hidden_size)
        fused.save_model_to_file(str(folder / ONNX_FILE))
        with _quiet(""):  # quantize_dynamic logs through the root logger
            quantize_dynamic(str(unfused), str(folder / INT8_ONNX_FILE), weight_type=QuantType.QInt8,
                             per_channel=True, reduce_range=True, nodes_to_exclude=classifier_nodes(unfused))


def classifier_nodes(path: Path) -> List[str]:
    """The graph's nodes of the classifier layer, which int8 leaves in float32 as ``--quantize int8`` does:
    it is tiny, and its logits decide every tag."""
    import onnx

    return [node.name for node in onnx.load(str(path)).graph.node if node.name.startswith("/classifier/")]


def export_onnx(
    state_dict: Dict[str, torch.Tensor], config: BertConfig, source: Path, output_dir: Path, files: ModelFiles, command: str
) -> List[str]:
    """Write ``model.onnx`` and ``model_int8.onnx`` with the label vocab, tokenizer files and model card;
    returns the files written. ``state_dict`` is in ``hf`` naming."""
    require_onnx_exporter()
    if not head_spec(config.head).onnx or "classifier.weight" not in state_dict:
        raise CheckpointError(
            f"{source}: --tgt-fmt onnx exports token classifiers (model.head {config.head} is not one); "
            "export it with --tgt-fmt hf"
        )
    id_to_label = read_labels(require_labels(files, source), config)
    vocab = require_vocab(files, source)
    names = hf_label_names(id_to_label, config.head)
    facts = gather_facts(source, config.head, "onnx", command, id_to_label, list(names["id2label"].values()))
    require_empty_output_dir(output_dir)
    with tempfile.TemporaryDirectory(prefix="onnx-export-hf-") as scratch, atomic_folder(output_dir) as folder:
        hf_folder = Path(scratch) / "hf"
        write_checkpoint(state_dict, config, "hf", hf_folder)
        write_onnx_files(hf_folder, config, folder)
        write_hf_config(folder, config, names)
        write_shipped_files(folder, id_to_label, vocab, config, facts)
    return sorted(path.name for path in output_dir.iterdir())
