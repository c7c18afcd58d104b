"""Token classification's predictor: raw lines -> words with offsets -> tags and scores -> entities.

Words come from the same splitter as training's raw files (:mod:`modelzoo.data.raw_words`), tags
from :class:`~modelzoo.heads.token_classification.tagger.WordTagger`, entities and their scores
from :mod:`modelzoo.heads.token_classification.records`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Dict, Iterable, List, Optional

from torch import nn

from modelzoo.bert.config import BertConfig
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import ParamsError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.params import InputParams
from modelzoo.data.raw_words import split_words
from modelzoo.heads.html_page import entity_tooltip, isolated, legend, mark, page, type_colours
from modelzoo.heads.prediction import DOCUMENTS, NumberedLine, PredictOptions, rounded
from modelzoo.heads.token_classification.annotation_formats import (
    DEFAULT_FROM_NAME,
    DEFAULT_TO_NAME,
    DOCCANO,
    LABELSTUDIO,
    LabelStudioList,
    doccano_json_line,
)
from modelzoo.heads.token_classification.records import (
    Prediction,
    drop_unsure_entities,
    json_line_parts,
    make_prediction,
    to_conll_block,
)
from modelzoo.heads.token_classification.tagger import WordTagger


def predict_numbered(
    tagger: WordTagger, lines: List[NumberedLine], pretokenized: bool = False, documents: bool = False
) -> List[Prediction]:
    """A prediction per line that holds a word (blank lines are skipped; ``line`` keeps the numbering).

    ``documents``: the lines are sentences of documents that blank lines separate, and a model
    trained with context reads each sentence with its document's neighbours, as in training.
    """
    split = [(number, line, split_words(line, pretokenized)) for number, line in lines]
    document_of_line = list(itertools.accumulate(not words for _, _, words in split)) if documents else None
    kept = [index for index, (_, _, words) in enumerate(split) if words]
    split = [split[index] for index in kept]
    numbers = [document_of_line[index] for index in kept] if document_of_line is not None else None
    tags, scores = tagger.tag([words.texts() for _, _, words in split], numbers)
    return [
        make_prediction(number, line, words, sentence_tags, sentence_scores)
        for (number, line, words), sentence_tags, sentence_scores in zip_strict(split, tags, scores)
    ]


def predict_lines(
    tagger: WordTagger, lines: List[str], pretokenized: bool = False, documents: bool = False
) -> List[Prediction]:
    """:func:`predict_numbered` on ``lines`` numbered from 1."""
    return predict_numbered(tagger, list(enumerate(lines, start=1)), pretokenized, documents)


class EntityPredictor:
    """Token classification: each line's words, tags with their scores, and entities."""

    kind = "sentences"
    output_formats = ("jsonl", "conll", DOCCANO, LABELSTUDIO)
    request_parameters = ("aggregation_strategy", "pretokenized", "min_entity_score")

    def __init__(
        self, model: nn.Module, inputs: InputParams, config: BertConfig, id_to_label: List[str], setup: DeviceSetup,
        options: PredictOptions, skip_padding: bool,
    ) -> None:
        self.tagger = WordTagger(
            model, inputs.vocab_file, id_to_label, inputs.max_sequence_length, inputs.batch_size, setup, skip_padding,
            inputs.context_tokens,
        )
        self.options = options
        self.entities = 0
        self.tasks: Optional[LabelStudioList] = None  # the open JSON list of --output_format labelstudio
        if options.output_format == LABELSTUDIO:
            self.tasks = LabelStudioList(options.ls_from_name or DEFAULT_FROM_NAME, options.ls_to_name or DEFAULT_TO_NAME)

    @classmethod
    def check_options(cls, options: PredictOptions) -> None:
        if options.pairs:
            raise ParamsError("--pairs: only for a sequence classifier (model.head sequence_classification)")
        if options.output_format not in (None, *cls.output_formats):
            raise ParamsError(f"--output_format {options.output_format}: a token classifier writes {', '.join(cls.output_formats)}")
        if (options.ls_from_name or options.ls_to_name) and options.output_format != LABELSTUDIO:
            raise ParamsError("--ls_from_name, --ls_to_name: only for --output_format labelstudio")
        if options.resume and options.output_format == LABELSTUDIO:
            raise ParamsError("--resume: --output_format labelstudio is one JSON list, closed at the end, and cannot be "
                              "continued; doccano and jsonl outputs can")
        if options.conll_scores and options.output_format != "conll":
            raise ParamsError("--conll_scores: adds a column to --output_format conll; JSON lines always hold the scores")
        if options.min_entity_score is not None and not 0 <= options.min_entity_score <= 1:
            raise ParamsError(f"--min_entity_score {options.min_entity_score}: a probability, between 0 and 1")

    def predict(self, lines: List[NumberedLine]) -> List[Prediction]:
        predictions = predict_numbered(
            self.tagger, lines, self.options.pretokenized, self.options.input_format == DOCUMENTS
        )
        if self.options.min_entity_score is not None:
            predictions = [drop_unsure_entities(p, self.options.min_entity_score) for p in predictions]
        self.entities += sum(len(prediction.entities) for prediction in predictions)
        return predictions

    def render(self, prediction: Prediction) -> Iterable[str]:
        if self.options.output_format == "conll":
            return (to_conll_block(prediction, self.options.conll_scores),)
        if self.options.output_format == DOCCANO:
            return (doccano_json_line(prediction) + "\n",)
        if self.tasks is not None:
            return (self.tasks.render(prediction),)
        return itertools.chain(json_line_parts(prediction), ("\n",))

    def closing(self) -> str:
        return self.tasks.closing() if self.tasks is not None else ""

    @staticmethod
    def inference_api_record(prediction: Prediction) -> List[Dict[str, Any]]:
        """The token-classification pipeline's aggregated entities."""
        return [
            {"entity_group": e.type, "score": rounded(e.score), "word": e.text, "start": e.start, "end": e.end}
            for e in prediction.entities
        ]

    def holds_record(self, line: str) -> bool:
        return bool(split_words(line, self.options.pretokenized))

    def made_from(self, record: str, number: int, line: str) -> bool:
        """Whether ``record`` (as :meth:`render` wrote it) is input line ``number``'s."""
        if self.options.output_format == "conll":
            words = [row.split("\t")[0] for row in record.splitlines() if row]
            return words == [word.text for word in split_words(line, self.options.pretokenized)]
        written = json.loads(record)
        return written.get("line") == number and written.get("text") == line

    def summary(self) -> str:
        return f"{self.entities} entities"

    @staticmethod
    def page(records: List[Prediction], note: Optional[str]) -> str:
        return render_page(records, note=note)


def _sentence(prediction: Prediction, colours: Dict[str, str]) -> str:
    parts, position = [], 0
    for entity in prediction.entities:
        parts.append(isolated(prediction.text[position : entity.start]))
        parts.append(mark(entity.text, entity.type, colours[entity.type], "entity", entity_tooltip(entity.type, entity.score)))
        position = entity.end
    parts.append(isolated(prediction.text[position:]))
    return f'<p class="sentence"><span class="line-number">{prediction.line}</span>{"".join(parts)}</p>'


def render_page(predictions: List[Prediction], title: str = "Named entities", note: Optional[str] = None) -> str:
    """The whole page: title, an optional note, a legend with each type's colour and count, a paragraph per line."""
    kinds = [entity.type for prediction in predictions for entity in prediction.entities]
    colours = type_colours(kinds)
    body = "\n".join(_sentence(prediction, colours) for prediction in predictions)
    return page(title, legend(kinds, colours) or "no entities found", body, note)
