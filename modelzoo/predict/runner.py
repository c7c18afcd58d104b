"""``run.py {CPU,GPU} --mode predict``: raw text in, predictions out as a stream (JSON lines or CoNLL, HTML).

Prediction needs the model (``model:`` section and a checkpoint), the WordPiece vocab
(``eval_input.vocab_file``) and the label vocab (``eval_input.label_vocab_file``, or
``label2id.json`` in ``eval_input.data_dir``); it never reads the CSV data itself, so it runs on
any text. ``model.head`` decides what a line gets: tags and entities (token classification) or a
label (sequence classification). The input is read in chunks of ``chunk_lines`` lines; each
chunk's records are written and flushed in input order before the next chunk is read, so memory
stays bounded, output appears at once and a killed run leaves whole records (``--resume`` goes on,
:mod:`modelzoo.predict.resume`). Every expected failure is a :class:`UserError`: one ``error:`` line.
"""

from __future__ import annotations

import json
import sys
import time
import typing
from collections import Counter
from dataclasses import dataclass
from itertools import dropwhile
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch
from tqdm import tqdm

from modelzoo.bert import BertForTokenClassification, PackedBertForSequenceClassification
from modelzoo.checkpoint.training import checkpoint_to_evaluate, load_model_weights
from modelzoo.common.atomic import write_text_atomic
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.heap import keep_freed_memory, return_freed_memory
from modelzoo.common.iteration import zip_strict
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.raw_words import split_words
from modelzoo.data.text_files import read_utf8_text
from modelzoo.data.vocab import read_label_vocab
from modelzoo.params.params import Params
from modelzoo.predict.classifier import SentenceClassifier
from modelzoo.predict.engine_choice import checkpoint_engine, choose_torch_engine
from modelzoo.predict.html_page import MAX_PAGE_LINES, render_classification_page, render_page
from modelzoo.predict.input_lines import (
    CHUNK_LINES,
    NumberedLine,
    check_input,
    chunks,
    count_lines,
    input_name,
    numbered_lines,
)
from modelzoo.predict.int8 import quantize_int8
from modelzoo.predict.onnx_engine import load_onnx_engine
from modelzoo.predict.records import (
    Classification,
    Prediction,
    classification_json_line,
    drop_unsure_entities,
    make_prediction,
    to_conll_block,
    to_json_line,
)
from modelzoo.predict.resume import Continuation, conll_continuation, cut_to, jsonl_continuation
from modelzoo.predict.tagger import WordTagger

TOKEN_HEAD, SEQUENCE_HEAD = "token_classification", "sequence_classification"


@dataclass(frozen=True)
class PredictOptions:
    """The predict-only command-line options (``output_format`` None: JSON lines)."""

    input: str
    output: Optional[str] = None
    output_format: Optional[str] = None
    output_html: Optional[str] = None
    pretokenized: bool = False
    quantize: Optional[str] = None
    engine: str = "auto"
    pairs: bool = False
    min_entity_score: Optional[float] = None
    conll_scores: bool = False
    resume: bool = False
    chunk_lines: int = CHUNK_LINES
    html_max_lines: int = MAX_PAGE_LINES


def check_options(options: PredictOptions, head: str) -> None:
    """Options that mean nothing for ``head`` or for the other options given: one error line, before any work."""
    token_only = {
        "--pretokenized": options.pretokenized,
        "--output_format conll": options.output_format == "conll",
        "--min_entity_score": options.min_entity_score is not None,
        "--conll_scores": options.conll_scores,
    }
    for name, given in token_only.items():
        if given and head != TOKEN_HEAD:
            raise ParamsError(f"{name}: only for model.head token_classification (this model is {head})")
    if options.pairs and head != SEQUENCE_HEAD:
        raise ParamsError(f"--pairs: only for model.head sequence_classification (this model is {head})")
    if options.engine not in ("auto", "torch") and head != TOKEN_HEAD:
        raise ParamsError(f"--engine {options.engine}: only for model.head token_classification (this model is {head})")
    if options.conll_scores and options.output_format != "conll":
        raise ParamsError("--conll_scores: adds a column to --output_format conll; JSON lines always hold the scores")
    if options.min_entity_score is not None and not 0 <= options.min_entity_score <= 1:
        raise ParamsError(f"--min_entity_score {options.min_entity_score}: a probability, between 0 and 1")
    if options.resume and not options.output:
        raise ParamsError("--resume: continues an --output FILE (stdout cannot be continued)")
    if options.resume and options.output_html:
        raise ParamsError("--resume: cannot rebuild --output_html for the lines predicted before; make the page in its own run")
    if options.chunk_lines < 1 or options.html_max_lines < 1:
        raise ParamsError("--chunk_lines and --html_max_lines: at least 1")


def label_vocab_path(params: Params) -> Path:
    inputs = params.eval_input
    return Path(inputs.label_vocab_file) if inputs.label_vocab_file else Path(inputs.data_dir) / LABEL_VOCAB_FILE


def _labels_and_checkpoint(params: Params) -> Tuple[List[str], Path]:
    """The label of every class id and the checkpoint to load, checked against the model."""
    if params.eval_input.vocab_file is None:
        raise ParamsError("eval_input.vocab_file: prediction needs the WordPiece vocab the model was trained with")
    checkpoint = checkpoint_to_evaluate(params.runconfig, "--mode predict")
    labels_file = label_vocab_path(params)
    if not labels_file.is_file():
        raise DataFileError(labels_file, None, "label vocab not found (set eval_input.label_vocab_file)")
    label2id = read_label_vocab(labels_file) if params.model.head == TOKEN_HEAD else _classifier_labels(labels_file)
    if len(label2id) != params.model.num_classes:
        raise ParamsError(f"{labels_file} has {len(label2id)} labels but model.num_classes is {params.model.num_classes}")
    return sorted(label2id, key=label2id.__getitem__), checkpoint


def _classifier_labels(path: Path) -> Dict[str, int]:
    """A classifier's ``label2id.json`` (any labels, ids 0..n-1; no special labels, unlike NER's)."""
    try:
        label2id = json.loads(read_utf8_text(path, "label vocab file"))
    except json.JSONDecodeError as error:
        raise DataFileError(path, error.lineno, f"not valid JSON: {error.msg}") from error
    if not isinstance(label2id, dict) or sorted(label2id.values()) != list(range(len(label2id))):
        raise DataFileError(path, None, "expected a JSON object mapping each label to an id 0..n-1")
    return label2id


def _torch_model(model_class, params: Params, checkpoint: Path, device: torch.device, strict: bool, quantize: Optional[str]):
    if device.type == "cpu":
        keep_freed_memory()
    torch.manual_seed(params.runconfig.seed)
    model = model_class(params.model)
    report = load_model_weights(model, checkpoint, strict)
    if quantize == "int8":
        model = quantize_int8(model.eval(), device)
    return model, report


def _precision(params: Params, quantize: Optional[str]) -> str:
    """``runconfig.precision``, except that int8 computes the rest of the model in float32: that is
    the combination whose entity F1 was measured, and autocast would only move int8's float ops to bfloat16."""
    return "float32" if quantize else params.runconfig.precision


def build_tagger(
    params: Params, device: torch.device, strict: bool = True, quantize: Optional[str] = None, engine: str = "auto"
) -> Tuple[WordTagger, List[str]]:
    """The tagger for ``params`` with the checkpoint's weights loaded (``quantize="int8"``: then
    quantized, see :mod:`modelzoo.predict.int8`) on ``engine`` (:mod:`modelzoo.predict.engine_choice`);
    also returns the load report lines."""
    id_to_label, checkpoint = _labels_and_checkpoint(params)
    if checkpoint_engine(engine, checkpoint) == "onnxruntime":
        model, report = load_onnx_engine(checkpoint, quantize)
    else:
        model, report = _torch_model(BertForTokenClassification, params, checkpoint, device, strict, quantize)
        model, choice = choose_torch_engine(model, engine, device, _precision(params, quantize), quantize is not None)
        report.append(choice)
    inputs = params.eval_input
    setup = DeviceSetup(device, _precision(params, quantize))
    tagger = WordTagger(model, inputs.vocab_file, id_to_label, inputs.max_sequence_length, inputs.batch_size, setup)
    return tagger, report


def build_classifier(
    params: Params, device: torch.device, strict: bool = True, quantize: Optional[str] = None
) -> Tuple[SentenceClassifier, List[str]]:
    """The sequence classifier for ``params``, weights loaded (and quantized if asked), and the load report."""
    id_to_label, checkpoint = _labels_and_checkpoint(params)
    model, report = _torch_model(PackedBertForSequenceClassification, params, checkpoint, device, strict, quantize)
    setup = DeviceSetup(device, _precision(params, quantize))
    inputs = params.eval_input
    classifier = SentenceClassifier(
        model, inputs.vocab_file, id_to_label, inputs, params.model.max_sequences_per_pack, setup
    )
    return classifier, report


def predict_numbered(tagger: WordTagger, lines: List[NumberedLine], pretokenized: bool = False) -> List[Prediction]:
    """A prediction per line that holds a word (blank lines are skipped; ``line`` keeps the numbering)."""
    split = [(number, line, split_words(line, pretokenized)) for number, line in lines]
    split = [(number, line, words) for number, line, words in split if words]
    tags, scores = tagger.tag([[word.text for word in words] for _, _, words in split])
    return [
        make_prediction(number, line, words, sentence_tags, sentence_scores)
        for (number, line, words), sentence_tags, sentence_scores in zip_strict(split, tags, scores)
    ]


def predict_lines(tagger: WordTagger, lines: List[str], pretokenized: bool = False) -> List[Prediction]:
    """:func:`predict_numbered` on ``lines`` numbered from 1."""
    return predict_numbered(tagger, list(enumerate(lines, start=1)), pretokenized)


class EntityPredictor:
    """Token classification: each line's words, tags with their scores, and entities."""

    kind = "sentences"

    def __init__(self, tagger: WordTagger, options: PredictOptions) -> None:
        self.tagger, self.options = tagger, options
        self.entities = 0

    def predict(self, lines: List[NumberedLine]) -> List[Prediction]:
        predictions = predict_numbered(self.tagger, lines, self.options.pretokenized)
        if self.options.min_entity_score is not None:
            predictions = [drop_unsure_entities(p, self.options.min_entity_score) for p in predictions]
        self.entities += sum(len(prediction.entities) for prediction in predictions)
        return predictions

    def render(self, prediction: Prediction) -> str:
        if self.options.output_format == "conll":
            return to_conll_block(prediction, self.options.conll_scores)
        return to_json_line(prediction) + "\n"

    def holds_record(self, line: str) -> bool:
        return bool(split_words(line, self.options.pretokenized))

    def summary(self) -> str:
        return f"{self.entities} entities"

    @staticmethod
    def page(records: List[Prediction], note: Optional[str]) -> str:
        return render_page(records, note=note)


class LabelPredictor:
    """Sequence classification: each line (or TAB-separated pair, ``--pairs``) gets a label and its probability."""

    kind = "lines"

    def __init__(self, classifier: SentenceClassifier, options: PredictOptions) -> None:
        self.classifier, self.options = classifier, options
        self.labels: typing.Counter[str] = Counter()

    def predict(self, lines: List[NumberedLine]) -> List[Classification]:
        kept = [(number, line) for number, line in lines if self.holds_record(line)]
        texts = [self._text(number, line) for number, line in kept]
        labels = self.classifier.id_to_label
        classified = [
            Classification(number, line, labels[int(p.argmax())], float(p.max()), dict(zip_strict(labels, p.tolist())))
            for (number, line), p in zip_strict(kept, self.classifier.classify(texts))
        ]
        self.labels.update(item.label for item in classified)
        return classified

    def _text(self, number: int, line: str) -> Union[str, Tuple[str, str]]:
        if not self.options.pairs:
            return line
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFileError(
                input_name(self.options.input), number, f"--pairs: expected two sentences separated by one TAB, found {len(parts)} fields"
            )
        return parts[0], parts[1]

    @staticmethod
    def holds_record(line: str) -> bool:
        return bool(line.strip())

    @staticmethod
    def render(classification: Classification) -> str:
        return classification_json_line(classification) + "\n"

    def summary(self) -> str:
        return ", ".join(f"{count} {label}" for label, count in sorted(self.labels.items())) or "no labels"

    @staticmethod
    def page(records: List[Classification], note: Optional[str]) -> str:
        return render_classification_page(records, note=note)


class _Output:
    """stdout or the ``--output`` file, opened at the first write (so a run that fails first leaves no file),
    appended to when continuing; every chunk is flushed at once."""

    def __init__(self, path: Optional[str], append: bool) -> None:
        self.path, self.append = path, append
        self._stream: Optional[IO[str]] = None

    def write(self, text: str) -> None:
        if self._stream is None:
            mode = "a" if self.append else "w"
            # closed by close(), after the last chunk: the stream lives across the whole loop
            self._stream = sys.stdout if self.path is None else open(self.path, mode, encoding="utf-8", newline="")  # noqa: SIM115
        self._stream.write(text)
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()


def _continuation(options: PredictOptions) -> Optional[Continuation]:
    """Where an interrupted run stopped, its partial trailing record cut (None: start afresh)."""
    if not options.resume or not Path(options.output).is_file():
        return None
    path = Path(options.output)
    continuation = conll_continuation(path) if options.output_format == "conll" else jsonl_continuation(path)
    cut_to(path, continuation)
    return continuation


def _skip_done(
    lines: Iterator[NumberedLine], continuation: Continuation, holds_record: Callable[[str], bool]
) -> Tuple[Iterator[NumberedLine], int]:
    """The lines after those the kept records cover, and how many input lines that skipped."""
    if continuation.last_line is not None:
        return dropwhile(lambda numbered: numbered[0] <= continuation.last_line, lines), continuation.last_line
    seen, last = 0, 0
    while seen < continuation.sentences:
        numbered = next(lines, None)
        if numbered is None:
            raise ParamsError(f"--resume: {continuation.sentences} sentences in the output, fewer in the input: not its output")
        last, seen = numbered[0], seen + holds_record(numbered[1])
    return lines, last


def run_predict(params: Params, options: PredictOptions, device: torch.device, strict: bool = True) -> None:
    """Stream the input through the model in chunks; write each chunk's records in input order (stdout by
    default), and the HTML page of the first ``html_max_lines`` records at the end if asked."""
    head = params.model.head
    check_input(options.input)
    check_options(options, head)
    continuation = _continuation(options)
    if head == SEQUENCE_HEAD:
        classifier, report = build_classifier(params, device, strict, options.quantize)
        predictor = LabelPredictor(classifier, options)
    else:
        tagger, report = build_tagger(params, device, strict, options.quantize, options.engine)
        predictor = EntityPredictor(tagger, options)
    for line in report:
        print(line, file=sys.stderr)
    lines, skipped = numbered_lines(options.input), 0
    if continuation is not None:
        lines, skipped = _skip_done(lines, continuation, predictor.holds_record)
    output = _Output(options.output, append=continuation is not None)
    page: list = []
    done = 0
    started = time.perf_counter()
    progress = tqdm(total=count_lines(options.input), initial=skipped, unit=" lines", file=sys.stderr, mininterval=1.0)
    try:
        for chunk in chunks(lines, options.chunk_lines):
            records = predictor.predict(chunk)
            if records:
                output.write("".join(predictor.render(record) for record in records))
            done += len(records)
            if options.output_html and len(page) < options.html_max_lines:
                page.extend(records[: options.html_max_lines - len(page)])
            return_freed_memory()
            progress.update(len(chunk))
            progress.set_postfix_str(f"{done / (time.perf_counter() - started):.0f} {predictor.kind}/s", refresh=False)
    finally:
        progress.close()
        output.close()
    if done == 0 and continuation is None:
        raise DataFileError(input_name(options.input), None, "the input holds no words")
    where = f" to {options.output}" if options.output else ""
    if options.output_html:
        note = None
        if done > len(page):
            note = f"This page shows the first {len(page)} of {done} predicted lines (--html_max_lines); all are in the output."
            print(f"page {options.output_html}: {note}", file=sys.stderr)
        write_text_atomic(options.output_html, predictor.page(page, note))
        where += f", page {options.output_html}"
    resumed = f" after {skipped} lines already done" if continuation is not None else ""
    print(f"predicted {done} {predictor.kind}{resumed}, {predictor.summary()}{where}", file=sys.stderr)
