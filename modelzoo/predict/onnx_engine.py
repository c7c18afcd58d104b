"""``--mode predict --engine onnxruntime``: the exported ``model.onnx`` where the torch model stood.

The engine only replaces the forward pass: words, windows, batches, spans and outputs are the
tagger's, so both engines tag through the same code and differ only in the arithmetic. The graph is
our model's padded path, so the padding the tagger adds is computed and ignored, as in evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from modelzoo.bert.heads import ModelOutput
from modelzoo.checkpoint.onnx_export import INPUT_NAMES, ONNX_FILE, OUTPUT_NAME
from modelzoo.common.errors import CheckpointError, ParamsError, UserError

ENGINES = ("torch", "onnxruntime")


class OnnxRuntimeMissingError(UserError):
    """--engine onnxruntime without the onnxruntime package."""


def onnx_model_file(path: Path) -> Path:
    """``path`` if it is a file, else ``model.onnx`` inside the folder ``path`` (an export's output folder)."""
    path = Path(path)
    model_file = path / ONNX_FILE if path.is_dir() else path
    if not model_file.is_file() or model_file.suffix != ".onnx":
        raise CheckpointError(
            f"{model_file}: no ONNX model (--engine onnxruntime takes --checkpoint_path DIR/{ONNX_FILE} "
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
            self.session = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise CheckpointError(f"{model_file}: not a readable ONNX model ({str(error).splitlines()[0]})") from error
        names = tuple(sorted(item.name for item in self.session.get_inputs()))
        if names != tuple(sorted(INPUT_NAMES)):
            raise CheckpointError(f"{model_file}: inputs {', '.join(names)}; expected {', '.join(INPUT_NAMES)}")

    def to(self, device: torch.device) -> OnnxTokenClassifier:
        if device.type != "cpu":
            raise ParamsError("--engine onnxruntime runs on CPU: use run.py CPU")
        return self

    def eval(self) -> OnnxTokenClassifier:
        return self

    def __call__(self, skip_padding: bool = False, **inputs: torch.Tensor) -> ModelOutput:
        """Logits of one padded batch; ``skip_padding`` is accepted and means nothing to a padded graph."""
        feeds = {name: inputs[name].cpu().numpy().astype(np.int64) for name in INPUT_NAMES}
        (logits,) = self.session.run([OUTPUT_NAME], feeds)
        return ModelOutput(torch.from_numpy(logits))


def load_onnx_engine(checkpoint: Path, quantize: Optional[str]) -> Tuple[OnnxTokenClassifier, List[str]]:
    """The engine for ``--checkpoint_path`` (a ``.onnx`` file or the export folder), and its report line."""
    if quantize is not None:
        raise ParamsError("--quantize: for the torch engine (an ONNX model is quantized with onnxruntime's own tools)")
    model_file = onnx_model_file(checkpoint)
    return OnnxTokenClassifier(model_file), [f"loaded {model_file} into onnxruntime"]
