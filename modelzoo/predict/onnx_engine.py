"""``--mode predict --engine onnxruntime``: the exported ``model.onnx`` (``--quantize int8``: ``model_int8.onnx``)
where the torch model stood.

The engine only replaces the forward pass: words, windows, batches, spans and outputs are the
tagger's, so both engines tag through the same code and differ only in the arithmetic. The graph is
the padded path, so the padding the tagger adds is computed and ignored, as in evaluation. The
session runs on as many threads as torch (``OMP_NUM_THREADS``, else torch's default), where ONNX
Runtime's own default is every core, so that one setting governs both engines; and its idle threads
sleep instead of spinning, as torch's do in prediction (:mod:`modelzoo.common.openmp`).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from modelzoo.bert.heads import ModelOutput
from modelzoo.checkpoint.onnx_export import INPUT_NAMES, INT8_ONNX_FILE, ONNX_FILE, OUTPUT_NAME
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import CheckpointError, ParamsError, UserError


class OnnxRuntimeMissingError(UserError):
    """--engine onnxruntime without the onnxruntime package."""


def onnx_model_file(path: Path, quantize: Optional[str] = None) -> Path:
    """``path`` if it is a file, else the export folder's ``model.onnx`` (``quantize="int8"``: ``model_int8.onnx``)."""
    path = Path(path)
    if quantize is not None and not path.is_dir():
        raise ParamsError(
            f"--quantize {quantize} --engine onnxruntime takes the export folder (it holds {INT8_ONNX_FILE}), "
            f"not the file {path}"
        )
    model_file = path / (INT8_ONNX_FILE if quantize == "int8" else ONNX_FILE) if path.is_dir() else path
    if not model_file.is_file() or model_file.suffix != ".onnx":
        raise CheckpointError(
            f"{model_file}: no ONNX model (--engine onnxruntime takes --checkpoint_path DIR or DIR/{ONNX_FILE} "
            "from convert_checkpoint --tgt-fmt onnx)"
        )
    return model_file


class OnnxTokenClassifier:
    """An ONNX Runtime session that answers like :class:`~modelzoo.bert.BertForTokenClassification` (logits only)."""

    def __init__(self, model_file: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise OnnxRuntimeMissingError(
                "--engine onnxruntime needs the onnxruntime package, which is not installed: "
                "pip install -r requirements.txt"
            ) from None
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise CheckpointError(f"{model_file}: not a readable ONNX model ({str(error).splitlines()[0]})") from error
        names = tuple(sorted(item.name for item in self.session.get_inputs()))
        if names != tuple(sorted(INPUT_NAMES)):
            raise CheckpointError(f"{model_file}: inputs {', '.join(names)}; expected {', '.join(INPUT_NAMES)}")

    def to(self, device: torch.device) -> OnnxTokenClassifier:
        """The session is ONNX Runtime's CPU one: the model stays where it is (checked when loaded)."""
        return self

    def eval(self) -> OnnxTokenClassifier:
        return self

    def __call__(self, skip_padding: bool = False, **inputs: torch.Tensor) -> ModelOutput:
        """Logits of one padded batch; ``skip_padding`` is accepted and means nothing to a padded graph."""
        feeds = {name: inputs[name].cpu().numpy().astype(np.int64) for name in INPUT_NAMES}
        (logits,) = self.session.run([OUTPUT_NAME], feeds)
        return ModelOutput(torch.from_numpy(logits))


def load_onnx_engine(checkpoint: Path, quantize: Optional[str], setup: DeviceSetup) -> Tuple[OnnxTokenClassifier, List[str]]:
    """The engine for ``--checkpoint_path`` (a ``.onnx`` file or the export folder), and its report line."""
    if not setup.is_cpu:
        raise ParamsError("--engine onnxruntime runs on CPU: use run.py CPU")
    model_file = onnx_model_file(checkpoint, quantize)
    return OnnxTokenClassifier(model_file), [f"loaded {model_file} into onnxruntime"]
