"""Run inside a venv with optimum-onnx (which pins transformers < 4.58, so not beside this project):
load an ONNX export folder as it is with optimum and print, as JSON lines, the entities
``pipeline("token-classification", aggregation_strategy="first")`` finds in each input line.

    python tests/optimum_entities.py EXPORT_FOLDER LINES.txt > entities.jsonl

Imports nothing of the project, so the venv needs only optimum-onnx[onnxruntime].
"""

import json
import sys

from optimum.onnxruntime import ORTModelForTokenClassification
from transformers import AutoTokenizer, pipeline


def main() -> None:
    folder, lines_file = sys.argv[1], sys.argv[2]
    model = ORTModelForTokenClassification.from_pretrained(folder, file_name="model.onnx")
    tagger = pipeline("token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder),
                      aggregation_strategy="first")
    with open(lines_file, encoding="utf-8") as stream:
        lines = [line.rstrip("\n") for line in stream]
    for line, found in zip(lines, tagger(lines, batch_size=32)):
        entities = [[entity["start"], entity["end"], entity["entity_group"]] for entity in found]
        print(json.dumps({"text": line, "entities": entities}))


if __name__ == "__main__":
    main()
