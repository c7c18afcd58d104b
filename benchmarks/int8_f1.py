"""What ``--quantize int8`` costs in entity F1, on data no int8 choice was tuned on, over several checkpoints.

    python benchmarks/int8_f1.py --run PARAMS CHECKPOINT [--run PARAMS CHECKPOINT ...] [--test_file FILE]

int8's choices (8-bit activations, 7-bit per-channel weights, the outlier rows of the FFN's second
linear, skipping the padding) were made on CoNLL-2003 dev with the quick start's checkpoint. This
scores each checkpoint on a test split (CoNLL-2003 test by default, or any column file ``--test_file``,
e.g. BC5CDR-chem's ``test.tsv``) in float32 and in int8, through ``run.py --mode predict``'s path on
the split's own words (``--pretokenized``), with the evaluator training uses (seqeval strict IOB2,
:func:`modelzoo.metrics.score_tags`), and prints each difference and their mean and range: one
checkpoint's difference is within the noise of which entities sit near a decision boundary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from modelzoo.common.openmp import wait_passively

wait_passively()  # as run.py --mode predict does, before torch loads OpenMP

import torch  # noqa: E402 (after the OpenMP setting above)

from data_processing.ner_raw import read_split_file  # noqa: E402
from modelzoo.data.conll2003 import conll2003_dir  # noqa: E402
from modelzoo.heads.prediction import PredictOptions  # noqa: E402
from modelzoo.heads.token_classification.predictor import predict_lines  # noqa: E402
from modelzoo.metrics import score_tags  # noqa: E402
from modelzoo.params.params import load_params  # noqa: E402
from modelzoo.predict.inference_model import build_predictor  # noqa: E402

CONLL_TEST = "test.txt"


def entity_f1(params, checkpoint: str, quantize: str | None, lines: list[str], gold: list[list[str]]) -> float:
    params = dataclasses.replace(params, runconfig=dataclasses.replace(params.runconfig, checkpoint_path=checkpoint))
    options = PredictOptions("-", quantize=quantize, engine="torch", pretokenized=True)
    predictor = build_predictor(params, options, torch.device("cpu"))[0]
    tags = [prediction.tags for prediction in predict_lines(predictor.tagger, lines, pretokenized=True)]
    return score_tags(gold, tags).overall.f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("PARAMS", "CHECKPOINT"))
    parser.add_argument("--test_file", type=Path, help="a BLURB or CoNLL column file (default: CoNLL-2003 test)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    test_file = args.test_file or conll2003_dir() / CONLL_TEST
    sentences, _ = read_split_file(test_file)
    lines = [" ".join(sentence.words) for sentence in sentences]
    gold = [list(sentence.labels) for sentence in sentences]
    print(f"{test_file}: {len(lines)} sentences; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    rows = []
    for params_file, checkpoint in args.run:
        params = load_params(params_file)
        float32 = entity_f1(params, checkpoint, None, lines, gold)
        int8 = entity_f1(params, checkpoint, "int8", lines, gold)
        rows.append({"checkpoint": checkpoint, "float32": float32, "int8": int8, "difference_points": 100 * (int8 - float32)})
        print(f"{checkpoint}: float32 {float32:.4f}  int8 {int8:.4f}  ({100 * (int8 - float32):+.2f} points)", flush=True)
    differences = [row["difference_points"] for row in rows]
    summary = {"test_file": str(test_file), "runs": rows, "mean_difference_points": statistics.mean(differences),
               "range_points": [min(differences), max(differences)]}
    print(f"int8 - float32 over {len(rows)} checkpoints: mean {summary['mean_difference_points']:+.2f} points, "
          f"range {min(differences):+.2f} to {max(differences):+.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
