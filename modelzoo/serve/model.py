"""The one bridge from serving to prediction: build the predictor ``--mode predict`` builds, and turn
texts into the records it finds, shaped as the Hugging Face inference API returns them.

Everything the server returns comes from predict's own predictors (``EntityPredictor``,
``LabelPredictor``): the same words, windows, batches, entity spans, scores and ``min_entity_score``
rule, so ``/predict`` and ``run.py --mode predict`` agree. This is the only module of
``modelzoo.serve`` that imports ``modelzoo.predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

from modelzoo.params.params import Params
from modelzoo.predict.records import SCORE_DECIMALS, Classification, Prediction
from modelzoo.predict.runner import (
    SEQUENCE_HEAD,
    TOKEN_HEAD,
    EntityPredictor,
    LabelPredictor,
    PredictOptions,
    build_classifier,
    build_tagger,
    check_options,
)

# Predictors read no input file here; the name is what their error messages would call the input.
REQUEST_INPUT = "request"
WARM_UP_TEXT = "George Washington flew from New York to Berlin on Monday ."


@dataclass(frozen=True)
class TextOptions:
    """The per-request parameters that change how a text is predicted (token classifier only)."""

    pretokenized: bool = False
    min_entity_score: Optional[float] = None


Item = Tuple[str, TextOptions]


class ServedModel:
    """A trained model as the server sees it: a head, a token budget per forward, and ``predict``.

    ``predict`` runs on the server's single model thread only (the tagger's word cache is not shared).
    """

    def __init__(self, head: str, predictor_for, token_budget: int) -> None:
        self.head = head
        self.token_classifier = head == TOKEN_HEAD
        self.token_budget = token_budget
        self.warm_up: List[Item] = [(WARM_UP_TEXT, TextOptions())]
        self._predictor_for = predictor_for

    def holds_text(self, text: str, options: TextOptions) -> bool:
        """Whether ``text`` gives the model anything to read (a word, or a non-blank line)."""
        return self._predictor_for(options).holds_record(text)

    def predict(self, items: List[Item]) -> List[Any]:
        """One JSON-ready result per item, in order; items with equal options are predicted together."""
        results: List[Any] = [None] * len(items)
        groups: Dict[TextOptions, List[int]] = {}
        for index, (_, options) in enumerate(items):
            groups.setdefault(options, []).append(index)
        for options, indices in groups.items():
            records = self._predictor_for(options).predict([(index, items[index][0]) for index in indices])
            for record in records:
                results[record.line] = _entity_groups(record) if self.token_classifier else _label_scores(record)
        return results


def _rounded(score: float) -> float:
    """As the JSON lines of ``--mode predict`` write scores."""
    return round(float(score), SCORE_DECIMALS)


def _entity_groups(prediction: Prediction) -> List[Dict[str, Any]]:
    return [
        {"entity_group": e.type, "score": _rounded(e.score), "word": e.text, "start": e.start, "end": e.end}
        for e in prediction.entities
    ]


def _label_scores(classification: Classification) -> Dict[str, Any]:
    return {
        "label": classification.label,
        "score": _rounded(classification.score),
        "scores": {label: _rounded(score) for label, score in classification.scores.items()},
    }


def load_served_model(
    params: Params, device: torch.device, strict: bool, quantize: Optional[str], engine: str
) -> Tuple[ServedModel, List[str]]:
    """The model of ``params`` (weights loaded, quantized if asked) and the load report lines."""
    head = params.model.head
    check_options(PredictOptions(input=REQUEST_INPUT, quantize=quantize, engine=engine), head)
    inputs = params.eval_input
    token_budget = inputs.batch_size * inputs.max_sequence_length  # predict's: a batch of eval_input's rows
    if head == SEQUENCE_HEAD:
        classifier, report = build_classifier(params, device, strict, quantize)
        labeller = LabelPredictor(classifier, PredictOptions(input=REQUEST_INPUT))
        return ServedModel(head, lambda options: labeller, token_budget), report
    tagger, report = build_tagger(params, device, strict, quantize, engine)

    def tagger_for(options: TextOptions) -> EntityPredictor:
        given = PredictOptions(input=REQUEST_INPUT, pretokenized=options.pretokenized, min_entity_score=options.min_entity_score)
        return EntityPredictor(tagger, given)

    return ServedModel(head, tagger_for, token_budget), report
