"""write_csv_ner.py on doccano/spaCy JSONL, Label Studio, BRAT, Hugging Face datasets and BIOES/BILOU tags.

Every check reads the written CSV back through the training reader (NerCsvDataset.word_labels), so
what is asserted is what a model would train on. Every bad input is one ``error: FILE:RECORD:``
line, exit code 2, and nothing written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from data_processing.ner_alignment import AlignmentOptions
from data_processing.ner_sources import ReadOptions, find_splits
from data_processing.write_csv_ner import convert, main
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.data.raw_words import split_words
from modelzoo.data.vocab import build_label_vocab

MAX_LENGTH = 48


def write_files(folder: Path, files: dict) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (list, dict)):
            content = json.dumps(content)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def run(raw: Path, vocab: Path, out: Path, *extra: str) -> int:
    return main(["--data_dir", str(raw), "--vocab_file", str(vocab), "--output_dir", str(out), "--do_lower_case", *extra])


def word_labels(split: Path, vocab: Path) -> list:
    return NerCsvDataset(split, vocab, MAX_LENGTH).word_labels()


def words_and_labels(split: Path, vocab: Path, texts: list, pretokenized: bool = False) -> list:
    """Each record's words (the prediction splitter's) paired with the labels the CSV gives them."""
    labels = word_labels(split, vocab)
    return [list(zip([w.text for w in split_words(text, pretokenized)], tags, strict=True))
            for text, tags in zip(texts, labels, strict=True)]


# --- reading each format ----------------------------------------------------------------------------


def test_doccano_and_spacy_style_records_become_iob2_on_the_prediction_words(tmp_path, tiny_vocab, capsys):
    texts = ["Peter Blackburn met the EU in Brussels.", "no entity here", "Kofi Annan said"]
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl(
        {"text": texts[0], "label": [[0, 15, "PER"], [24, 26, "ORG"], [30, 38, "LOC"]]},
        {"text": texts[1], "label": []},
        {"text": texts[2], "entities": [{"start_offset": 0, "end_offset": 10, "label": "PER"}]},
    )})
    assert run(raw, tiny_vocab, tmp_path / "out") == 0
    assert "train jsonl" in capsys.readouterr().out.replace("  ", " ")
    assert words_and_labels(tmp_path / "out/train", tiny_vocab, texts) == [
        [("Peter", "B-PER"), ("Blackburn", "I-PER"), ("met", "O"), ("the", "O"), ("EU", "B-ORG"), ("in", "O"),
         ("Brussels", "B-LOC"), (".", "O")],
        [("no", "O"), ("entity", "O"), ("here", "O")],
        [("Kofi", "B-PER"), ("Annan", "I-PER"), ("said", "O")],
    ]


def test_spans_key_with_start_end_objects(tmp_path, tiny_vocab):
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": "a bc", "spans": [{"start": 2, "end": 4, "label": "X"}]})})
    convert(raw, tiny_vocab, tmp_path / "out", do_lower_case=True)
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["O", "B-X"]]


def test_a_mid_word_span_is_expanded_to_the_whole_word_kept_and_counted(tmp_path, tiny_vocab, capsys):
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": "the Berliner said", "label": [[4, 10, "LOC"]]})})
    assert run(raw, tiny_vocab, tmp_path / "out") == 0
    assert "train spans grown to whole words: 1, shrunk to whole words: 0" in capsys.readouterr().out
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["O", "B-LOC", "O"]]


def test_contract_keeps_whole_words_and_counts_a_span_without_one_as_dropped(tmp_path, tiny_vocab, capsys):
    text = "New Yorkers and Bostonians"
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": text, "label": [[0, 8, "LOC"], [16, 22, "LOC"]]})})
    assert run(raw, tiny_vocab, tmp_path / "out", "--span_alignment", "contract") == 0
    report = capsys.readouterr().out
    assert "train spans grown to whole words: 0, shrunk to whole words: 1" in report
    assert "train spans dropped: no whole word inside (--span_alignment contract) 1" in report
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["B-LOC", "O", "O", "O"]]
    assert "train entities: LOC 1" in report


def test_keep_longest_resolves_nested_spans_and_counts_the_other(tmp_path, tiny_vocab, capsys):
    text = "Bank of England staff"
    spans = [[0, 15, "ORG"], [8, 15, "LOC"], [0, 15, "ORG"]]
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": text, "label": spans})})
    assert run(raw, tiny_vocab, tmp_path / "out", "--overlapping", "keep_longest") == 0
    report = capsys.readouterr().out
    assert "overlaps a longer span (--overlapping keep_longest) 1" in report
    assert "repeats another span (same words, same label) 1" in report
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["B-ORG", "I-ORG", "I-ORG", "O"]]


def test_a_record_longer_than_an_example_is_windowed_not_truncated(tmp_path, tiny_vocab):
    text = " ".join(["word"] * 60 + ["Annan"])
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": text, "label": [[len(text) - 5, len(text), "PER"]]})})
    summary = convert(raw, tiny_vocab, tmp_path / "out", do_lower_case=True, max_seq_length=16)
    assert summary.splits[0].examples > 1
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["O"] * 60 + ["B-PER"]]


def test_pretokenized_words_are_the_whitespace_fields(tmp_path, tiny_vocab):
    text = "U.S. troops"
    raw = write_files(tmp_path / "raw", {"train.jsonl": jsonl({"text": text, "label": [[0, 4, "LOC"]]})})
    options = ReadOptions(alignment=AlignmentOptions(pretokenized=True))
    convert(raw, tiny_vocab, tmp_path / "out", read_options=options)
    assert words_and_labels(tmp_path / "out/train", tiny_vocab, [text], pretokenized=True) == [[("U.S.", "B-LOC"), ("troops", "O")]]
    convert(raw, tiny_vocab, tmp_path / "split")
    assert word_labels(tmp_path / "split/train", tiny_vocab) == [["B-LOC", "I-LOC", "I-LOC", "I-LOC", "O"]]


def labelstudio_task(task_id, text, annotations=None, predictions=None, **data):
    task = {"id": task_id, "data": {"text": text, **data}, "annotations": annotations or []}
    if predictions is not None:
        task["predictions"] = predictions
    return task


def labels_result(start, end, text, label, result_id="r"):
    return {"id": result_id, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def test_labelstudio_reads_the_latest_non_cancelled_annotation_or_the_predictions(tmp_path, tiny_vocab, capsys):
    text = "Kofi Annan visited Ghana"
    tasks = [
        labelstudio_task(1, text, annotations=[
            {"id": 1, "updated_at": "2024-01-02T00:00:00Z", "result": [labels_result(0, 10, text, "PER")]},
            {"id": 2, "updated_at": "2024-01-03T00:00:00Z", "was_cancelled": True, "result": []},
            {"id": 3, "updated_at": "2024-01-01T00:00:00Z", "result": []},
        ], predictions=[{"result": [labels_result(19, 24, text, "LOC")]}]),
        labelstudio_task(2, "not annotated yet"),
        labelstudio_task(3, text, annotations=[{"id": 4, "result": [
            labels_result(19, 24, text, "LOC"), {"type": "choices", "value": {"choices": ["news"]}}]}]),
    ]
    raw = write_files(tmp_path / "raw", {"train.json": tasks})
    assert run(raw, tiny_vocab, tmp_path / "out") == 0
    assert "train not used: results of type choices 1, tasks without annotations 1" in capsys.readouterr().out
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["B-PER", "I-PER", "O", "O"], ["O", "O", "O", "B-LOC"]]
    assert run(raw, tiny_vocab, tmp_path / "pred", "--format", "labelstudio", "--use_predictions") == 0
    assert word_labels(tmp_path / "pred/train", tiny_vocab) == [["O", "O", "O", "B-LOC"]]


def test_labelstudio_utf16_offsets_after_an_emoji_are_converted(tmp_path, tiny_vocab):
    text = "\U0001F600 Kofi Annan"
    result = labels_result(3, 13, "x" * 20, "PER")  # a browser counts the emoji as two UTF-16 units
    result["value"]["text"] = "Kofi Annan"
    raw = write_files(tmp_path / "raw", {"train.json": [labelstudio_task(1, text, annotations=[{"result": [result]}])]})
    convert(raw, tiny_vocab, tmp_path / "out")
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [["O", "B-PER", "I-PER"]]


def test_labelstudio_text_key_picks_the_field(tmp_path, tiny_vocab, capsys):
    task = labelstudio_task(1, "a b", annotations=[{"result": []}], title="x")
    raw = write_files(tmp_path / "raw", {"train.json": [task]})
    assert run(raw, tiny_vocab, tmp_path / "out") == 2
    assert "task 0 (id 1): cannot tell which field of data is the text (string fields: text, title)" in capsys.readouterr().err
    assert run(raw, tiny_vocab, tmp_path / "out", "--text_key", "title", "--label_vocab_file", str(label_vocab(tmp_path))) == 0


def label_vocab(tmp_path: Path) -> Path:
    path = tmp_path / "label2id.json"
    path.write_text(json.dumps(build_label_vocab(["O", "B-PER", "I-PER"])))
    return path


def test_brat_documents_discontinuous_spans_and_relations_are_counted(tmp_path, tiny_vocab, capsys):
    text = "Selegiline and L-dopa\ninduced hypotension\n"
    ann = ("T1\tChemical 0 10\tSelegiline\nT2\tChemical 15 21\tL-dopa\nT3\tDisease 0 7;30 41\tSeleg hypotension\n"
           "R1\tInteracts Arg1:T1 Arg2:T2\nA1\tNegated T2\n#1\tAnnotatorNotes T1\tchecked\n")
    raw = write_files(tmp_path / "raw", {"train/a.txt": text, "train/a.ann": ann, "train/b.txt": "no entity", "train/b.ann": ""})
    assert run(raw, tiny_vocab, tmp_path / "out") == 0
    report = capsys.readouterr().out
    assert "train spans dropped: discontinuous entities (BRAT fragments; word tags hold one run of words) 1" in report
    assert "train not used: attributes 1, notes 1, relations 1" in report
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [
        ["B-Chemical", "O", "B-Chemical", "I-Chemical", "I-Chemical", "O", "O"], ["O", "O"]]


def test_hf_saved_dataset_dict_with_class_labels_and_string_tag_files(tmp_path, tiny_vocab):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    names = ["O", "B-PER", "E-PER", "S-LOC"]
    features = Features({"words": List(Value("string")), "tags": List(ClassLabel(names=names))})
    table = Dataset.from_dict({"words": [["-DOCSTART-"], ["Kofi", "Annan", "in", "Accra"]], "tags": [[0], [1, 2, 0, 3]]},
                              features=features)
    DatasetDict({"train": table, "validation": table}).save_to_disk(str(tmp_path / "saved"))
    convert(tmp_path / "saved", tiny_vocab, tmp_path / "out", read_options=ReadOptions(columns=_columns("words", "tags")))
    assert word_labels(tmp_path / "out/dev", tiny_vocab) == [["B-PER", "I-PER", "O", "B-LOC"]]
    (tmp_path / "files").mkdir()
    table.to_parquet(str(tmp_path / "files" / "train.parquet"))
    (tmp_path / "files" / "dev.jsonl").write_text(jsonl({"words": ["-DOCSTART-"], "tags": ["O"]}, {"words": ["Annan"], "tags": ["S-PER"]}))
    (tmp_path / "files" / "test.csv").write_text("words,tags\n\"['Annan' 'spoke']\",\"['S-PER' 'O']\"\n")
    assert [s.file_format for s in find_splits(tmp_path / "files")] == ["hf", "hf", "hf"]
    summary = convert(tmp_path / "files", tiny_vocab, tmp_path / "out_files",
                      read_options=ReadOptions(columns=_columns("words", "tags")))
    assert [dict(split.counts.not_used) for split in summary.splits] == [
        {"-DOCSTART- rows (document markers)": 1}] * 2 + [{}]
    assert word_labels(tmp_path / "out_files/train", tiny_vocab) == [["B-PER", "I-PER", "O", "B-LOC"]]
    assert word_labels(tmp_path / "out_files/dev", tiny_vocab) == [["B-PER"]]
    assert word_labels(tmp_path / "out_files/test", tiny_vocab) == [["B-PER", "O"]]


def _columns(tokens: str, tags: str):
    from data_processing.ner_hf import HfColumns

    return HfColumns(tokens, tags)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC"]),
        (["U-PER", "O", "B-LOC", "I-LOC", "L-LOC"], ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC"]),
    ],
    ids=["bioes", "bilou"],
)
def test_bioes_and_bilou_are_detected_and_written_as_iob2(tmp_path, tiny_vocab, capsys, tags, expected):
    words = ["kofi", "in", "new", "york", "city"]
    raw = write_files(tmp_path / "raw", {"train.tsv": "".join(f"{w}\t{t}\n" for w, t in zip(words, tags, strict=True))})
    assert run(raw, tiny_vocab, tmp_path / "out") == 0
    scheme = "bioes" if "S-PER" in tags else "bilou"
    assert f"tag scheme {scheme} (detected): 2 tags rewritten to IOB2" in capsys.readouterr().out
    assert word_labels(tmp_path / "out/train", tiny_vocab) == [expected]


# --- bad input: one line naming file and record, exit 2, nothing written ----------------------------

TEXT = "Kofi Annan met the EU"
BAD_INPUTS = {
    "jsonl: not JSON": ({"train.jsonl": jsonl({"text": TEXT, "label": []}) + "{oops\n"}, (), r"train\.jsonl:2: not a JSON object"),
    "jsonl: no text": ({"train.jsonl": jsonl({"label": []})}, ("--format", "jsonl"), r"train\.jsonl:1: expected a JSON object with a string 'text'"),
    "jsonl: no span key": ({"train.jsonl": jsonl({"text": TEXT})}, (), r"train\.jsonl:1: no spans: expected one of label"),
    "jsonl: bad offsets": ({"train.jsonl": jsonl({"text": TEXT, "label": [["0", 4, "PER"]]})}, (),
                           r"train\.jsonl:1: span 1: start and end must be integers"),
    "empty span": ({"train.jsonl": jsonl({"text": TEXT, "label": [[4, 4, "PER"]]})}, (),
                   r"train\.jsonl:1: span 1 \[4, 4\) PER: empty span"),
    "whitespace-only span": ({"train.jsonl": jsonl({"text": TEXT, "label": [[4, 5, "PER"]]})}, (),
                             r"train\.jsonl:1: span 1 \[4, 5\) PER ' ': the span holds only whitespace"),
    "end beyond the text": ({"train.jsonl": jsonl({"text": TEXT, "label": [[19, 30, "ORG"]]})}, (),
                            r"train\.jsonl:1: span 1 \[19, 30\) ORG: ends beyond the text \(21 characters\)"),
    "label with a space": ({"train.jsonl": jsonl({"text": TEXT, "label": [[0, 4, "A PER"]]})}, (),
                           r"train\.jsonl:1: span 1 \[0, 4\) A PER 'Kofi': the label must be one word"),
    "overlapping spans": ({"train.jsonl": jsonl({"text": TEXT, "label": [[0, 10, "PER"], [5, 10, "ORG"]]})}, (),
                          r"train\.jsonl:1: span 2 \[5, 10\) ORG 'Annan': overlaps span 1 'Kofi Annan' PER"),
    "mid-word span under strict": ({"train.jsonl": jsonl({"text": TEXT, "label": [[0, 3, "PER"]]})},
                                   ("--span_alignment", "strict"),
                                   r"train\.jsonl:1: span 1 \[0, 3\) PER 'Kof': ends inside the word 'Kofi'"),
    "label not in the label vocab": ({"train.jsonl": jsonl({"text": TEXT, "label": [[19, 21, "ORG"]]})}, ("VOCAB",),
                                     r"train\.jsonl:1: span 1 \[19, 21\) ORG 'EU': label 'ORG' never occurs in the label vocab"),
    "dev label unseen in train": ({"train.jsonl": jsonl({"text": TEXT, "label": [[0, 10, "PER"]]}),
                                   "dev.jsonl": jsonl({"text": TEXT, "label": []}, {"text": TEXT, "label": [[19, 21, "ORG"]]})},
                                  (), r"dev\.jsonl:2: span 1 \[19, 21\) ORG 'EU': label 'ORG' never occurs in the train split"),
    "labelstudio: offsets off the text": (
        {"train.json": [labelstudio_task(7, TEXT, annotations=[{"result": [labels_result(0, 10, "Kofi Annan and", "PER")]}]),
                        labelstudio_task(8, TEXT, annotations=[{"result": [dict(labels_result(0, 10, TEXT, "PER"),
                                                                                  value={"start": 1, "end": 11, "text": "Kofi Annan", "labels": ["PER"]})]}])]},
        (), r"train\.json:task 1 \(id 8\): result r: the text at \[1, 11\) is 'ofi Annan ', the result says 'Kofi Annan'"),
    "labelstudio: overlap names the task": (
        {"train.json": [labelstudio_task(9, TEXT, annotations=[{"result": [
            labels_result(0, 10, TEXT, "PER", "a"), labels_result(0, 4, TEXT, "PER", "b")]}])]},
        (), r"train\.json:task 0 \(id 9\): result b \[0, 4\) PER 'Kofi': overlaps result a 'Kofi Annan' PER"),
    "labelstudio: not a list": ({"train.json": {"data": {}}}, ("--format", "labelstudio"),
                                r"train\.json: expected a JSON list of tasks"),
    "brat: text mismatch": ({"train/a.txt": TEXT, "train/a.ann": "T1\tPER 0 10\tKofi Annan\nT2\tORG 18 21\tEU\n"}, (),
                            r"train/a\.ann:T2: the text at \[18, 21\) is ' EU', the \.ann says 'EU'"),
    "brat: end beyond the text": ({"train/a.txt": TEXT, "train/a.ann": "T5\tORG 19 40\tEU\n"}, (),
                                  r"train/a\.ann:T5: \[19, 40\) ORG: ends beyond the text"),
    "brat: missing .ann": ({"train/a.txt": TEXT, "train/a.ann": "", "train/b.txt": TEXT}, ("--format", "brat"),
                           r"train/b\.txt: no b\.ann beside it"),
    "brat: bad line": ({"train/a.txt": TEXT, "train/a.ann": "T1\tPER zero 10\tKofi\n"}, (),
                       r"train/a\.ann:T1: expected 'TYPE START END'"),
    "hf: integer tags without names": ({"train.jsonl": jsonl({"tokens": ["a"], "ner_tags": [0]})}, ("--format", "hf"),
                                       r"train\.jsonl:row 0: ner_tags: integer tags without names"),
    "hf: words and tags differ in length": ({"train.jsonl": jsonl({"tokens": ["a", "b"], "ner_tags": ["O"]})}, (),
                                            r"train\.jsonl:row 0: 2 words but 1 tags"),
    "hf: unreadable parquet": ({"train.parquet": b"PAR1"}, (), r"train\.parquet: cannot load it with datasets"),
    "hf: column missing": ({"train.jsonl": jsonl({"words": ["a"], "ner_tags": ["O"]})}, ("--format", "hf"),
                           r"train\.jsonl: no column 'tokens' \(columns: words, ner_tags\); --tokens_column"),
    "bioes mixed with bilou": ({"train.tsv": "a\tS-X\nb\tU-X\n"}, (), r"raw: tags with S \(BIOES\) and U \(BILOU\) prefixes"),
    "bioes E without B": ({"train.tsv": "a\tO\nb\tE-X\nc\tS-X\n"}, (), r"train\.tsv:2: label 'E-X' after 'O' continues no BIOES entity"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_file_and_record_and_writes_nothing(tmp_path, tiny_vocab, capsys, case):
    files, extra, expected = BAD_INPUTS[case]
    raw = write_files(tmp_path / "raw", files)
    if "VOCAB" in extra:
        extra = ("--label_vocab_file", str(label_vocab(tmp_path)))
    (tmp_path / "out").mkdir()
    assert run(raw, tiny_vocab, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(expected, err), err
    assert str(raw) in err
    assert list((tmp_path / "out").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "label2id.json") == ["out", "raw"]  # no staging left
