"""Document context (train_input/eval_input.context_tokens): each example framed by the pieces of its
document's neighbouring sentences, never another document's, with no label, loss, word or score there;
context 0 reads as before; packed rows give the unpacked rows' logits; the IPU keeps its fixed shapes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from data_processing.write_csv_ner import convert
from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import BertForTokenClassification
from modelzoo.cli import main as cli
from modelzoo.common.errors import DataFileError
from modelzoo.data.csv_layout import DOCUMENT_COLUMN, NO_WORD
from modelzoo.data.labels import PAD_LABEL
from modelzoo.data.ner_dataset import MODEL_INPUT_KEYS, NerCsvDataset
from modelzoo.metrics import first_piece_words, flatten_examples, score_words
from tests.poptorch_standin import StandinExecutor, StandinPoptorch
from tests.run_fixtures import MAX_SEQUENCE_LENGTH, tiny_params, write_params

SENTENCES_PER_DOCUMENT = 4
CONTEXT = 6


def conll_sentences(tsv: Path) -> List[List[List[str]]]:
    """The sentences of a ``word<TAB>label`` file as lists of [word, label]."""
    blocks = tsv.read_text(encoding="utf-8").strip().split("\n\n")
    return [[line.split("\t") for line in block.splitlines()] for block in blocks]


@pytest.fixture(scope="module")
def documents_csv(ner_csv, tmp_path_factory) -> Path:
    """The synthetic train sentences as CoNLL-2003 documents of 4 sentences (-DOCSTART- lines), as CSV."""
    root = tmp_path_factory.mktemp("documents")
    (root / "raw").mkdir()
    lines = []
    for number, sentence in enumerate(conll_sentences(ner_csv["raw"] / "train.tsv")):
        if number % SENTENCES_PER_DOCUMENT == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{word} NN O {label}" for word, label in sentence] + [""]
    (root / "raw" / "train.txt").write_text("\n".join(lines), encoding="utf-8")
    convert(root / "raw", ner_csv["vocab"], root / "csv", do_lower_case=True, max_seq_length=MAX_SEQUENCE_LENGTH)
    return root / "csv" / "train"


def read(folder: Path, vocab: Path, context: int, packed: bool = False) -> NerCsvDataset:
    return NerCsvDataset(folder, vocab, MAX_SEQUENCE_LENGTH, max_sequences_per_pack=4 if packed else None,
                         context_tokens=context)


def csv_rows(folder: Path) -> List[Dict[str, str]]:
    with open(next(folder.glob("*.csv")), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def body_and_context(dataset: NerCsvDataset, row: int):
    """The example's own pieces and its left and right context pieces (token ids, in order)."""
    features = dataset.example_features
    length = int(dataset.lengths[row])
    ids, labels = features["input_ids"][row, 1 : length - 1], features["labels"][row, 1 : length - 1]
    is_context = labels == dataset.label2id[PAD_LABEL]
    own = np.flatnonzero(~is_context)
    return ids[own].tolist(), ids[: own[0]].tolist(), ids[own[-1] + 1 :].tolist()


def test_context_is_the_neighbouring_pieces_of_the_same_document_only(documents_csv, ner_csv):
    documents = [int(row[DOCUMENT_COLUMN]) for row in csv_rows(documents_csv)]
    assert documents == [n // SENTENCES_PER_DOCUMENT for n in range(len(documents))]  # one per -DOCSTART-
    plain, framed = read(documents_csv, ner_csv["vocab"], 0), read(documents_csv, ner_csv["vocab"], CONTEXT)
    bodies = [body_and_context(plain, row)[0] for row in range(len(plain))]
    full_sides = 0
    for row, document in enumerate(documents):
        own, left, right = body_and_context(framed, row)
        assert own == bodies[row]
        same = [r for r, d in enumerate(documents) if d == document]
        before = [piece for r in same if r < row for piece in bodies[r]]
        after = [piece for r in same if r > row for piece in bodies[r]]
        assert len(left) <= CONTEXT and len(right) <= CONTEXT and framed.lengths[row] <= MAX_SEQUENCE_LENGTH
        assert left == before[len(before) - len(left) :] and right == after[: len(right)]  # nearest pieces first
        room = MAX_SEQUENCE_LENGTH - plain.lengths[row]
        if room >= 2 * CONTEXT:  # nothing cut for room: each side takes all it can, up to CONTEXT
            assert (len(left), len(right)) == (min(CONTEXT, len(before)), min(CONTEXT, len(after)))
        full_sides += len(left) == len(right) == CONTEXT
    assert full_sides > 5  # the synthetic documents do frame examples on both sides


def test_context_positions_have_no_label_no_loss_no_word_and_no_score(documents_csv, ner_csv):
    plain, framed = read(documents_csv, ner_csv["vocab"], 0), read(documents_csv, ner_csv["vocab"], CONTEXT)
    features = framed.example_features
    is_context = (features["attention_mask"] == 1) & (features["labels"] == framed.label2id[PAD_LABEL])
    assert is_context.sum() > 100
    assert not features["loss_mask"][is_context].any() and (features["word_index"][is_context] == NO_WORD).all()
    assert framed.word_labels() == plain.word_labels()  # every raw word once, with its own gold label
    predictions = features["labels"].copy()
    predictions[is_context] = framed.label2id["B-PER"]  # a context position's tag must reach no word
    words = first_piece_words(
        *flatten_examples(features["word_index"], features["sentence_index"], features["labels"], predictions)
    )
    scores = score_words(words, [framed.id2label[i] for i in range(len(framed.id2label))])
    assert scores.overall.f1 == 1.0 and scores.overall.support > 0
    model = BertForTokenClassification(tiny_config(framed)).eval()
    batch = {key: torch.from_numpy(features[key][:8]) for key in MODEL_INPUT_KEYS}
    relabelled = {**batch, "labels": torch.where(torch.from_numpy(is_context[:8]), 1, batch["labels"])}
    with torch.no_grad():
        assert torch.equal(model(**batch).loss, model(**relabelled).loss)  # context labels never reach the loss


def tiny_config(dataset: NerCsvDataset) -> BertConfig:
    return BertConfig(vocab_size=len(dataset.vocab), hidden_size=32, num_hidden_layers=2, num_heads=2, filter_size=64,
                      num_classes=len(dataset.label2id), max_position_embeddings=MAX_SEQUENCE_LENGTH)


def test_context_zero_reads_and_scores_as_a_csv_without_the_document_column(documents_csv, ner_csv, tmp_path):
    rows = csv_rows(documents_csv)
    today = tmp_path / "today"
    today.mkdir()
    for name in ("meta.dat", "label2id.json"):
        (today / name).write_bytes((documents_csv / name).read_bytes())
    with open(today / next(documents_csv.glob("*.csv")).name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["tokens", "labels", "sentence_index", "word_index"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    new, old = read(documents_csv, ner_csv["vocab"], 0), read(today, ner_csv["vocab"], 0)
    assert new.example_features.keys() == old.example_features.keys()
    for key, values in new.example_features.items():
        assert np.array_equal(values, old.example_features[key]), key
    torch.manual_seed(0)
    model = BertForTokenClassification(tiny_config(new)).eval()
    with torch.no_grad():
        logits = [model(**{k: torch.from_numpy(d.example_features[k]) for k in MODEL_INPUT_KEYS}).logits for d in (new, old)]
    assert torch.equal(*logits)
    with pytest.raises(DataFileError, match=DOCUMENT_COLUMN):
        read(today, ner_csv["vocab"], CONTEXT)


def test_packed_rows_with_context_give_the_unpacked_rows_logits(documents_csv, ner_csv):
    unpacked = read(documents_csv, ner_csv["vocab"], CONTEXT)
    packed = read(documents_csv, ner_csv["vocab"], CONTEXT, packed=True)
    assert len(packed) < len(unpacked) and packed.packing_stats.num_tokens == unpacked.lengths.sum()
    assert len(set(unpacked.example_features["sentence_index"].tolist())) == len(unpacked)  # keys below are unique
    torch.manual_seed(0)
    model = BertForTokenClassification(tiny_config(unpacked)).eval()
    with torch.no_grad():
        flat = model(**{k: torch.from_numpy(unpacked.features[k]) for k in MODEL_INPUT_KEYS}).logits
        rows = model(**{k: torch.from_numpy(packed.features[k]) for k in (*MODEL_INPUT_KEYS, "position_ids")}).logits
    expected = {}
    for row, length in enumerate(unpacked.lengths):
        sentence = int(unpacked.features["sentence_index"][row])
        for position in range(length):
            expected[sentence, position] = flat[row, position]
    mask, positions = packed.features["attention_mask"], packed.features["position_ids"]
    compared = 0
    for row, column in zip(*np.nonzero(mask)):
        sentence = int(packed.features["sentence_index"][row, mask[row, column] - 1])
        torch.testing.assert_close(rows[row, column], expected[sentence, int(positions[row, column])], atol=1e-5, rtol=0)
        compared += 1
    assert compared == len(expected)


@pytest.mark.parametrize("packing", [False, True])
def test_context_trains_and_evaluates_through_the_ipu_standin_in_fixed_shapes(packing, documents_csv, ner_csv,
                                                                            tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "poptorch", StandinPoptorch())
    widths = []  # the width of every [rows, positions] input the device is handed
    run_on_device = StandinExecutor.__call__

    def recording(self, *inputs):
        widths.extend(tensor.shape[1] for tensor in inputs if tensor.dim() == 2)
        return run_on_device(self, *inputs)

    monkeypatch.setattr(StandinExecutor, "__call__", recording)
    params = tiny_params(ner_csv, tmp_path / "model", runconfig={"max_steps": 2, "log_steps": 1,
                                                                  "save_checkpoints_steps": 0})
    params["train_input"]["data_dir"] = params["eval_input"]["data_dir"] = str(documents_csv)
    for section in ("train_input", "eval_input"):
        params[section].update(context_tokens=CONTEXT, packing=packing, max_sequences_per_pack=4)
    params["ipu"] = {"layers_per_ipu": [1, 1], "gradient_accumulation": 2}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["IPU", "--mode", "train_and_eval", "--params", str(write_params(tmp_path / "p.yaml", params))]) == 0
    finally:
        torch.set_num_threads(threads)
    assert len(widths) > 0 and set(widths) <= {MAX_SEQUENCE_LENGTH, 4}  # 4: a pack's sentence slots, if passed
    assert MAX_SEQUENCE_LENGTH in widths
