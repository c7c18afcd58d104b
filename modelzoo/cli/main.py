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

from modelzoo.backends.targets import TARGETS, predict_device
from modelzoo.checkpoint.best import resolve_checkpoint_name
from modelzoo.checkpoint.model_dir import saved_params_file, with_model_dir_files
from modelzoo.cli.modes import run_mode
from modelzoo.common.errors import ParamsError, UserError, os_error_reason
from modelzoo.heads import head_names, head_spec
from modelzoo.heads.prediction import (
    CHUNK_LINES,
    DOCUMENTS,
    INPUT_FORMATS,
    LINES,
    MAX_PAGE_LINES,
    PredictOptions,
)
from modelzoo.heads.token_classification.annotation_formats import DEFAULT_FROM_NAME, DEFAULT_TO_NAME
from modelzoo.loop.trainer import TrainingInterrupted
from modelzoo.params.params import load_params
from modelzoo.predict.engine_choice import ENGINES
from modelzoo.predict.int8 import QUANTIZE_CHOICES
from modelzoo.serve.options import SERVE_OPTIONS, add_serve_arguments, require_server_packages, serve_options

MODES = ("train", "eval", "train_and_eval", "predict", "serve")
PREDICT_OPTIONS = (
    "input", "output", "output_format", "output_html", "pretokenized", "input_format", "quantize", "pairs",
    "min_entity_score",
    "conll_scores", "resume", "chunk_lines", "html_max_lines", "ls_from_name", "ls_to_name",
)
# Modes that read a trained model: they find its vocab, labels and best checkpoint in model_dir.
TRAINED_MODEL_MODES = ("eval", "predict", "serve")
# Predict options that mean the same to --mode serve.
SERVE_SHARES = ("quantize",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py", description="Train, evaluate and predict with BERT token and sequence classifiers."
    )
    targets = "; ".join(f"{name}: {target.help}" for name, target in TARGETS.items())
    parser.add_argument("target", choices=list(TARGETS), help=f"where to run ({targets})")
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
    formats = list(dict.fromkeys(f for name in head_names() for f in head_spec(name).predictor_class.output_formats))
    predict.add_argument("--output_format", choices=formats,
                         help="jsonl (default: words, tags, scores, entities with character offsets; a label per "
                         "line for a sequence classifier), conll: word<TAB>tag columns, doccano: JSONL to import "
                         "into doccano, labelstudio: a JSON list of tasks with the entities as predictions")
    predict.add_argument("--ls_from_name", help=f"labelstudio: the <Labels> tag's name (default {DEFAULT_FROM_NAME})")
    predict.add_argument("--ls_to_name", help=f"labelstudio: the <Text> tag's name (default {DEFAULT_TO_NAME})")
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
    predict.add_argument("--input_format", choices=INPUT_FORMATS,
                         help=f"{LINES} (default): each line a text of any length, tagged alone; {DOCUMENTS}: each line "
                         "a sentence, blank lines between documents, each sentence read with its document's "
                         "neighbours when the model was trained with context_tokens (docs/CONTEXT.md)")
    predict.add_argument("--quantize", choices=QUANTIZE_CHOICES,
                         help="CPU only: int8 encoder (7-bit weights, 8-bit activations, oneDNN kernels), the fastest "
                         "CPU path; with --engine onnxruntime the export's model_int8.onnx (docs/PREDICT.md)")
    predict.add_argument("--engine", choices=ENGINES, default="auto",
                         help="torch: the model as trained; onednn: its layers in fused oneDNN kernels (same predictions); "
                         "auto: the faster of the two on this host, measured at start-up (or onnxruntime for an ONNX "
                         "export); onnxruntime: run --checkpoint_path DIR/model.onnx (convert_checkpoint --tgt-fmt onnx)")
    add_serve_arguments(parser)
    return parser


def check_predict_options(args: argparse.Namespace) -> None:
    """--input is what predict reads; the predict options mean nothing to the other modes."""
    if args.mode == "predict" and args.input is None:
        raise ParamsError("--mode predict needs --input FILE (or - for stdin)")
    given = [f"--{name}" for name in PREDICT_OPTIONS if getattr(args, name) not in (None, False)
             and not (args.mode == "serve" and name in SERVE_SHARES)]
    if args.mode != "predict" and given:
        raise ParamsError(f"{', '.join(given)}: only for --mode predict")
    given = [f"--{name}" for name in SERVE_OPTIONS if getattr(args, name) is not None]
    if args.mode != "serve" and given:
        raise ParamsError(f"{', '.join(given)}: only for --mode serve")


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
    from modelzoo.predict.runner import run_predict

    given = {name: getattr(args, name) for name in PREDICT_OPTIONS if getattr(args, name) is not None}
    options = PredictOptions(**given, engine=args.engine)
    run_predict(params, options, predict_device(args.target, args.mode), strict)


def serve(args: argparse.Namespace, params, strict: bool) -> None:
    """The server runs in this one process on one device, as prediction does."""
    options = serve_options(args)
    require_server_packages()
    from modelzoo.serve.server import run_server

    run_server(params, options, predict_device(args.target, args.mode), strict, args.quantize, args.engine)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_predict_options(args)
        if args.mode in ("predict", "serve"):
            predict_device(args.target, args.mode)  # a target that cannot predict fails before anything is read
        TARGETS[args.target].preflight()
        params = resolve_params(args)
        strict = not args.disable_strict_checkpoint_loading
        if args.mode == "predict":
            predict(args, params, strict)
            return 0
        if args.mode == "serve":
            serve(args, params, strict)
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
