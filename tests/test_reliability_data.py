"""Issue 13, the data side: the CSV writers never remove a file they did not write, and raw or CSV
folders that would train on the wrong thing are refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from data_processing import write_csv_classifier, write_csv_ner
from modelzoo.common.errors import DataFileError
from modelzoo.data.classifier_dataset import read_classifier_csv
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE
from modelzoo.data.ner_dataset import NerCsvDataset

TEST_DATA = Path(__file__).resolve().parent / "data"


def ner_main(raw: Path, vocab: Path, out: Path, *extra: str) -> int:
    return write_csv_ner.main(
        ["--data_dir", str(raw), "--vocab_file", str(vocab), "--output_dir", str(out), "--do_lower_case", *extra]
    )


def classifier_main(raw: Path, vocab: Path, out: Path, *extra: str) -> int:
    return write_csv_classifier.main(
        ["--data_dir", str(raw), "--vocab_file", str(vocab), "--output_dir", str(out), "--do_lower_case", *extra]
    )


def one_error(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    return errors[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# --- 4. the writers never delete what they did not write --------------------------------------------


@pytest.mark.parametrize(
    ("writer", "raw"), [(ner_main, TEST_DATA / "ner"), (classifier_main, TEST_DATA / "classifier")], ids=["ner", "classifier"]
)
def test_a_split_folder_holding_files_is_kept_unless_overwrite_is_given(tmp_path, tiny_vocab, capsys, writer, raw):
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    (out / "train" / "old.csv").write_text("mine")
    (out / "notes.txt").write_text("mine too")
    assert writer(raw, tiny_vocab, out) == 2
    error = one_error(capsys)
    assert f"{out / 'train'}: already holds files (old.csv); nothing was written. --overwrite replaces" in error
    assert tree(out) == {"train/old.csv": b"mine", "notes.txt": b"mine too"}
    assert writer(raw, tiny_vocab, out, "--overwrite") == 0
    assert (out / "train" / "old.csv").read_text() == "mine" and (out / "train" / META_FILE).is_file()
    assert f"kept {out / 'train' / 'old.csv'}: not written by a CSV writer" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "mine too"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging folder left beside it


def test_overwrite_replaces_what_a_writer_wrote_and_keeps_the_rest(tmp_path, tiny_vocab, capsys):
    out = tmp_path / "out"
    assert ner_main(TEST_DATA / "ner", tiny_vocab, out, "--num_output_files", "3") == 0
    (out / "train" / "my_notes.txt").write_text("mine")
    assert ner_main(TEST_DATA / "ner", tiny_vocab, out, "--overwrite") == 0
    # the earlier run's shards 2 and 3 go with its meta.dat; the file no writer wrote stays
    assert sorted(path.name for path in (out / "train").iterdir()) == [LABEL_VOCAB_FILE, META_FILE, "my_notes.txt",
                                                                        "train-1.csv"]
    assert (out / "train" / "my_notes.txt").read_text() == "mine"
    (out / "dev" / "dev-2.csv").write_text("mine, and not in meta.dat")  # the next run writes a dev-2.csv
    before = tree(out)
    capsys.readouterr()
    assert ner_main(TEST_DATA / "ner", tiny_vocab, out, "--overwrite", "--num_output_files", "2") == 2
    assert f"{out / 'dev' / 'dev-2.csv'}: was not written by a CSV writer, and the new split has" in one_error(capsys)
    assert tree(out) == before and sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    (out / "test").rename(tmp_path / "test_folder")
    (out / "test").write_text("a file where the test split goes")
    assert ner_main(TEST_DATA / "ner", tiny_vocab, out, "--overwrite") == 2
    assert f"{out / 'test'}: is a file where the split folder goes; nothing was written" in one_error(capsys)


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only place (/sys)")
@pytest.mark.parametrize(
    ("writer", "raw"), [(ner_main, TEST_DATA / "ner"), (classifier_main, TEST_DATA / "classifier")], ids=["ner", "classifier"]
)
def test_an_output_place_that_cannot_be_written_is_one_line(tmp_path, tiny_vocab, capsys, writer, raw):
    (tmp_path / "a_file").write_text("")
    assert writer(raw, tiny_vocab, tmp_path / "a_file" / "out") == 2
    assert f"{tmp_path / 'a_file' / 'out'}: cannot be the output folder: {tmp_path / 'a_file'} is a file" in one_error(capsys)
    assert writer(raw, tiny_vocab, Path("/sys/out")) == 2
    assert "/sys/out: cannot create it: not writable (" in one_error(capsys)


# --- 7. raw data the writer must not take at face value --------------------------------------------


IOB1 = "aspirin\tI-MISC\ncauses\tO\npain\tO\n\nthe\tO\nkofi\tI-PER\nannan\tI-PER\nsaid\tO\n"


def test_iob1_input_is_refused_naming_the_line_or_converted_on_request(tmp_path, tiny_vocab, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.tsv").write_text(IOB1, encoding="utf-8")
    assert ner_main(raw, tiny_vocab, tmp_path / "out") == 2
    error = one_error(capsys)
    assert "train.tsv:1: label 'I-MISC' begins an entity: the file is IOB1" in error and "--tag_scheme iob1" in error
    assert not (tmp_path / "out").exists()
    for flag in (["--tag_scheme", "iob1"], ["--convert_iob1"]):  # the old flag stays an alias
        assert ner_main(raw, tiny_vocab, tmp_path / "out", "--overwrite", *flag) == 0
        assert "tag scheme iob1 (given): 2 tags rewritten to IOB2" in capsys.readouterr().out
        dataset = NerCsvDataset(tmp_path / "out" / "train", tiny_vocab, 48)
        assert dataset.word_labels() == [["B-MISC", "O", "O"], ["O", "B-PER", "I-PER", "O"]]


def test_a_folder_without_train_needs_a_label_vocab(tmp_path, tiny_vocab, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(TEST_DATA / "ner" / "test.tsv", raw / "test.tsv")
    assert ner_main(raw, tiny_vocab, tmp_path / "out") == 2
    assert "no train split: the train split defines the label vocab; give --label_vocab_file" in one_error(capsys)
    assert ner_main(TEST_DATA / "ner", tiny_vocab, tmp_path / "full") == 0
    label_vocab = tmp_path / "full" / "train" / LABEL_VOCAB_FILE
    assert ner_main(raw, tiny_vocab, tmp_path / "out", "--label_vocab_file", str(label_vocab)) == 0
    assert (tmp_path / "out" / "test" / LABEL_VOCAB_FILE).read_text() == label_vocab.read_text()


def test_a_classifier_folder_without_train_needs_the_label_set(tmp_path, tiny_vocab, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(TEST_DATA / "classifier" / "dev.tsv", raw / "dev.tsv")
    assert classifier_main(raw, tiny_vocab, tmp_path / "out") == 2
    assert "no train split: the train split defines the label set; give --labels" in one_error(capsys)
    assert classifier_main(raw, tiny_vocab, tmp_path / "out", "--labels", "0,1") == 0


# --- 7. CSV folders a reader must not take at face value -------------------------------------------


def test_a_meta_dat_entry_outside_its_folder_is_refused(ner_csv, tmp_path):
    split = tmp_path / "train"
    shutil.copytree(ner_csv["train"], split)
    (split / META_FILE).write_text("../../../../../../etc/passwd 3\n")
    with pytest.raises(DataFileError, match=r"meta\.dat:1: '../../../../../../etc/passwd' is outside the folder"):
        NerCsvDataset(split, ner_csv["vocab"], 48)
    (split / META_FILE).write_text("/etc/passwd 3\n")
    with pytest.raises(DataFileError, match=r"meta\.dat:1: '/etc/passwd' is outside the folder"):
        read_classifier_csv(split, 48)


def test_a_folder_of_the_other_task_says_so(ner_csv, classifier_csv):
    with pytest.raises(DataFileError, match="holds another task's data .sequence classification data"):
        NerCsvDataset(classifier_csv["train"], classifier_csv["vocab"], 48)
    with pytest.raises(DataFileError, match="holds another task's data .NER"):
        read_classifier_csv(ner_csv["train"], 48)
    assert json.loads((classifier_csv["train"] / LABEL_VOCAB_FILE).read_text())  # the folder itself is fine
