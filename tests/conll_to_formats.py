"""CoNLL-2003 written out in the formats ``write_csv_ner.py`` reads besides columns: hf, jsonl, labelstudio, brat.

    python tests/conll_to_formats.py --output_dir OUT [--splits dev]

Each sentence's text is its tokens joined by single spaces; its spans come from the IOB2 tags
(character offsets of the entity's first and last token). ``OUT/hf`` is a saved ``DatasetDict``
(``tokens``, and ``ner_tags`` as a ``ClassLabel``; a ``-DOCSTART-`` row starts each document, as in
Hugging Face's conll2003), ``OUT/jsonl/<split>.jsonl`` doccano records
(``text``, ``label``), ``OUT/labelstudio/<split>.json`` a Label Studio export (one annotation per
task), ``OUT/brat/<split>/`` documents of ``SENTENCES_PER_DOCUMENT`` sentences a line each (so a
record holds several sentences, as BRAT documents do). The tests read them back
(tests/test_ner_formats_conll.py); the short fine-tune of docs/DATA_FORMATS.md trains on the jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

from data_processing.ner_raw import DOCSTART, Sentence, read_split_file
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.heads.token_classification.spans import entity_spans

SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
HF_SPLIT_NAMES = {"train": "train", "dev": "validation", "test": "test"}
SENTENCES_PER_DOCUMENT = 20
Span = Tuple[int, int, str]


def text_and_spans(sentence: Sentence) -> Tuple[str, List[Span]]:
    """The tokens joined by single spaces, and each entity as (start, end, type) character offsets."""
    starts, position = [], 0
    for word in sentence.words:
        starts.append(position)
        position += len(word) + 1
    text = " ".join(sentence.words)
    spans = [(starts[span.start], starts[span.stop - 1] + len(sentence.words[span.stop - 1]), span.type)
             for span in entity_spans(sentence.labels)]
    return text, spans


def write_jsonl(path: Path, sentences: List[Sentence]) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        for sentence in sentences:
            text, spans = text_and_spans(sentence)
            stream.write(json.dumps({"text": text, "label": [list(span) for span in spans]}, ensure_ascii=False) + "\n")


def write_labelstudio(path: Path, sentences: List[Sentence]) -> None:
    tasks = []
    for index, sentence in enumerate(sentences):
        text, spans = text_and_spans(sentence)
        result = [
            {"id": f"r{index}-{number}", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}
            for number, (start, end, label) in enumerate(spans)
        ]
        tasks.append({"id": index + 1, "data": {"text": text},
                      "annotations": [{"id": index + 1, "result": result, "was_cancelled": False}]})
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")


def write_brat(folder: Path, sentences: List[Sentence]) -> None:
    folder.mkdir(parents=True)
    for first in range(0, len(sentences), SENTENCES_PER_DOCUMENT):
        lines, annotations, offset = [], [], 0
        for sentence in sentences[first : first + SENTENCES_PER_DOCUMENT]:
            text, spans = text_and_spans(sentence)
            for start, end, label in spans:
                annotations.append(f"T{len(annotations) + 1}\t{label} {offset + start} {offset + end}\t{text[start:end]}\n")
            lines.append(text)
            offset += len(text) + 1
        name = f"doc{first // SENTENCES_PER_DOCUMENT:05d}"
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / f"{name}.ann").write_text("".join(annotations), encoding="utf-8")


def write_hf(folder: Path, sentences_of_split: Dict[str, List[Sentence]]) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    names = sorted({label for sentences in sentences_of_split.values() for s in sentences for label in s.labels})
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    tables = {}
    for split, sentences in sentences_of_split.items():
        rows: Dict[str, list] = {"tokens": [], "ner_tags": []}
        for number, sentence in enumerate(sentences):
            if number == 0 or sentence.document != sentences[number - 1].document:  # as Hugging Face's conll2003
                rows["tokens"].append([DOCSTART])
                rows["ner_tags"].append([names.index("O")])
            rows["tokens"].append(sentence.words)
            rows["ner_tags"].append([names.index(tag) for tag in sentence.labels])
        tables[HF_SPLIT_NAMES[split]] = Dataset.from_dict(rows, features=features)
    DatasetDict(tables).save_to_disk(str(folder))


def convert(output_dir: Path, splits: List[str]) -> Dict[str, Path]:
    """Write every format for ``splits`` of CoNLL-2003 under ``output_dir``; returns format -> its data_dir."""
    sentences_of_split = {split: read_split_file(conll2003_dir() / SPLIT_FILES[split])[0] for split in splits}
    folders = {name: output_dir / name for name in ("hf", "jsonl", "labelstudio", "brat")}
    folders["jsonl"].mkdir(parents=True)
    folders["labelstudio"].mkdir(parents=True)
    for split, sentences in sentences_of_split.items():
        write_jsonl(folders["jsonl"] / f"{split}.jsonl", sentences)
        write_labelstudio(folders["labelstudio"] / f"{split}.json", sentences)
        write_brat(folders["brat"] / split, sentences)
    write_hf(folders["hf"], sentences_of_split)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", type=Path, required=True, help="gets hf/, jsonl/, labelstudio/, brat/")
    parser.add_argument("--splits", default="train,dev,test", help="comma-separated splits to write")
    args = parser.parse_args()
    for name, folder in convert(args.output_dir, args.splits.split(",")).items():
        print(f"{name}: {folder}")


if __name__ == "__main__":
    main()
