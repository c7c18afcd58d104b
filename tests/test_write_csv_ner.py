"""write_csv_ner.py: WordPiece ids, X labels, splitting at word boundaries, atomic output, one-line errors."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from data_processing.write_csv_ner import build_parser, convert, main
from modelzoo.common.errors import DataFileError
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.wordpiece import WordPieceTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "data_processing" / "write_csv_ner.py"
UNTYPED_VOCAB = ["[PAD]", "B", "I", "O", "X", "[CLS]", "[SEP]"]
TRAIN = "Selegiline\tB-Chemical\n-\tO\ninduced\tO\nhypotension\tO\n\nNaloxone\tB-Chemical\nreverses\tO\n"
DEV = "Nitroglycerin\tB-Chemical\ninduced\tO\n"


def make_raw(folder: Path, **texts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name.replace("_", ".")).write_bytes(text.encode("utf-8"))
    return folder


def read_rows(split_folder: Path) -> list[dict[str, str]]:
    rows = []
    for line in (split_folder / "meta.dat").read_text().splitlines():
        name, count = line.split()
        with open(split_folder / name, newline="", encoding="utf-8") as handle:
            shard = list(csv.DictReader(handle))
        assert len(shard) == int(count)
        rows.extend(shard)
    return rows


def test_known_sentence_ids_match_from_pretrained(model_folder, vocab_file):
    from transformers import BertTokenizerFast

    words = "Selegiline - induced postural hypotension in Parkinson ' s disease".split()
    reference = BertTokenizerFast.from_pretrained(model_folder)
    expected = reference(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    tokenizer = WordPieceTokenizer(vocab_file, do_lower_case=True)
    (pieces,) = tokenizer.pieces_of_sentences([words])
    ids = [tokenizer.tokenizer.convert_tokens_to_ids(piece) for word in pieces for piece in word]
    assert ids == expected
    assert ids[:6] == [7367, 23115, 18622, 2638, 1011, 10572]  # se ##leg ##ili ##ne - induced
    assert pieces[0] == ["se", "##leg", "##ili", "##ne"]


def test_word_that_normalizes_to_nothing_becomes_unk(vocab_file):
    tokenizer = WordPieceTokenizer(vocab_file, do_lower_case=True)
    assert tokenizer.pieces_of_sentences([["\u200b", "a"]]) == [[["[UNK]"], ["a"]]]


def test_typed_labels_x_on_later_pieces_and_word_index(tmp_path, vocab_file):
    raw = make_raw(tmp_path / "raw", train_tsv=TRAIN, devel_tsv=DEV)
    summary = convert(raw, vocab_file, tmp_path / "out", do_lower_case=True)
    assert [s.name for s in summary.splits] == ["train", "dev"]
    label2id = json.loads((tmp_path / "out/train/label2id.json").read_text())
    assert list(label2id) == ["[PAD]", "B-Chemical", "O", "X", "[CLS]", "[SEP]"]
    assert list(label2id.values()) == list(range(6))
    rows = read_rows(tmp_path / "out/train")
    assert list(rows[0]) == ["tokens", "labels", "sentence_index", "word_index", "document_index"]
    assert rows[0]["tokens"] == "[CLS] se ##leg ##ili ##ne - induced h ##yp ##ote ##ns ##ion [SEP]"
    assert rows[0]["labels"] == "[CLS] B-Chemical X X X O O O X X X X [SEP]"
    assert rows[0]["word_index"] == "-1 0 0 0 0 1 2 3 3 3 3 3 -1"
    assert [row["sentence_index"] for row in rows] == ["0", "1"]
    assert [row["document_index"] for row in rows] == ["0", "0"]  # BLURB has no document marks: one, in file order
    assert (tmp_path / "out/dev/meta.dat").read_text() == "dev-1.csv 1\n"
    assert json.loads((tmp_path / "out/dev/label2id.json").read_text()) == label2id


def test_strip_entity_types_gives_the_cerebras_vocab(tmp_path, vocab_file):
    raw = make_raw(tmp_path / "raw", train_tsv=TRAIN)
    convert(raw, vocab_file, tmp_path / "out", do_lower_case=True, strip_entity_types=True)
    assert list(json.loads((tmp_path / "out/train/label2id.json").read_text())) == UNTYPED_VOCAB
    assert read_rows(tmp_path / "out/train")[1]["labels"] == "[CLS] B X X X O X [SEP]"  # na ##lo ##xon ##e reverse ##s


def test_untyped_raw_labels_work_without_stripping(tmp_path, vocab_file):
    raw = make_raw(tmp_path / "raw", train_tsv="a\tB\nb\tI\nc\tO\n")
    convert(raw, vocab_file, tmp_path / "out", do_lower_case=True)
    assert list(json.loads((tmp_path / "out/train/label2id.json").read_text())) == UNTYPED_VOCAB


def test_long_sentence_splits_at_word_boundaries(tmp_path, vocab_file):
    words = [f"word{i}" for i in range(40)] + ["Selegiline"]
    raw = make_raw(tmp_path / "raw", train_tsv="".join(f"{w}\tO\n" for w in words))
    convert(raw, vocab_file, tmp_path / "out", do_lower_case=True, max_seq_length=8)
    rows = read_rows(tmp_path / "out/train")
    assert len(rows) > 1
    covered = []
    for row in rows:
        tokens, word_index = row["tokens"].split(), [int(i) for i in row["word_index"].split()]
        assert len(tokens) <= 8 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert row["labels"].split()[1] != "X"  # an example never starts inside a word
        assert row["sentence_index"] == "0"
        covered.extend(dict.fromkeys(i for i in word_index if i >= 0))
    assert covered == list(range(len(words)))


def test_word_longer_than_an_example_continues_in_the_next(tmp_path, vocab_file, capsys):
    raw = make_raw(tmp_path / "raw", train_tsv="a\tO\n\nSelegiline\tB-Chemical\n")
    code = main(["--data_dir", str(raw), "--vocab_file", str(vocab_file), "--output_dir", str(tmp_path / "out"),
                 "--do_lower_case", "--max_seq_length", "4"])
    assert code == 0
    assert "(split over several, first piece labelled): train 1" in capsys.readouterr().out
    rows = [row for row in read_rows(tmp_path / "out/train") if row["sentence_index"] == "1"]
    assert [row["labels"] for row in rows] == ["[CLS] B-Chemical X [SEP]", "[CLS] X X [SEP]"]  # 4 pieces, 2 a row
    assert [row["word_index"] for row in rows] == ["-1 0 0 -1", "-1 -1 -1 -1"]  # labelled and scored once


def test_num_output_files_shards_contiguously(tmp_path, vocab_file):
    raw = make_raw(tmp_path / "raw", train_tsv="".join(f"w{i}\tO\n\n" for i in range(10)), dev_tsv="a\tO\n")
    convert(raw, vocab_file, tmp_path / "out", num_output_files=3)
    assert (tmp_path / "out/train/meta.dat").read_text() == "train-1.csv 3\ntrain-2.csv 3\ntrain-3.csv 4\n"
    assert [row["sentence_index"] for row in read_rows(tmp_path / "out/train")] == [str(i) for i in range(10)]
    assert (tmp_path / "out/dev/meta.dat").read_text() == "dev-1.csv 1\n"


def test_rerun_replaces_split_folders_and_leaves_no_staging(tmp_path, vocab_file):
    raw = make_raw(tmp_path / "raw", train_tsv=TRAIN)
    (tmp_path / "out/train").mkdir(parents=True)
    (tmp_path / "out/train/stale.csv").write_text("old")
    (tmp_path / "out/keep.txt").write_text("mine")
    with pytest.raises(DataFileError, match="already holds files .stale.csv.; nothing was written. --overwrite"):
        convert(raw, vocab_file, tmp_path / "out")
    assert (tmp_path / "out/train/stale.csv").read_text() == "old"
    convert(raw, vocab_file, tmp_path / "out", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out/train").iterdir()) == [  # stale.csv: no writer wrote it
        "label2id.json", "meta.dat", "stale.csv", "train-1.csv"
    ]
    assert (tmp_path / "out/keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_crlf_input_gives_the_same_csv(tmp_path, vocab_file):
    convert(make_raw(tmp_path / "lf", train_tsv=TRAIN), vocab_file, tmp_path / "out_lf")
    convert(make_raw(tmp_path / "crlf", train_tsv=TRAIN.replace("\n", "\r\n")), vocab_file, tmp_path / "out_crlf")
    assert read_rows(tmp_path / "out_crlf/train") == read_rows(tmp_path / "out_lf/train")


BAD_INPUTS = {
    "wrong column count": ({"train_tsv": TRAIN + "\nx\tO\textra\n"}, r"train\.tsv:9: expected 2 columns"),
    "empty split file": ({"train_tsv": TRAIN, "test_tsv": "\n"}, r"test\.tsv:1: empty split file"),
    "label of no scheme": ({"train_tsv": "a\tO\nb\tZ-Chemical\n"}, r"train\.tsv:2: label 'Z-Chemical' is not a tag"),
    "BIOES entity never closed": ({"train_tsv": "a\tS-Chemical\nb\tB-Chemical\nc\tO\n"},
                                  r"train\.tsv:3: label 'O' after 'B-Chemical': the BIOES entity before is never closed"),
    "non-UTF-8 bytes": ({"train_tsv": TRAIN, "dev_tsv": b"a\tO\n\n\xff\tO\n"}, r"dev\.tsv:3: not UTF-8"),
    "label unseen in train": ({"train_tsv": TRAIN, "test_tsv": "a\tO\nb\tB-Gene\n"}, r"test\.tsv:2: label 'B-Gene' never"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2_and_nothing_written(tmp_path, vocab_file, capsys, case):
    files, expected = BAD_INPUTS[case]
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (raw / name.replace("_", ".")).write_bytes(data)
    (tmp_path / "out/train").mkdir(parents=True)
    (tmp_path / "out/train/previous.csv").write_text("earlier run")
    code = main(["--data_dir", str(raw), "--vocab_file", str(vocab_file), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert re.search(expected, err), err
    assert [p.name for p in (tmp_path / "out/train").iterdir()] == ["previous.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_missing_vocab_file_is_one_line_error(tmp_path, capsys):
    raw = make_raw(tmp_path / "raw", train_tsv=TRAIN)
    code = main(["--data_dir", str(raw), "--vocab_file", str(tmp_path / "nope.txt"), "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.txt'}: vocab file not found"
    assert not (tmp_path / "out").exists()


def test_every_flag_is_documented_in_help():
    help_text = build_parser().format_help()
    options = [action for action in build_parser()._actions if action.option_strings]
    for action in options:
        assert action.help, action.option_strings
        assert action.option_strings[0] in help_text
    assert {"--data_dir", "--dataset", "--vocab_file", "--output_dir", "--do_lower_case", "--max_seq_length",
            "--format", "--strip_entity_types", "--num_output_files"} <= {a.option_strings[0] for a in options}


def test_script_runs_from_any_folder(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--strip_entity_types" in result.stdout


# --- real data: every raw word labelled exactly once and spelled back by its pieces --------------------


def raw_sentences(path: Path) -> list[list[tuple[str, str]]]:
    """An independent reader (not ner_raw): word = first column, label = last, blank line ends a sentence."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        current.append((line.split("\t")[0] if "\t" in line else fields[0], fields[-1]))
    if current:
        sentences.append(current)
    return sentences


def check_split_against_raw(split_folder: Path, raw_file: Path, normalize, strip_types: bool = False) -> int:
    """Assert each raw word appears once with its label on the first piece, X after, and spells back."""
    sentences = raw_sentences(raw_file)
    pieces_of_word: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for row in read_rows(split_folder):
        tokens, labels = row["tokens"].split(" "), row["labels"].split(" ")
        word_index = [int(i) for i in row["word_index"].split(" ")]
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and labels[0] == "[CLS]" and labels[-1] == "[SEP]"
        assert word_index[0] == word_index[-1] == -1
        seen_in_row = set()
        for token, label, index in zip(tokens[1:-1], labels[1:-1], word_index[1:-1], strict=True):
            key = (int(row["sentence_index"]), index)
            assert key not in pieces_of_word or index in seen_in_row, f"word {key} in two examples"
            seen_in_row.add(index)
            pieces_of_word.setdefault(key, []).append((token, label))
    expected_keys = {(s, w) for s, words in enumerate(sentences) for w in range(len(words))}
    assert set(pieces_of_word) == expected_keys
    for (sentence, word), pieces in pieces_of_word.items():
        raw_word, raw_label = sentences[sentence][word]
        assert pieces[0][1] == (raw_label.split("-")[0] if strip_types else raw_label)
        assert all(label == "X" for _, label in pieces[1:])
        spelled = "".join(token.removeprefix("##") for token, _ in pieces)
        if spelled == raw_word.lower():
            continue
        target = "".join(normalize(raw_word).split())  # accents stripped, control characters dropped
        if "[UNK]" in spelled:
            pattern = ".+".join(re.escape(part) for part in spelled.split("[UNK]"))
            assert re.fullmatch(pattern, target), (raw_word, spelled)
        else:
            assert spelled == target, (raw_word, spelled)
    return len(sentences)


@pytest.fixture(scope="module")
def lower_case_normalizer(vocab_file):
    """BERT's uncased normalization: lower case, accents stripped (what '--do_lower_case' promises)."""
    return WordPieceTokenizer(vocab_file, do_lower_case=True).tokenizer.backend_tokenizer.normalizer.normalize_str


def test_bc5cdr_all_splits_convert_and_cover_every_word(shared_data, tmp_path, vocab_file, lower_case_normalizer):
    raw = shared_data / "bc5cdr-chem"
    summary = convert(raw, vocab_file, tmp_path / "out", do_lower_case=True)
    assert {s.name: s.sentences for s in summary.splits} == {"train": 4560, "dev": 4581, "test": 4797}
    for split, raw_name in (("train", "train.tsv"), ("dev", "devel.tsv"), ("test", "test.tsv")):
        assert check_split_against_raw(tmp_path / "out" / split, raw / raw_name, lower_case_normalizer) > 4000


def test_conll2003_dataset_flag_converts_and_covers_every_word(tmp_path, vocab_file, lower_case_normalizer, capsys):
    code = main(["--dataset", "conll2003", "--vocab_file", str(vocab_file), "--output_dir", str(tmp_path / "out"),
                 "--do_lower_case", "--strip_entity_types"])
    report = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^train\s+conll\s+14041\s", report, re.M)
    assert re.search(r"^wrote .* in \d+\.\d+ s$", report, re.M)
    raw = conll2003_dir()
    counts = [
        check_split_against_raw(tmp_path / "out" / split, raw / name, lower_case_normalizer, strip_types=True)
        for split, name in (("train", "train.txt"), ("dev", "valid.txt"), ("test", "test.txt"))
    ]
    assert counts == [14041, 3250, 3453]
