"""The ONNX export loads in optimum as it is, and finds the entities ``run.py --mode predict --engine
onnxruntime`` finds.

    python benchmarks/optimum_parity.py --model_dir RUN [--checkpoint_path CKPT] [--sentences 1000] \
        --optimum_python ~/venvs/optimum/bin/python

Exports the checkpoint to ONNX (``convert_checkpoint --tgt-fmt onnx``), tags the first N CoNLL-2003
dev sentences (raw text) with ``run.py --mode predict --engine onnxruntime``, and the same lines with
``optimum.onnxruntime.ORTModelForTokenClassification`` + ``pipeline("token-classification",
aggregation_strategy="first")`` in the optimum venv (tests/optimum_entities.py; optimum-onnx pins
transformers < 4.58, so it cannot share this project's environment). Prints how many entities each
found and how many differ; exit code 1 when any does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Set, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from data_processing.ner_raw import read_split_file  # noqa: E402
from modelzoo.checkpoint.training import latest_checkpoint  # noqa: E402
from modelzoo.cli.main import main as run_main  # noqa: E402
from modelzoo.data.conll2003 import conll2003_dir  # noqa: E402
from modelzoo.tools.convert_checkpoint import convert  # noqa: E402

Entities = Set[Tuple[int, int, int, str]]


def entities_of(records: List[dict], key: str) -> Entities:
    """``(line index, start, end, type)`` of every entity, from predict's records or optimum's."""
    found = set()
    for index, record in enumerate(records):
        for entity in record[key]:
            start, end, kind = (entity["start"], entity["end"], entity["type"]) if key == "entities" and isinstance(entity, dict) else entity
            found.add((index, start, end, kind))
    return found


def compare(model_dir: Path, checkpoint: Path, lines: List[str], optimum_python: str, work: Path) -> Tuple[Entities, Entities]:
    """(predict's entities, optimum's entities) on ``lines``."""
    export = work / "onnx"
    convert(checkpoint, "modelzoo", "onnx", export)
    source = work / "lines.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ours_file = work / "ours.jsonl"
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(model_dir), "--engine", "onnxruntime",
                     "--checkpoint_path", str(export), "--input", str(source), "--output", str(ours_file)])
    if code != 0:
        raise SystemExit(f"run.py --mode predict failed ({code})")
    ours = [json.loads(line) for line in ours_file.read_text(encoding="utf-8").splitlines()]
    result = subprocess.run([optimum_python, str(REPO_ROOT / "tests" / "optimum_entities.py"), str(export), str(source)],
                            capture_output=True, text=True, check=True)
    theirs = [json.loads(line) for line in result.stdout.splitlines()]
    return entities_of(ours, "entities"), entities_of(theirs, "entities")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--checkpoint_path", type=Path, help="default: the model_dir's newest checkpoint")
    parser.add_argument("--sentences", type=int, default=1000, help="first N CoNLL-2003 dev sentences")
    parser.add_argument("--optimum_python", required=True, help="python of a venv with optimum-onnx[onnxruntime]")
    args = parser.parse_args(argv)
    sentences, _ = read_split_file(conll2003_dir() / "valid.txt")
    lines = [" ".join(sentence.words) for sentence in sentences[: args.sentences]]
    checkpoint = args.checkpoint_path or latest_checkpoint(args.model_dir)
    with tempfile.TemporaryDirectory(prefix="optimum-parity-") as work:
        ours, theirs = compare(args.model_dir, checkpoint, lines, args.optimum_python, Path(work))
    print(f"{len(lines)} sentences: run.py --engine onnxruntime found {len(ours)} entities, optimum's pipeline "
          f"{len(theirs)}; {len(ours - theirs)} only in ours, {len(theirs - ours)} only in optimum's")
    return 0 if ours == theirs else 1


if __name__ == "__main__":
    sys.exit(main())
