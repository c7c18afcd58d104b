"""The one bridge from serving to prediction: load the model ``--mode predict`` loads, and turn texts into
the records its head's predictor finds, shaped as the Hugging Face inference API returns them.

Everything the server returns comes from the head's own predictor (:mod:`modelzoo.heads`): the same
words, windows, batches, entity spans, scores and ``min_entity_score`` rule, so ``/predict`` and
``run.py --mode predict`` agree. This is the only module of ``modelzoo.serve`` that imports
``modelzoo.predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

from modelzoo.heads.prediction import LinePredictor, PredictOptions
from modelzoo.params.params import Params
from modelzoo.predict.inference_model import LoadedModel, load_model

# Predictors read no input file here; the name is what their error messages would call the input.
REQUEST_INPUT = "request"
WARM_UP_TEXT = "George Washington flew from New York to Berlin on Monday ."


@dataclass(frozen=True)
class TextOptions:
    """The per-request parameters that change how a text is predicted (each head takes those of its
    predictor's ``request_parameters``)."""

    pretokenized: bool = False
    min_entity_score: Optional[float] = None


Item = Tuple[str, TextOptions]


class ServedModel:
    """A trained model as the server sees it: a head, a token budget per forward, and ``predict``.

    ``predict`` runs on the server's single model thread only (a predictor's word cache is not shared).
    """

    def __init__(self, loaded: LoadedModel, token_budget: int) -> None:
        self.loaded = loaded
        self.head = loaded.spec.name
        self.request_parameters = loaded.spec.predictor_class.request_parameters
        self.token_budget = token_budget
        self.warm_up: List[Item] = [(WARM_UP_TEXT, TextOptions())]
        self._predictors: Dict[TextOptions, LinePredictor] = {}
        # Built now, before the server's threads start: the first build imports the tokenizer classes,
        # and two threads importing transformers' lazy modules at once can fail.
        self._predictor_for(TextOptions())

    def _predictor_for(self, options: TextOptions) -> LinePredictor:
        if options not in self._predictors:
            given = PredictOptions(input=REQUEST_INPUT, pretokenized=options.pretokenized,
                                   min_entity_score=options.min_entity_score)
            self._predictors[options] = self.loaded.predictor(given)
        return self._predictors[options]

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
            predictor = self._predictor_for(options)
            for record in predictor.predict([(index, items[index][0]) for index in indices]):
                results[record.line] = predictor.inference_api_record(record)
        return results


def load_served_model(
    params: Params, device: torch.device, strict: bool, quantize: Optional[str], engine: str
) -> Tuple[ServedModel, List[str]]:
    """The model of ``params`` (weights loaded, quantized if asked) and the load report lines."""
    loaded, report = load_model(params, device, strict, quantize, engine)
    inputs = params.eval_input
    token_budget = inputs.batch_size * inputs.max_sequence_length  # predict's: a batch of eval_input's rows
    return ServedModel(loaded, token_budget), report
