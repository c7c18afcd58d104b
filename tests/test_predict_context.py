"""Prediction with document context and overlap: a line of any length in windows overlapping by the
context size, each word read once, at the window where it sits furthest from an edge, in batches no
larger than eval_input's; --input_format documents frames each sentence as training did; the engines
and int8 take the same rows; the exported model card says what a pipeline loses."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from data_processing.write_csv_ner import convert
from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import BertForTokenClassification
from modelzoo.cli.main import main as run_main
from modelzoo.common.device import DeviceSetup
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.heads.token_classification.predictor import predict_lines
from modelzoo.heads.token_classification.tagger import WordTagger
from modelzoo.predict.input_lines import document_chunks
from tests.export_runs import VOCAB, export_checkpoint, ner_params, train, write_params

LABELS = ["[PAD]", "B-LOC", "I-LOC", "O", "X", "[CLS]", "[SEP]"]
CONTEXT = 8
ROW = 34  # 32 pieces: cores of 16 pieces, 8 of context on each side
BATCH = 4
PLANTED = 159  # the last word of a 32-piece window without overlap, and of a 16-piece core


class Recorder:
    """Every batch the tagger hands its model: the rows and the probabilities they got."""

    def __init__(self, monkeypatch) -> None:
        self.batches: List[tuple] = []
        predict = WordTagger._predict

        def recording(tagger, batch):
            result = predict(tagger, batch)
            self.batches.append((batch, *result))
            return result

        monkeypatch.setattr(WordTagger, "_predict", recording)


def random_tagger(context_tokens: int) -> WordTagger:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=169, hidden_size=32, num_hidden_layers=2, num_heads=2, filter_size=64,
                        num_classes=len(LABELS), max_position_embeddings=64, dropout_rate=0.0, attention_dropout_rate=0.0)
    return WordTagger(BertForTokenClassification(config), str(VOCAB), LABELS, ROW, BATCH,
                      DeviceSetup(torch.device("cpu"), "float32"), True, context_tokens)


def filler_words(count: int) -> List[str]:
    """``count`` one-piece words of the test vocab, ``paris`` (a piece of its own) only at ``PLANTED``."""
    vocab = [w for w in VOCAB.read_text(encoding="utf-8").split() if w.isalpha() and w.islower() and w != "paris"]
    words = random.Random(1).choices(vocab, k=count)
    words[PLANTED] = "paris"
    return words


def test_a_5000_word_line_is_tagged_once_per_word_in_bounded_batches_each_word_where_it_is_central(monkeypatch):
    recorder = Recorder(monkeypatch)
    tagger = random_tagger(CONTEXT)
    words = filler_words(5000)
    tags, scores = tagger.tag([words])
    assert len(tags[0]) == len(scores[0]) == 5000 and "" not in tags[0]
    read = sorted(row.first_word + i for batch, _, _ in recorder.batches for row in batch
                  for i in range(len(row.first_pieces)))
    assert read == list(range(5000))  # every word read at exactly one row
    for batch, _, _ in recorder.batches:  # memory: no batch beyond eval_input's tokens, whatever the line's length
        assert len(batch) * max(len(row.ids) for row in batch) <= BATCH * ROW
    paris = tagger.vocab["paris"]
    windows = []  # (distance of the planted word to the row's nearer edge, its probability there)
    for batch, _, probabilities in recorder.batches:
        for row, probability in zip(batch, probabilities):
            for position in np.flatnonzero(np.asarray(row.ids) == paris):
                windows.append((min(position, len(row.ids) - 1 - position), float(probability[position])))
    assert len(windows) >= 2  # overlapping windows: it is read in its core and seen in a neighbour's context
    furthest = max(distance for distance, _ in windows)
    assert furthest >= CONTEXT
    assert scores[0][PLANTED] in [probability for distance, probability in windows if distance == furthest]


def test_without_context_the_same_word_sits_at_a_window_edge(monkeypatch):
    recorder = Recorder(monkeypatch)
    tagger = random_tagger(0)
    tagger.tag([filler_words(5000)])
    paris = tagger.vocab["paris"]
    rows = [row.ids for batch, _, _ in recorder.batches for row in batch if paris in row.ids]
    assert len(rows) == 1 and rows[0].index(paris) == len(rows[0]) - 2  # right before [SEP]: why overlap matters


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """Two CoNLL documents of three sentences, as raw lines and as the CSV training reads."""
    root = tmp_path_factory.mktemp("predict_documents")
    sentences = [["kofi", "annan", "met", "angela", "merkel", "in", "berlin"], ["nothing", "happened", "today"],
                 ["paris", "and", "lisbon", "signed", "the", "talks"], ["acme", "shares", "rose", "sharply"],
                 ["fifa", "fans", "watched", "the", "match", "in", "kyoto"], ["the", "united", "nations", "said"]]
    lines, conll = [], []
    for number, words in enumerate(sentences):
        if number % 3 == 0:
            conll += ["-DOCSTART- -X- -X- O", ""]
            lines += [""] if number else []
        lines.append(" ".join(words))
        conll += [f"{word} NN O O" for word in words] + [""]
    (root / "raw").mkdir()
    (root / "raw" / "train.txt").write_text("\n".join(conll), encoding="utf-8")
    convert(root / "raw", VOCAB, root / "csv", max_seq_length=ROW)
    return lines, root / "csv" / "train"


def test_documents_are_framed_as_training_frames_them(documents, monkeypatch):
    lines, csv_folder = documents
    recorder = Recorder(monkeypatch)
    tagger = random_tagger(CONTEXT)
    predictions = predict_lines(tagger, lines, pretokenized=True, documents=True)
    assert len(predictions) == 6
    served = sorted(tuple(row.ids) for batch, _, _ in recorder.batches for row in batch)
    trained = NerCsvDataset(csv_folder, VOCAB, ROW, context_tokens=CONTEXT)
    rows = sorted(tuple(trained.example_features["input_ids"][i, :n].tolist()) for i, n in enumerate(trained.lengths))
    assert served == rows
    assert any(len(row) > 2 + 7 for row in rows)  # framed: longer than the longest sentence alone
    alone = predict_lines(tagger, lines, pretokenized=True, documents=False)
    assert [p.word_scores for p in alone] != [p.word_scores for p in predictions]  # context changes what the model sees


def test_document_chunks_end_at_blank_lines_only():
    lines = list(enumerate(["a", "b", "", "c", "d", "e", "", "f"], start=1))
    assert [[number for number, _ in chunk] for chunk in document_chunks(iter(lines), 2)] == [[1, 2, 3], [4, 5, 6, 7], [8]]


@pytest.fixture(scope="module")
def context_run(ner_csv, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("context_run")
    params = ner_params(ner_csv, root / "run")
    for section in ("train_input", "eval_input"):
        params[section]["context_tokens"] = CONTEXT
    train(write_params(root / "params.yaml", params))
    return root / "run"


def predicted(run: Path, tmp_path: Path, name: str, *args: str) -> List[dict]:
    output = tmp_path / f"{name}.jsonl"
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(run), "--input", str(tmp_path / "in.txt"),
                     "--output", str(output), *args]) == 0
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def test_documents_and_long_lines_through_every_engine_and_the_card(context_run, documents, tmp_path, capsys):
    lines, _ = documents
    long_line = " ".join(filler_words(400))
    (tmp_path / "in.txt").write_text("\n".join(lines + ["", long_line]) + "\n", encoding="utf-8")
    checkpoint = ["--checkpoint_path", str(context_run / "checkpoint_40.mdl")]
    torch_records = predicted(context_run, tmp_path, "torch", "--input_format", "documents", "--engine", "torch",
                              *checkpoint)
    assert len(torch_records) == 7 and len(torch_records[-1]["words"]) == 400
    int8 = predicted(context_run, tmp_path, "int8", "--input_format", "documents", "--quantize", "int8", *checkpoint)
    assert [r["words"] for r in int8] == [r["words"] for r in torch_records]
    pytest.importorskip("onnxruntime")
    onnx = export_checkpoint(context_run, "onnx", tmp_path / "onnx")
    onnx_records = predicted(context_run, tmp_path, "onnx", "--input_format", "documents", "--engine", "onnxruntime",
                             "--checkpoint_path", str(onnx))
    assert [r["words"] for r in onnx_records] == [r["words"] for r in torch_records]
    for records in (int8, onnx_records):  # the same rows reach every engine: tags agree but for rounding's few
        agree = sum(a == b for ours, theirs in zip(records, torch_records) for a, b in zip(ours["tags"], theirs["tags"]))
        assert agree >= 0.98 * sum(len(record["tags"]) for record in torch_records)
    card = (export_checkpoint(context_run, "hf", tmp_path / "hf") / "README.md").read_text(encoding="utf-8")
    assert f"Trained with document context: each sentence read with up to {CONTEXT} word pieces" in card
    assert "`transformers` pipeline tags each text alone, without that context" in card


def test_resume_is_refused_with_documents(context_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("kofi annan\n", encoding="utf-8")
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(context_run), "--input", str(tmp_path / "in.txt"),
                     "--output", str(tmp_path / "o.jsonl"), "--resume", "--input_format", "documents"])
    assert code == 2 and "--input_format documents" in capsys.readouterr().err
