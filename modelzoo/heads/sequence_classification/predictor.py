"""Sequence classification's predictor: each line (or TAB-separated pair, ``--pairs``) gets a label and its
probability, from :class:`~modelzoo.heads.sequence_classification.classifier.SentenceClassifier`."""

from __future__ import annotations

import html
import json
import typing
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from torch import nn

from modelzoo.bert.config import BertConfig
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.params import InputParams
from modelzoo.heads.html_page import isolated, legend, page, type_colours
from modelzoo.heads.prediction import LINES, NumberedLine, PredictOptions, rounded
from modelzoo.heads.sequence_classification.classifier import SentenceClassifier


@dataclass(frozen=True)
class Classification:
    """One input line of the sequence classifier: its label, that label's probability, every label's."""

    line: int
    text: str
    label: str
    score: float
    scores: Dict[str, float]


def classification_json_line(classification: Classification) -> str:
    record = {
        "line": classification.line,
        "text": classification.text,
        "label": classification.label,
        "score": rounded(classification.score),
        "scores": {label: rounded(score) for label, score in classification.scores.items()},
    }
    return json.dumps(record, ensure_ascii=False)


class LabelPredictor:
    """Sequence classification: each line (or TAB-separated pair, ``--pairs``) gets a label and its probability."""

    kind = "lines"
    output_formats = ("jsonl",)
    request_parameters = ()

    def __init__(
        self, model: nn.Module, inputs: InputParams, config: BertConfig, id_to_label: List[str], setup: DeviceSetup,
        options: PredictOptions, skip_padding: bool,
    ) -> None:
        self.classifier = SentenceClassifier(
            model, inputs.vocab_file, id_to_label, inputs, config.max_sequences_per_pack, setup, skip_padding
        )
        self.options = options
        self.labels: typing.Counter[str] = Counter()

    @staticmethod
    def check_options(options: PredictOptions) -> None:
        token_only = {
            "--pretokenized": options.pretokenized,
            f"--input_format {options.input_format}": options.input_format != LINES,
            f"--output_format {options.output_format}": options.output_format not in (None, "jsonl"),
            "--min_entity_score": options.min_entity_score is not None,
            "--conll_scores": options.conll_scores,
            "--ls_from_name, --ls_to_name": bool(options.ls_from_name or options.ls_to_name),
        }
        for name, given in token_only.items():
            if given:
                raise ParamsError(f"{name}: only for a token classifier (this model is a sequence classifier)")

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
                self.options.source_name, number, f"--pairs: expected two sentences separated by one TAB, found {len(parts)} fields"
            )
        return parts[0], parts[1]

    @staticmethod
    def holds_record(line: str) -> bool:
        return bool(line.strip())

    @staticmethod
    def made_from(record: str, number: int, line: str) -> bool:
        """Whether ``record`` (a JSON line :meth:`render` wrote) is input line ``number``'s."""
        written = json.loads(record)
        return written.get("line") == number and written.get("text") == line

    @staticmethod
    def render(classification: Classification) -> Iterable[str]:
        return (classification_json_line(classification) + "\n",)

    @staticmethod
    def closing() -> str:
        return ""

    @staticmethod
    def inference_api_record(classification: Classification) -> Dict[str, Any]:
        """The text-classification answer: the label, its probability, and every label's."""
        return {
            "label": classification.label,
            "score": rounded(classification.score),
            "scores": {label: rounded(score) for label, score in classification.scores.items()},
        }

    def summary(self) -> str:
        return ", ".join(f"{count} {label}" for label, count in sorted(self.labels.items())) or "no labels"

    @staticmethod
    def page(records: List[Classification], note: Optional[str]) -> str:
        return render_classification_page(records, note=note)


def render_classification_page(
    classifications: List[Classification], title: str = "Sequence labels", note: Optional[str] = None
) -> str:
    """A table, one row per line: its number, its text, the label (coloured) and that label's score."""
    kinds = [item.label for item in classifications]
    colours = type_colours(kinds)
    rows = "\n".join(
        f'<tr class="classified"><td class="line-number">{item.line}</td><td>{isolated(item.text)}</td>'
        f'<td><mark class="label" data-type="{html.escape(item.label, quote=True)}" style="background: '
        f'{colours[item.label]}">{isolated(item.label)}</mark></td><td class="score">{item.score:.2f}</td></tr>'
        for item in classifications
    )
    return page(title, legend(kinds, colours), f"<table>\n{rows}\n</table>", note)
