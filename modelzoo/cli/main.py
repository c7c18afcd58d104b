"""``python run.py {CPU,GPU,IPU} --mode ... --params YAML``: parse, validate, dispatch to an executor.

Every expected failure (bad params, bad data, a missing checkpoint, no CUDA, no poptorch, a
non-finite loss) ends as one ``error:`` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

from modelzoo.backends.gpu import require_cuda
from modelzoo.backends.ipu_options import require_poptorch
from modelzoo.checkpoint.best import resolve_checkpoint_name
from modelzoo.checkpoint.model_dir import saved_params_file, with_model_dir_files
from modelzoo.cli.modes import run_mode
from modelzoo.common.errors import ParamsError, UserError, os_error_reason
from modelzoo.loop.trainer import TrainingInterrupted
from modelzoo.params.params import load_params
from modelzoo.predict.engine_choice import ENGINES
from modelzoo.predict.html_page import MAX_PAGE_LINES
from modelzoo.predict.input_lines import CHUNK_LINES
from modelzoo.predict.int8 import QUANTIZE_CHOICES

MODES = ("train", "eval", "train_and_eval", "predict")
PREDICT_OPTIONS = (
    "input", "output", "output_format", "output_html", "pretokenized", "quantize", "pairs", "min_entity_score",
    "conll_scores", "resume", "chunk_lines", "html_max_lines",
)
# Modes that read a trained model: they find its vocab, labels and best checkpoint in model_dir.
TRAINED_MODEL_MODES = ("eval", "predict")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Train and evaluate BERT token classifiers.")
    parser.add_argument("target", choices=("CPU", "GPU", "IPU"), help="where to run")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument(
        "--params", help="YAML params file (see docs/PARAMS.md); default: the params a training run saved in --model_dir"
    )
    parser.add_argument("--model_dir", help="checkpoints, logs and resolved params (runconfig.model_dir)")
    parser.add_argument("--checkpoint_path", help="checkpoint to start from or to evaluate; 'best': model_dir's best")
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
    parser.add_argument(
        "--allow_changed_params", action="store_true",
        help="resume model_dir's checkpoint although params that shape the run (model, data, batch, seed, "
        "schedule...) changed since it was saved",
    )
    predict = parser.add_argument_group("--mode predict", "tag raw text with a trained checkpoint")
    predict.add_argument("--input", help="text file, one sentence a line, or - for stdin")
    predict.add_argument("--output", help="where the predictions go (default: stdout)")
    predict.add_argument("--output_format", choices=("jsonl", "conll"),
                         help="jsonl (default: words, tags, scores, entities with character offsets; a label per "
                         "line for a sequence classifier) or conll: word<TAB>tag columns")
    predict.add_argument("--output_html", metavar="PAGE",
                         help="also write one HTML page highlighting the entities (or labels) of the first lines")
    predict.add_argument("--html_max_lines", type=int,
                         help=f"lines the page shows at most; it says so when the input has more (default {MAX_PAGE_LINES})")
    predict.add_argument("--min_entity_score", type=float, metavar="P",
                         help="drop entities scored below P (their words' tags become O)")
    predict.add_argument("--conll_scores", action="store_true", help="conll output: each tag's probability as a third column")
    predict.add_argument("--pairs", action="store_true",
                         help="sequence classifier: each line is two sentences separated by a TAB")
    predict.add_argument("--resume", action="store_true",
                         help="continue an interrupted run: keep the whole records --output holds, predict the rest")
    predict.add_argument("--chunk_lines", type=int,
                         help=f"input lines read, predicted and written at a time (default {CHUNK_LINES})")
    predict.add_argument("--pretokenized", action="store_true",
                         help="input lines are whitespace-separated words (no further splitting)")
    predict.add_argument("--quantize", choices=QUANTIZE_CHOICES,
                         help="CPU only: int8 encoder (7-bit weights, 8-bit activations, oneDNN kernels), the fastest "
                         "CPU path; with --engine onnxruntime the export's model_int8.onnx (README: Predict)")
    predict.add_argument("--engine", choices=ENGINES, default="auto",
                         help="torch: the model as trained; onednn: its layers in fused oneDNN kernels (same predictions); "
                         "auto: the faster of the two on this host, measured at start-up (or onnxruntime for an ONNX "
                         "export); onnxruntime: run --checkpoint_path DIR/model.onnx (convert_checkpoint --tgt-fmt onnx)")
    return parser


def check_predict_options(args: argparse.Namespace) -> None:
    """--input is what predict reads; the predict options mean nothing to the other modes."""
    if args.mode == "predict" and args.input is None:
        raise ParamsError("--mode predict needs --input FILE (or - for stdin)")
    given = [f"--{name}" for name in PREDICT_OPTIONS if getattr(args, name) not in (None, False)]
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
    params = load_params(args.params or default_params_file(args.model_dir), overrides)
    if args.params is None:  # saved training params: their checkpoint_path is where training started
        runconfig = dataclasses.replace(params.runconfig, checkpoint_path=args.checkpoint_path, load_checkpoint_states=None)
        params = dataclasses.replace(params, runconfig=runconfig)
    if args.max_steps is not None or args.num_epochs is not None:
        runconfig = dataclasses.replace(params.runconfig, max_steps=args.max_steps, num_epochs=args.num_epochs)
        params = dataclasses.replace(params, runconfig=runconfig)
    params.check_mode(args.mode)
    if args.mode in TRAINED_MODEL_MODES:
        model_dir = Path(params.runconfig.model_dir)
        checkpoint = resolve_checkpoint_name(params.runconfig.checkpoint_path, model_dir)
        params = dataclasses.replace(
            params,
            eval_input=with_model_dir_files(params.eval_input, model_dir),
            runconfig=dataclasses.replace(params.runconfig, checkpoint_path=checkpoint),
        )
    return params


def default_params_file(model_dir: Optional[str]) -> Path:
    """Without --params: the params a training run saved in --model_dir."""
    saved = saved_params_file(Path(model_dir)) if model_dir else None
    if saved is None:
        raise ParamsError(f"--params: not given, and no training params saved in --model_dir {model_dir}")
    return saved


def predict(args: argparse.Namespace, params, strict: bool) -> None:
    """Prediction runs in this one process on one device: no executor, no distributed set-up."""
    import torch

    from modelzoo.predict.runner import PredictOptions, run_predict

    device = require_cuda() if args.target == "GPU" else torch.device("cpu")
    given = {name: getattr(args, name) for name in PREDICT_OPTIONS if getattr(args, name) is not None}
    options = PredictOptions(**given, engine=args.engine)
    run_predict(params, options, device, strict)


def main(argv: Optional[List[str]] = None) -> int:
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
        run_mode(params, args.mode, args.target, strict, args.allow_changed_params)
        return 0
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        if error.filename is None:
            raise
        # A path the user chose cannot be written (read-only place, a file where a folder should be...).
        print(f"error: {error.filename}: {os_error_reason(error)}", file=sys.stderr)
        return UserError.exit_code
