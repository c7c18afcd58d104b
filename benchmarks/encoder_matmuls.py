"""The encoder's multiplies alone: ours against ONNX Runtime's (its own MLAS kernels), on the shapes one
encoder layer multiplies, in float32 or int8.

    python benchmarks/encoder_matmuls.py [--ours torch|inductor|int8] [--rows 1024 4096] [--hidden 384] [--repeats 7]

Prediction's speed against ONNX Runtime's graphs is mostly these multiplies; this says whether the
libraries' kernels differ on this CPU before anything else is blamed. Each shape is
``[rows, in] x [in, out] + bias`` as the layer runs it (query/key/value/output: hidden -> hidden;
intermediate: hidden -> 4 hidden; output: 4 hidden -> hidden), same weights and inputs both sides,
on the same number of threads, timed alternately; medians of ``--repeats`` (each the mean of
several calls) and GFLOP/s (int8: GOP/s); the ratio is ours over ONNX Runtime's (above 1: ours faster).

- ``torch`` (float32): torch's linear (MKL's SGEMM on x86) against one ``Gemm`` node;
- ``inductor`` (float32): the same linear through ``torch.compile(mode="max-autotune")`` with
  inductor's own C++ GEMM template (``max_autotune_gemm_backends="CPP"``, weights frozen), the other
  float32 multiply torch can generate for a CPU, against the same node;
- ``int8``: ``--quantize int8``'s :class:`~modelzoo.predict.int8.Int8Linear` (oneDNN's
  ``qlinear_pointwise``, the input quantized per call) against ONNX Runtime's ``quantize_dynamic`` of
  the same linear with a scale per output channel (its dynamically quantized ``MatMulInteger``), both
  counting the input's quantization. Their results differ by the two schemes' rounding (ONNX Runtime
  uses all 8 bits of the weights, which an int8 kernel without VNNI can saturate), so only the float32
  pair is checked for equality.
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

from modelzoo.predict.int8 import Int8Linear  # noqa: E402


def linear_graph(weight: np.ndarray, bias: np.ndarray, precision: str) -> onnx.ModelProto:
    """``Y = X W^T + b``: float32 as one Gemm (transB), the node ONNX Runtime's optimizer leaves a
    linear as; for int8 as MatMul and Add, the nodes ``quantize_dynamic`` quantizes (it leaves Gemm
    in float)."""
    rows = "rows"
    if precision == "float32":
        nodes = [helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)]
        initializers = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")]
    else:
        nodes = [helper.make_node("MatMul", ["X", "WT"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])]
        initializers = [numpy_helper.from_array(np.ascontiguousarray(weight.T), "WT"), numpy_helper.from_array(bias, "B")]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [rows, weight.shape[1]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [rows, weight.shape[0]])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def onnx_file(weight: np.ndarray, bias: np.ndarray, precision: str, folder: Path) -> Path:
    path = folder / f"linear_{weight.shape[1]}_{weight.shape[0]}_{precision}.onnx"
    float_path = path.with_suffix(".float.onnx") if precision == "int8" else path
    onnx.save(linear_graph(weight, bias, precision), str(float_path))
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(float_path), str(path), weight_type=QuantType.QInt8, per_channel=True)
    return path


def seconds_per_call(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def inductor_gemm(linear: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch._inductor.config as inductor

    inductor.freezing = True  # the weights become constants that the GEMM template can pack
    inductor.max_autotune_gemm_backends = "CPP"
    torch._dynamo.reset()  # a graph of its own for each shape, not recompiles of one (capped at 8)
    return torch.compile(linear, mode="max-autotune")


OURS = {"torch": lambda linear: linear, "inductor": inductor_gemm, "int8": Int8Linear}


def compare(rows: int, inputs: int, outputs: int, kind: str, threads: int, repeats: int,
            folder: Path) -> Tuple[float, float]:
    """Median seconds of one multiply: (ours, ONNX Runtime)."""
    precision = "int8" if kind == "int8" else "float32"
    generator = np.random.default_rng(0)
    x = generator.standard_normal((rows, inputs), dtype=np.float32)
    weight = (generator.standard_normal((outputs, inputs), dtype=np.float32) * 0.02).astype(np.float32)
    bias = generator.standard_normal(outputs, dtype=np.float32)
    path = onnx_file(weight, bias, precision, folder)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    linear = torch.nn.Linear(inputs, outputs).eval()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    tx = torch.from_numpy(x)
    with torch.no_grad():  # not inference_mode: its tensors fail the compiled graph's guards, a recompile a call
        ours = OURS[kind](linear)
        if precision == "float32":
            assert np.allclose(ours(tx).numpy(), session.run(None, {"X": x})[0], rtol=1e-4, atol=1e-4), "the two multiplies differ"
        flop = 2 * rows * inputs * outputs
        calls = min(200, max(3, int(2e10 / flop)))  # about 20 GFLOP a timing: a fifth of a second at 100 GFLOP/s
        our_times: List[float] = []
        ort_times: List[float] = []
        for _ in range(repeats):
            our_times.append(seconds_per_call(lambda: ours(tx), calls))
            ort_times.append(seconds_per_call(lambda: session.run(None, {"X": x}), calls))
    return statistics.median(our_times), statistics.median(ort_times)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", choices=list(OURS), default="torch")
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
    unit = "GOP/s" if args.ours == "int8" else "GFLOP/s"
    print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
          f"{args.threads} threads, ours: {args.ours}; medians of {args.repeats} alternated timings")
    print(f"{'multiply':<24} {'rows':>6} {'in':>5} {'out':>5}  {'ours ' + unit:>14} {'ORT ' + unit:>12}  ours/ORT")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            for name, inputs, outputs in shapes:
                ours, theirs = compare(rows, inputs, outputs, args.ours, args.threads, args.repeats, Path(folder))
                flop = 2 * rows * inputs * outputs
                ratios.append(theirs / ours)
                print(f"{name:<24} {rows:>6} {inputs:>5} {outputs:>5}  {flop / ours / 1e9:>14.1f} {flop / theirs / 1e9:>12.1f}"
                      f"  x{theirs / ours:.2f}")
    print(f"geometric mean ours/ORT over the shapes: x{statistics.geometric_mean(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
