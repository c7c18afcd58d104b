"""Where ONNX Runtime's fused float32 graph spends its forward: the share of each op type, and of the
multiplies, on CoNLL-2003 test batched as ``--mode predict`` batches it.

    python benchmarks/ort_profile.py --params P.yaml --checkpoint_path CKPT [--split test] [--threads 2]

The graph is the one ``benchmarks/predict.py`` names ``ORT fp32 fused`` (our ONNX export, fused by
ONNX Runtime's BERT optimizer); the sentences go through predict's :class:`WordTagger` (length-sorted
batches under the ``eval_input`` token budget) with ONNX Runtime's profiler on, and each node's
kernel time is summed by op type. The multiplies are ``MatMul`` (and ``FusedMatMul``/``Gemm``) plus
the query/key/value projection inside each fused ``Attention`` node, which the profile does not
separate: that part is estimated at the ``MatMul`` nodes' own time per multiply-add (it is a
quarter of the encoder's linear work: 3 of 12 hidden x hidden products a token).

Why it is asked: with ``f`` the multiplies' share of ONNX Runtime's forward and ``r`` the speed of
our multiplies over theirs (``benchmarks/encoder_matmuls.py``), no work saved around the multiplies
can take our forward past ``r / f`` times theirs, or ``r / (f (1 - p))`` with ``p`` the padding's share
of their token slots (printed), which our CPU path skips and they compute.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host import describe, host_description  # noqa: E402

from data_processing.ner_raw import read_split_file  # noqa: E402
from modelzoo.checkpoint.onnx_export import ONNX_FILE, ONNX_FORMAT  # noqa: E402
from modelzoo.common.device import DeviceSetup  # noqa: E402
from modelzoo.data.conll2003 import conll2003_dir  # noqa: E402
from modelzoo.data.vocab import read_label_vocab  # noqa: E402
from modelzoo.heads.token_classification.tagger import WordTagger  # noqa: E402
from modelzoo.params.params import load_params  # noqa: E402
from modelzoo.predict.onnx_engine import OnnxTokenClassifier  # noqa: E402
from modelzoo.tools.convert_checkpoint import convert  # noqa: E402

SPLIT_FILES = {"dev": "valid.txt", "test": "test.txt"}
MULTIPLY_OPS = ("MatMul", "FusedMatMul", "Gemm")
LINEAR_PRODUCTS_PER_TOKEN = 12  # hidden^2 multiply-adds of one encoder layer's linears: q, k, v, output, 4 + 4 FFN
PROJECTION_PRODUCTS_PER_TOKEN = 3  # the q, k, v projections, inside ONNX Runtime's fused Attention node


def op_seconds(profile_file: str) -> Tuple[Dict[str, float], float]:
    """Kernel seconds per op type from an ONNX Runtime profile (Chrome trace JSON), and the seconds
    of its ``model_run`` events (the whole of each ``run`` call: kernels and what is between them)."""
    seconds: Counter = Counter()
    run_seconds = 0.0
    for event in json.loads(Path(profile_file).read_text(encoding="utf-8")):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            seconds[event["args"]["op_name"]] += event["dur"] / 1e6
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            run_seconds += event["dur"] / 1e6
    return dict(seconds), run_seconds


def multiply_share(seconds: Dict[str, float], total: float) -> Dict[str, float]:
    """The multiplies' share of ``total`` seconds, the Attention node's projections estimated at the
    MatMul nodes' rate (they do the other 9 of the 12 products a token)."""
    matmul = sum(seconds.get(op, 0.0) for op in MULTIPLY_OPS)
    other_products = LINEAR_PRODUCTS_PER_TOKEN - PROJECTION_PRODUCTS_PER_TOKEN
    projections = min(matmul * PROJECTION_PRODUCTS_PER_TOKEN / other_products, seconds.get("Attention", 0.0))
    return {"matmul_nodes": matmul / total, "attention_projections": projections / total,
            "multiplies": (matmul + projections) / total}


class CountingOnnxClassifier(OnnxTokenClassifier):
    """The ONNX engine, counting the token slots of its padded batches and the real tokens among them."""

    slots = real = 0

    def __call__(self, skip_padding: bool = False, **inputs: torch.Tensor):
        mask = inputs["attention_mask"]
        self.slots += mask.numel()
        self.real += int(mask.sum())
        return super().__call__(skip_padding, **inputs)


def profile(params_file: Path, checkpoint: Path, split: str, threads: int, work_dir: Path) -> Tuple[Dict[str, float], float, float]:
    """Kernel seconds per op type, run-call seconds, and the padding's share of the token slots."""
    params = load_params(str(params_file))
    inputs = params.eval_input
    export = work_dir / "onnx"
    convert(checkpoint, "modelzoo", ONNX_FORMAT, export, label_vocab=inputs.label_vocab_path(),
            vocab_file=Path(inputs.vocab_file))
    engine = CountingOnnxClassifier(export / ONNX_FILE)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(work_dir / "ort_profile")
    engine.session = onnxruntime.InferenceSession(str(export / ONNX_FILE), options, providers=["CPUExecutionProvider"])
    label2id = read_label_vocab(inputs.label_vocab_path())
    id_to_label = sorted(label2id, key=label2id.__getitem__)
    tagger = WordTagger(engine, inputs.vocab_file, id_to_label, inputs.max_sequence_length, inputs.batch_size,
                        DeviceSetup(torch.device("cpu")), skip_padding=False)
    sentences, _ = read_split_file(conll2003_dir() / SPLIT_FILES[split])
    tagger.tag([list(sentence.words) for sentence in sentences])
    return (*op_seconds(engine.session.end_profiling()), 1 - engine.real / engine.slots)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, required=True, help="the token classifier's params (eval_input)")
    parser.add_argument("--checkpoint_path", type=Path, required=True)
    parser.add_argument("--split", choices=sorted(SPLIT_FILES), default="test")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        seconds, run_seconds, padding = profile(args.params, args.checkpoint_path, args.split, args.threads, Path(folder))
    kernels = sum(seconds.values())
    print(describe(host_description()))
    print(f"onnxruntime {onnxruntime.__version__}, {args.threads} threads, float32, CoNLL-2003 {args.split}: "
          f"{kernels:.2f} s of kernel time in {run_seconds:.2f} s of run calls; padding {padding:.1%} of the token slots")
    for op, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {op:<28} {spent / kernels:6.1%}")
    for name, total in (("kernel time", kernels), ("run calls", run_seconds)):
        shares = multiply_share(seconds, total)
        print(f"multiplies, share of the {name}: {shares['multiplies']:.1%} ({shares['matmul_nodes']:.1%} MatMul nodes + "
              f"{shares['attention_projections']:.1%} estimated projections inside Attention)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
