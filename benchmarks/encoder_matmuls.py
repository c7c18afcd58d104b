"""The encoder's float32 multiplies alone: torch's linear (MKL's SGEMM on x86) against ONNX Runtime's
(its own MLAS kernels), on the shapes one encoder layer multiplies.

    python benchmarks/encoder_matmuls.py [--rows 1024 4096] [--hidden 384] [--repeats 7]

Prediction's float32 speed against ONNX Runtime's fused graph is mostly these multiplies; this says
whether the two libraries' kernels differ on this CPU before anything else is blamed. Each shape is
``[rows, in] x [in, out] + bias`` as the layer runs it (query/key/value/output: hidden -> hidden;
intermediate: hidden -> 4 hidden; output: 4 hidden -> hidden), same weights and inputs both sides,
on the same number of threads, timed alternately; medians of ``--repeats`` (each the mean of
several calls) and GFLOP/s; the ratio is torch over ONNX Runtime (above 1: torch faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np
import onnx
import onnxruntime
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host import describe, host_description  # noqa: E402


def linear_graph(weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """``Y = X W^T + b`` as one Gemm (transB), the node ONNX Runtime's optimizer leaves a linear as."""
    rows = "rows"
    node = helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)
    graph = helper.make_graph(
        [node], "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [rows, weight.shape[1]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [rows, weight.shape[0]])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def seconds_per_call(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def compare(rows: int, inputs: int, outputs: int, threads: int, repeats: int, folder: Path) -> Tuple[float, float]:
    """Median seconds of one multiply: (torch, ONNX Runtime)."""
    generator = np.random.default_rng(0)
    x = generator.standard_normal((rows, inputs), dtype=np.float32)
    weight = (generator.standard_normal((outputs, inputs), dtype=np.float32) * 0.02).astype(np.float32)
    bias = generator.standard_normal(outputs, dtype=np.float32)
    path = folder / f"linear_{inputs}_{outputs}.onnx"
    onnx.save(linear_graph(weight, bias), str(path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tx, tw, tb = (torch.from_numpy(array) for array in (x, weight, bias))
    with torch.inference_mode():
        ours = torch.nn.functional.linear(tx, tw, tb).numpy()
        theirs = session.run(None, {"X": x})[0]
        assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-4), "the two multiplies differ"
        flop = 2 * rows * inputs * outputs
        calls = min(200, max(3, int(2e10 / flop)))  # about 20 GFLOP a timing: a fifth of a second at 100 GFLOP/s
        torch_times: List[float] = []
        ort_times: List[float] = []
        for _ in range(repeats):
            torch_times.append(seconds_per_call(lambda: torch.nn.functional.linear(tx, tw, tb), calls))
            ort_times.append(seconds_per_call(lambda: session.run(None, {"X": x}), calls))
    return statistics.median(torch_times), statistics.median(ort_times)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1024, 4096], help="tokens in one multiply")
    parser.add_argument("--hidden", type=int, default=384, help="384: MiniLM-L6; 768: BERT-base")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hidden = args.hidden
    shapes = [("query/key/value/output", hidden, hidden), ("intermediate", hidden, 4 * hidden),
              ("output", 4 * hidden, hidden)]
    print(describe(host_description()))
    print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
          f"{args.threads} threads; medians of {args.repeats} alternated timings")
    print(f"{'multiply':<24} {'rows':>6} {'in':>5} {'out':>5}  {'torch GFLOP/s':>14} {'ORT GFLOP/s':>12}  torch/ORT")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            for name, inputs, outputs in shapes:
                ours, theirs = compare(rows, inputs, outputs, args.threads, args.repeats, Path(folder))
                flop = 2 * rows * inputs * outputs
                ratios.append(theirs / ours)
                print(f"{name:<24} {rows:>6} {inputs:>5} {outputs:>5}  {flop / ours / 1e9:>14.1f} {flop / theirs / 1e9:>12.1f}"
                      f"  x{theirs / ours:.2f}")
    print(f"geometric mean torch/ORT over the shapes: x{statistics.geometric_mean(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
