"""The model prediction runs: ``model.head``'s predictor around the checkpoint's weights, in the engine asked for.

Prediction needs the model (``model:`` section and a checkpoint), the WordPiece vocab
(``eval_input.vocab_file``) and the label vocab (``eval_input.label_vocab_file``, or ``label2id.json``
in ``eval_input.data_dir``); it never reads the CSV data itself, so it runs on any text. The
weights run as they were trained, quantized to int8 (:mod:`modelzoo.predict.int8`), or as the
exported ONNX graph in ONNX Runtime (:mod:`modelzoo.predict.onnx_engine`); the head's predictor
does the rest the same way for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

import torch
from torch import nn

from modelzoo.checkpoint.training import checkpoint_to_evaluate, load_model_weights
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.heap import keep_freed_memory
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.vocab import check_label_count, labels_by_id
from modelzoo.heads import HeadSpec, head_spec
from modelzoo.heads.prediction import LinePredictor, PredictOptions
from modelzoo.params.params import Params
from modelzoo.predict.engine_choice import checkpoint_engine, choose_torch_engine
from modelzoo.predict.int8 import quantize_int8
from modelzoo.predict.onnx_engine import load_onnx_engine


def labels_of(params: Params, spec: HeadSpec, checkpoint: Path, engine: str) -> List[str]:
    """The label of every class id, checked against the model.

    An ONNX export carries its own ``label2id.json``, written with the graph: its outputs are those
    labels whatever the params say, so the engine uses them, and params naming other labels (or the
    same labels with other ids) are refused rather than read into wrong tags.
    """
    labels_file = params.eval_input.label_vocab_path()
    if engine == "onnxruntime":
        export_labels = (checkpoint if checkpoint.is_dir() else checkpoint.parent) / LABEL_VOCAB_FILE
        if not export_labels.is_file():
            raise DataFileError(export_labels, None, "the ONNX export's label vocab is missing (export it again)")
        label2id = spec.read_label_vocab(export_labels)
        if labels_file.is_file() and spec.read_label_vocab(labels_file) != label2id:
            raise DataFileError(
                labels_file, None, f"labels or ids differ from the ONNX export's {export_labels}, whose outputs they "
                "must name: point eval_input.label_vocab_file at the export's"
            )
        return labels_by_id(label2id)
    if not labels_file.is_file():
        raise DataFileError(labels_file, None, "label vocab not found (set eval_input.label_vocab_file)")
    label2id = spec.read_label_vocab(labels_file)
    check_label_count(labels_file, label2id, params.model.num_classes)
    return labels_by_id(label2id)


def torch_model(spec: HeadSpec, params: Params, checkpoint: Path, setup: DeviceSetup, strict: bool, quantize) -> Tuple[nn.Module, List[str]]:
    """The head's model with the checkpoint's weights (``quantize="int8"``: then quantized), and the load report."""
    if setup.is_cpu:
        keep_freed_memory()
    torch.manual_seed(params.runconfig.seed)
    model = spec.model_class(params.model)
    report = load_model_weights(model, checkpoint, strict)
    if quantize == "int8":
        model = quantize_int8(model.eval(), setup)
    return model, report


@dataclass
class LoadedModel:
    """A checkpoint loaded for prediction: the head, the model in its engine, its labels, its device.

    Predictors for several option sets (a server's per-request ``pretokenized``, say) share one.
    """

    spec: HeadSpec
    params: Params
    model: Any
    id_to_label: List[str]
    setup: DeviceSetup
    checkpoint: Path
    skip_padding: bool

    def predictor(self, options: PredictOptions) -> LinePredictor:
        self.spec.predictor_class.check_options(options)
        return self.spec.predictor_class(
            self.model, self.params.eval_input, self.params.model, self.id_to_label, self.setup, options, self.skip_padding
        )


def load_model(
    params: Params, device: torch.device, strict: bool = True, quantize: Optional[str] = None, engine: str = "auto"
) -> Tuple[LoadedModel, List[str]]:
    """``model.head``'s model with the checkpoint's weights in the engine asked for
    (:mod:`modelzoo.predict.engine_choice`), and the load report lines, the engine's among them.

    int8 computes the rest of the model in float32: that is the combination whose entity F1 was
    measured, and autocast would only move int8's float operations to bfloat16.
    """
    spec = head_spec(params.model.head)
    if params.eval_input.vocab_file is None:
        raise ParamsError("eval_input.vocab_file: prediction needs the WordPiece vocab the model was trained with")
    checkpoint = checkpoint_to_evaluate(params.runconfig, "--mode predict")
    engine = checkpoint_engine(engine, checkpoint)
    if engine not in ("auto", "torch") and not spec.onnx:
        raise ParamsError(f"--engine {engine}: model.head {spec.name} runs in torch only; use --engine torch")
    id_to_label = labels_of(params, spec, checkpoint, engine)
    setup = DeviceSetup(device, "float32" if quantize else params.runconfig.precision)
    model: Any
    if engine == "onnxruntime":
        model, report = load_onnx_engine(checkpoint, quantize, setup)
    else:
        model, report = torch_model(spec, params, checkpoint, setup, strict, quantize)
        if spec.onnx:
            model, choice = choose_torch_engine(model, engine, setup, quantize is not None)
        else:
            choice = f"engine torch: the only one model.head {spec.name} runs in"
        report.append(choice)
    return LoadedModel(spec, params, model, id_to_label, setup, checkpoint, setup.skip_padding), report


def build_predictor(
    params: Params, options: PredictOptions, device: torch.device, strict: bool = True
) -> Tuple[LinePredictor, List[str], Path]:
    """``model.head``'s predictor for ``options`` on ``device`` with the weights loaded, the load report
    lines, and the checkpoint they came from."""
    head_spec(params.model.head).predictor_class.check_options(options)
    loaded, report = load_model(params, device, strict, options.quantize, options.engine)
    return loaded.predictor(options), report, loaded.checkpoint
