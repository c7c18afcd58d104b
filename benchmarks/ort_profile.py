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
can take our forward past ``r / f`` times theirs (less the padding we skip and they compute).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List

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


def op_seconds(profile_file: str) -> Dict[str, float]:
    """Kernel seconds per op type from an ONNX Runtime profile (Chrome trace JSON)."""
    seconds: Counter = Counter()
    for event in json.loads(Path(profile_file).read_text(encoding="utf-8")):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            seconds[event["args"]["op_name"]] += event["dur"] / 1e6
    return dict(seconds)


def multiply_share(seconds: Dict[str, float]) -> Dict[str, float]:
    """The multiplies' share of the kernel time, the Attention node's projections estimated at the
    MatMul nodes' rate (they do the other 9 of the 12 products a token)."""
    total = sum(seconds.values())
    matmul = sum(seconds.get(op, 0.0) for op in MULTIPLY_OPS)
    other_products = LINEAR_PRODUCTS_PER_TOKEN - PROJECTION_PRODUCTS_PER_TOKEN
    projections = min(matmul * PROJECTION_PRODUCTS_PER_TOKEN / other_products, seconds.get("Attention", 0.0))
    return {"matmul_nodes": matmul / total, "attention_projections": projections / total,
            "multiplies": (matmul + projections) / total}


def profile(params_file: Path, checkpoint: Path, split: str, threads: int, work_dir: Path) -> Dict[str, float]:
    params = load_params(str(params_file))
    inputs = params.eval_input
    export = work_dir / "onnx"
    convert(checkpoint, "modelzoo", ONNX_FORMAT, export, label_vocab=inputs.label_vocab_path(),
            vocab_file=Path(inputs.vocab_file))
    engine = OnnxTokenClassifier(export / ONNX_FILE)
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
    return op_seconds(engine.session.end_profiling())


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, required=True, help="the token classifier's params (eval_input)")
    parser.add_argument("--checkpoint_path", type=Path, required=True)
    parser.add_argument("--split", choices=sorted(SPLIT_FILES), default="test")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        seconds = profile(args.params, args.checkpoint_path, args.split, args.threads, Path(folder))
    total = sum(seconds.values())
    print(describe(host_description()))
    print(f"onnxruntime {onnxruntime.__version__}, {args.threads} threads, float32, CoNLL-2003 {args.split}: "
          f"{total:.2f} s of kernel time")
    for op, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {op:<28} {spent / total:6.1%}")
    shares = multiply_share(seconds)
    print(f"multiplies: {shares['multiplies']:.1%} ({shares['matmul_nodes']:.1%} MatMul nodes + "
          f"{shares['attention_projections']:.1%} estimated projections inside Attention)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
