"""``python run.py {CPU,GPU,IPU} --mode ... --params YAML``: parse, validate, dispatch to an executor.

Every expected failure (bad params, bad data, a missing checkpoint, no CUDA, no poptorch, a
non-finite loss) ends as one ``error:`` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from modelzoo.backends.gpu import require_cuda
from modelzoo.backends.ipu_options import require_poptorch
from modelzoo.cli.modes import run_mode
from modelzoo.common.errors import ParamsError, UserError
from modelzoo.loop.trainer import TrainingInterrupted
from modelzoo.params.params import load_params
from modelzoo.predict.int8 import QUANTIZE_CHOICES

MODES = ("train", "eval", "train_and_eval", "predict")
PREDICT_OPTIONS = ("input", "output", "output_html", "pretokenized", "quantize")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Train and evaluate BERT token classifiers.")
    parser.add_argument("target", choices=("CPU", "GPU", "IPU"), help="where to run")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--params", required=True, help="YAML params file (see docs/PARAMS.md)")
    parser.add_argument("--model_dir", help="checkpoints, logs and resolved params (runconfig.model_dir)")
    parser.add_argument("--checkpoint_path", help="checkpoint to start from or to evaluate")
    parser.add_argument(
        "--load_checkpoint_states",
        choices=("model", "all"),
        help="from --checkpoint_path restore only the weights (model) or the whole training state (all)",
    )
    parser.add_argument(
        "--disable_strict_checkpoint_loading", action="store_true", help="load despite missing/unexpected keys"
    )
    parser.add_argument("--max_steps", type=int, help="optimizer steps to train (replaces num_epochs)")
    parser.add_argument("--num_epochs", type=int, help="epochs to train (replaces max_steps)")
    parser.add_argument("--seed", type=int, help="runconfig.seed")
    predict = parser.add_argument_group("--mode predict", "tag raw text with a trained checkpoint")
    predict.add_argument("--input", help="text file, one sentence a line, or - for stdin")
    predict.add_argument("--output", help="where the predictions go (default: stdout)")
    predict.add_argument("--output_format", choices=("jsonl", "conll"), default="jsonl",
                         help="JSON lines (words, tags, entities with character offsets) or word<TAB>tag columns")
    predict.add_argument("--output_html", metavar="PAGE", help="also write one HTML page highlighting the entities")
    predict.add_argument("--pretokenized", action="store_true",
                         help="input lines are whitespace-separated words (no further splitting)")
    predict.add_argument("--quantize", choices=QUANTIZE_CHOICES,
                         help="CPU only: int8 weights in the encoder, about 1.4x faster, slightly lower F1")
    return parser


def check_predict_options(args: argparse.Namespace) -> None:
    """--input is what predict reads; the predict options mean nothing to the other modes."""
    if args.mode == "predict" and args.input is None:
        raise ParamsError("--mode predict needs --input FILE (or - for stdin)")
    given = [f"--{name}" for name in PREDICT_OPTIONS if getattr(args, name)]
    if args.mode != "predict" and given:
        raise ParamsError(f"{', '.join(given)}: only for --mode predict")


def resolve_params(args: argparse.Namespace):
    """The params file with the command line on top; --max_steps and --num_epochs replace each other."""
    overrides = {
        "runconfig.model_dir": args.model_dir,
        "runconfig.checkpoint_path": args.checkpoint_path,
        "runconfig.load_checkpoint_states": args.load_checkpoint_states,
        "runconfig.seed": args.seed,
    }
    params = load_params(args.params, overrides)
    if args.max_steps is not None or args.num_epochs is not None:
        runconfig = dataclasses.replace(params.runconfig, max_steps=args.max_steps, num_epochs=args.num_epochs)
        params = dataclasses.replace(params, runconfig=runconfig)
    params.check_mode(args.mode)
    return params


def predict(args: argparse.Namespace, params, strict: bool) -> None:
    """Prediction runs in this one process on one device: no executor, no distributed set-up."""
    import torch

    from modelzoo.predict.runner import PredictOptions, run_predict

    device = require_cuda() if args.target == "GPU" else torch.device("cpu")
    options = PredictOptions(
        args.input, args.output, args.output_format, args.output_html, args.pretokenized, args.quantize
    )
    run_predict(params, options, device, strict)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_predict_options(args)
        if args.target == "IPU":
            if args.mode == "predict":
                raise ParamsError("run.py IPU --mode predict: predict on CPU or GPU (checkpoints are the same .mdl files)")
            require_poptorch()  # before anything is read or written
        params = resolve_params(args)
        strict = not args.disable_strict_checkpoint_loading
        if args.mode == "predict":
            predict(args, params, strict)
            return 0
        run_mode(params, args.mode, args.target, strict)
        return 0
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
