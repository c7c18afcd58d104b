"""Issue 26's table: entity F1 of a recipe without context, with document context and with class
weights, over seeds, with each run's fine-tuning seconds.

    python benchmarks/context_f1.py [--corpus conll2003|bc5cdr-chem] [--workdir workdir]
        [--settings none context16 ...] [--seeds 1 2 3]

Corpora, each run on its recipe and its CSV, which carries the document column:

- ``conll2003``: the quick start's (``configs/quickstart_conll2003.yaml``: MiniLM-L6, packed rows of
  128, 580 steps, float32 on a CPU without bfloat16 arithmetic); documents from ``-DOCSTART-``;
- ``bc5cdr-chem``: ``make bc5cdr-minilm-packed``'s (``configs/minilm_bc5cdr_ner_packed.yaml``: one
  epoch of 162 steps, entity types stripped as BLURB scores it); the data from ``--bc5cdr_dir``, whose
  files have no document marks, so a document is the file (docs/CONTEXT.md).

A run differs from its recipe only by its setting and its seed (``runconfig.seed`` and
``train_input.shuffle_seed``). A context setting keeps the recipe's sentences a step by taking more
packed rows a batch (its rows hold fewer sentences: ``benchmarks/context_packing.py``) and its number
of steps. Evaluation reads dev and test with the training's context size. Settings:

- ``none``: the recipe itself;
- ``context16``, ``context64``: ``train_input.context_tokens`` and ``eval_input.context_tokens``;
- ``class_weights``: ``model.class_weights: auto``.

The runs go seed by seed, every setting in turn, so that a run cut short still leaves each setting
its first seeds; each finished run is one line of ``WORKDIR/context_f1[-CORPUS]/results.jsonl`` and is
not run again. The table is printed after every run: per setting, each seed's dev and test F1 and the
mean and spread (max - min), and the fine-tuning seconds (``run.py train``, start to end; the
machine's load average is recorded with each, since other work on the machine slows a run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Tuple

import yaml

from modelzoo.checkpoint.training import latest_checkpoint
from modelzoo.common.errors import UserError
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE
from modelzoo.tools.quickstart import (
    DEFAULT_CONFIG,
    REPO_ROOT,
    convert_weights,
    evaluate,
    fine_tune,
    minilm_folder,
    prepare_inputs,
    run_step,
    write_params,
)

SETTINGS: Dict[str, dict] = {  # name -> params changes (dotted keys), on top of the corpus's own
    "none": {},
    "context16": {"train_input.context_tokens": 16, "eval_input.context_tokens": 16},
    "context64": {"train_input.context_tokens": 64, "eval_input.context_tokens": 64},
    "class_weights": {"model.class_weights": "auto"},
}
SPLITS = ("dev", "test")
BC5CDR_DIR = REPO_ROOT.parent / "shared" / "data" / "bc5cdr-chem"


def bc5cdr_inputs(workdir: Path, source: Path) -> Tuple[Path, Path, int]:
    """BC5CDR-chem's CSV folders (types stripped) and MiniLM converted for its labels, as the
    Makefile's ``bc5cdr-minilm-packed`` makes them; reused when complete."""
    minilm = minilm_folder()
    csv_dir = workdir / "bc5cdr-chem-csv"
    if not all((csv_dir / split / name).is_file() for split in ("train", *SPLITS) for name in (META_FILE, LABEL_VOCAB_FILE)):
        run_step([sys.executable, "data_processing/write_csv_ner.py", "--data_dir", str(source), "--vocab_file",
                  str(minilm / "vocab.txt"), "--output_dir", str(csv_dir), "--do_lower_case", "--strip_entity_types"])
    num_labels = len(json.loads((csv_dir / "train" / LABEL_VOCAB_FILE).read_text(encoding="utf-8")))
    return csv_dir, convert_weights(workdir, minilm, num_labels, "minilm-token-classifier"), num_labels


class Corpus(NamedTuple):
    config: Path
    inputs: Callable[[Path, Path], Tuple[Path, Path, int]]  # (workdir, data source) -> csv_dir, weights, labels
    setting_changes: Dict[str, dict]  # setting -> the corpus's own changes with it


CORPORA = {
    # Rows with context hold fewer sentences (benchmarks/context_packing.py): more rows a batch keep the
    # recipe's sentences a step (CoNLL ~38, over its 580 steps).
    "conll2003": Corpus(DEFAULT_CONFIG, lambda workdir, _: prepare_inputs(workdir, None), {
        "context16": {"train_input.batch_size": 15}, "context64": {"train_input.batch_size": 38},
    }),
    # BC5CDR-chem: ~28 sentences a step and one epoch's 162 steps for every setting (its train split
    # fills 1297 rows of 128 without context, 2566 with 16, 4577 with 64: a sentence a row).
    "bc5cdr-chem": Corpus(REPO_ROOT / "configs" / "minilm_bc5cdr_ner_packed.yaml", bc5cdr_inputs, {
        setting: {"runconfig.max_steps": 162, "runconfig.num_epochs": None, **batch}
        for setting, batch in (("none", {}), ("context16", {"train_input.batch_size": 16}),
                               ("context64", {"train_input.batch_size": 28}), ("class_weights", {}))
    }),
}


def changed(params_file: Path, changes: dict, target: Path) -> Path:
    """A copy of ``params_file`` with the dotted ``changes`` applied."""
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        params[section][key] = value
    target.write_text(f"# {params_file} with {changes}\n" + yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return target


def entity_f1(metrics_file: Path) -> dict:
    """Overall entity F1 (seqeval strict IOB2, the evaluator's) and each type's, of an eval's metrics JSON."""
    scores = json.loads(metrics_file.read_text(encoding="utf-8"))["scores"]
    return {"f1": scores["overall"]["f1"], "per_type": {name: s["f1"] for name, s in scores["per_type"].items()}}


def run_changes(corpus: str, setting: str, seed: int) -> dict:
    """The dotted params changes of one run: the setting's, the corpus's with it, and the seed."""
    return {**SETTINGS[setting], **CORPORA[corpus].setting_changes.get(setting, {}),
            "runconfig.seed": seed, "train_input.shuffle_seed": seed}


def results_folder(workdir: Path, corpus: str) -> Path:
    return workdir / ("context_f1" if corpus == "conll2003" else f"context_f1-{corpus}")


def run_one(workdir: Path, corpus: str, source: Path, setting: str, seed: int) -> dict:
    """Fine-tune and evaluate one setting and seed on ``corpus``; its results line."""
    recipe = CORPORA[corpus]
    csv_dir, weights, num_labels = recipe.inputs(workdir, source)
    run_dir = results_folder(workdir, corpus) / f"{setting}-seed{seed}"
    base = write_params(recipe.config, run_dir, csv_dir, weights, num_labels)
    changes = run_changes(corpus, setting, seed)
    params = {split: changed(base[split], changes, run_dir / f"params_{split}.yaml") for split in SPLITS}
    load_before = os.getloadavg()[0]
    # What fine_tune compares a finished run in run_dir against before reusing it.
    seconds = fine_tune(params["dev"], run_dir / "model_dir", weights, {"setting": setting, "seed": seed})
    checkpoint = latest_checkpoint(run_dir / "model_dir")
    scores = {split: entity_f1(evaluate(params[split], checkpoint, run_dir / f"eval-{split}")[1]) for split in SPLITS}
    return {"setting": setting, "seed": seed, **{split: scores[split]["f1"] for split in SPLITS},
            "test_per_type": scores["test"]["per_type"], "train_seconds": round(seconds, 1),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def table(results: List[dict], settings: List[str]) -> str:
    lines = ["setting        seeds  dev F1 each / mean (spread)          test F1 each / mean (spread)         train s each"]
    for setting in settings:
        rows = sorted((r for r in results if r["setting"] == setting), key=lambda r: r["seed"])
        if not rows:
            continue
        cells = []
        for split in SPLITS:
            values = [r[split] for r in rows]
            cells.append(f"{' '.join(f'{v:.4f}' for v in values)} / {statistics.mean(values):.4f} "
                         f"({max(values) - min(values):.4f})")
        seconds = " ".join(f"{r['train_seconds']:.0f}" for r in rows)
        lines.append(f"{setting:<14} {len(rows):>5}  {cells[0]:<36} {cells[1]:<36} {seconds}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=list(CORPORA), default="conll2003")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "workdir")
    parser.add_argument("--bc5cdr_dir", type=Path, default=BC5CDR_DIR, help="BLURB's BC5CDR-chem (train/devel/test.tsv)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    workdir = args.workdir.resolve()
    results_file = results_folder(workdir, args.corpus) / "results.jsonl"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
    try:
        for seed in args.seeds:
            for setting in args.settings:
                if any(r["setting"] == setting and r["seed"] == seed for r in results):
                    continue
                results.append(run_one(workdir, args.corpus, args.bc5cdr_dir, setting, seed))
                with results_file.open("a", encoding="utf-8") as out:  # one whole line a finished run
                    out.write(json.dumps(results[-1]) + "\n")
                print(f"\n{table(results, args.settings)}\n({results_file})")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(table(results, args.settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
