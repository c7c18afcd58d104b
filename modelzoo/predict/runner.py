"""``run.py {CPU,GPU} --mode predict``: raw text in, tags and entities out (JSON lines or CoNLL, HTML).

Prediction needs the model (``model:`` section and a checkpoint), the WordPiece vocab
(``eval_input.vocab_file``) and the label vocab (``eval_input.label_vocab_file``, or
``label2id.json`` in ``eval_input.data_dir``); it never reads the CSV data itself, so it runs on
any text. Every expected failure is an exception the CLI turns into one ``error:`` line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from modelzoo.bert import BertForTokenClassification
from modelzoo.checkpoint.training import latest_checkpoint, load_model_weights
from modelzoo.common.errors import CheckpointError, DataFileError, ParamsError
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.text_files import read_utf8_text
from modelzoo.data.vocab import read_label_vocab
from modelzoo.loop.device import DeviceSetup
from modelzoo.params.params import Params
from modelzoo.predict.html_page import render_page
from modelzoo.predict.int8 import quantize_int8
from modelzoo.predict.records import RENDERERS, Prediction, make_prediction
from modelzoo.predict.tagger import WordTagger
from modelzoo.predict.tokenize_raw import split_words


@dataclass(frozen=True)
class PredictOptions:
    """The predict-only command-line options."""

    input: str
    output: str | None = None
    output_format: str = "jsonl"
    output_html: str | None = None
    pretokenized: bool = False
    quantize: str | None = None


def read_input_lines(source: str) -> list[str]:
    """The lines of a UTF-8 file, or of stdin for ``-`` (line ends, ``\\r`` included, removed)."""
    if source == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataFileError("stdin", None, f"not UTF-8 text (byte {error.start})") from None
    else:
        if not Path(source).is_file():
            raise DataFileError(source, None, "input file not found")
        text = read_utf8_text(Path(source), "input file")
    return [line.removesuffix("\r") for line in text.split("\n")]


def label_vocab_path(params: Params) -> Path:
    inputs = params.eval_input
    return Path(inputs.label_vocab_file) if inputs.label_vocab_file else Path(inputs.data_dir) / LABEL_VOCAB_FILE


def build_tagger(
    params: Params, device: torch.device, strict: bool = True, quantize: str | None = None
) -> tuple[WordTagger, list[str]]:
    """The tagger for ``params`` with the checkpoint's weights loaded (``quantize="int8"``: then
    quantized, see :mod:`modelzoo.predict.int8`); also returns the load report lines."""
    inputs = params.eval_input
    if inputs.vocab_file is None:
        raise ParamsError("eval_input.vocab_file: prediction needs the WordPiece vocab the model was trained with")
    run = params.runconfig
    checkpoint = Path(run.checkpoint_path) if run.checkpoint_path else latest_checkpoint(Path(run.model_dir))
    if checkpoint is None:
        raise CheckpointError(f"--mode predict: no checkpoint in {run.model_dir} and no --checkpoint_path given")
    labels_file = label_vocab_path(params)
    if not labels_file.is_file():
        raise DataFileError(labels_file, None, "label vocab not found (set eval_input.label_vocab_file)")
    label2id = read_label_vocab(labels_file)
    if len(label2id) != params.model.num_classes:
        raise ParamsError(f"{labels_file} has {len(label2id)} labels but model.num_classes is {params.model.num_classes}")
    torch.manual_seed(run.seed)
    model = BertForTokenClassification(params.model)
    report = load_model_weights(model, checkpoint, strict)
    if quantize == "int8":
        model = quantize_int8(model.eval(), device)
    id_to_label = sorted(label2id, key=label2id.__getitem__)
    setup = DeviceSetup(device, run.precision)
    tagger = WordTagger(model, inputs.vocab_file, id_to_label, inputs.max_sequence_length, inputs.batch_size, setup)
    return tagger, report


def predict_lines(tagger: WordTagger, lines: list[str], pretokenized: bool = False) -> list[Prediction]:
    """A prediction per line that holds a word (blank lines are skipped; ``line`` keeps the numbering)."""
    numbered = [(number, line, split_words(line, pretokenized)) for number, line in enumerate(lines, start=1)]
    numbered = [(number, line, words) for number, line, words in numbered if words]
    tags = tagger.tag([[word.text for word in words] for _, _, words in numbered])
    return [
        make_prediction(number, line, words, sentence_tags)
        for (number, line, words), sentence_tags in zip(numbered, tags, strict=True)
    ]


def run_predict(params: Params, options: PredictOptions, device: torch.device, strict: bool = True) -> None:
    """Read the input, tag it, write the chosen format (stdout by default) and the HTML page if asked."""
    lines = read_input_lines(options.input)
    if not any(line.strip() for line in lines):
        raise DataFileError("stdin" if options.input == "-" else options.input, None, "the input holds no words")
    tagger, report = build_tagger(params, device, strict, options.quantize)
    for line in report:
        print(line, file=sys.stderr)
    predictions = predict_lines(tagger, lines, options.pretokenized)
    text = "".join(RENDERERS[options.output_format](prediction) for prediction in predictions)
    if options.output:
        Path(options.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if options.output_html:
        Path(options.output_html).write_text(render_page(predictions), encoding="utf-8")
    entities = sum(len(prediction.entities) for prediction in predictions)
    where = f" to {options.output}" if options.output else ""
    html_note = f", page {options.output_html}" if options.output_html else ""
    print(f"tagged {len(predictions)} sentences, {entities} entities{where}{html_note}", file=sys.stderr)
