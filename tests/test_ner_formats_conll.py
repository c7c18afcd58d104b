"""CoNLL-2003 dev through every format (tests/conll_to_formats.py) and back through write_csv_ner.py.

The Hugging Face copy keeps CoNLL's words, so its CSV must be the CoNLL CSV byte for byte. The
span formats re-split the text with the prediction splitter (``U.S.`` becomes four words), so their
CSV differs, but every entity mention must survive: per type, as many as CoNLL-2003 dev holds
(5,942: the counts every CoNLL-2003 paper reports). With ``--pretokenized`` the JSONL words are
CoNLL's again, and its CSV is the CoNLL CSV byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from data_processing.write_csv_ner import main
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.csv_layout import DOCUMENT_COLUMN
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.data.vocab import build_label_vocab
from tests.conll_to_formats import convert as write_formats

CONLL_DEV_MENTIONS = {"LOC": 1837, "PER": 1842, "ORG": 1341, "MISC": 922}
CONLL_LABELS = [f"{prefix}-{kind}" for prefix in "BI" for kind in CONLL_DEV_MENTIONS] + ["O"]


@pytest.fixture(scope="module")
def converted(vocab_file, tmp_path_factory):
    """The dev split in every format, and the CSV folder written from each (and from the CoNLL file)."""
    root = tmp_path_factory.mktemp("conll_formats")
    folders = write_formats(root / "raw", ["dev"])
    folders["conll"] = root / "raw" / "conll"
    folders["conll"].mkdir()
    shutil.copy(conll2003_dir() / "valid.txt", folders["conll"] / "valid.txt")
    label_vocab = root / "label2id.json"
    label_vocab.write_text(json.dumps(build_label_vocab(CONLL_LABELS)))
    outputs = {}
    for name, folder in folders.items():
        outputs[name] = root / "csv" / name
        args = ["--data_dir", str(folder), "--vocab_file", str(vocab_file), "--output_dir", str(outputs[name]),
                "--do_lower_case", "--label_vocab_file", str(label_vocab)]
        assert main(args) == 0, name
    outputs["jsonl_pretokenized"] = root / "csv" / "jsonl_pretokenized"
    assert main(["--data_dir", str(folders["jsonl"]), "--vocab_file", str(vocab_file), "--output_dir",
                 str(outputs["jsonl_pretokenized"]), "--do_lower_case", "--label_vocab_file", str(label_vocab),
                 "--pretokenized"]) == 0
    return outputs


def tree(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_hf_csv_equals_the_conll_csv_byte_for_byte(converted):
    assert tree(converted["hf"]) == tree(converted["conll"])  # the -DOCSTART- rows number the same documents
    assert len(tree(converted["conll"])["dev/dev-1.csv"]) > 500_000  # the whole dev split, not an empty folder


def test_pretokenized_jsonl_csv_equals_the_conll_csv_but_for_its_documents(converted):
    """Each JSONL record is a document of its own (here a sentence); every other byte is CoNLL's."""
    ours, conll = tree(converted["jsonl_pretokenized"]), tree(converted["conll"])
    assert ours.keys() == conll.keys()
    for name in ours:
        if not name.endswith(".csv"):
            assert ours[name] == conll[name], name
            continue
        rows = [list(csv.reader(io.StringIO(text[name].decode()))) for text in (ours, conll)]
        assert [row[:-1] for row in rows[0]] == [row[:-1] for row in rows[1]] and len(rows[0]) > 3000
        assert rows[0][0][-1] == DOCUMENT_COLUMN and [row[-1] for row in rows[0][1:]] == [
            row[2] for row in rows[0][1:]  # document number = record number = sentence number
        ]


@pytest.mark.parametrize("name", ["conll", "hf", "jsonl", "labelstudio", "brat"])
def test_every_entity_mention_of_conll_dev_survives(converted, vocab_file, name):
    dataset = NerCsvDataset(converted[name] / "dev", vocab_file, 128)
    mentions = Counter(label[2:] for words in dataset.word_labels() for label in words if label.startswith("B-"))
    assert mentions == CONLL_DEV_MENTIONS
    assert sum(mentions.values()) == 5942
