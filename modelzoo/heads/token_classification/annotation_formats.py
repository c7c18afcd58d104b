"""Predictions as annotation-tool imports: doccano JSON lines and Label Studio pre-annotations.

A user pre-annotates the next batch in the tool they already use, corrects it, exports it, and
``write_csv_ner.py`` reads the export back (``--format jsonl``, ``--format labelstudio``); the
character offsets are those of :class:`~modelzoo.heads.token_classification.records.Entity`, into the
line as given.

* doccano: ``{"line", "text", "label": [[start, end, type], ...]}``, one record a line, the format
  of doccano's sequence-labelling import (``line`` is kept by doccano as metadata, and is what
  ``--resume`` reads).
* Label Studio: one JSON list of tasks (Label Studio imports a list), a task a line,
  ``{"data": {"text", "line"}, "predictions": [{"model_version", "score", "result": [...]}]}`` with a
  ``labels`` result per entity (``value: {start, end, text, labels}``) carrying the entity's
  ``score``. ``from_name``/``to_name`` must name the project's ``<Labels>`` and ``<Text>`` tags; the
  defaults are those of Label Studio's Named Entity Recognition template
  (``<Labels name="label" toName="text">``, ``<Text name="text" value="$text">``). The prediction's
  ``score`` is the line's least sure word, so sorting tasks by it puts the lines to check first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelzoo.heads.prediction import rounded
from modelzoo.heads.token_classification.records import Prediction

DOCCANO, LABELSTUDIO = "doccano", "labelstudio"
ANNOTATION_FORMATS = (DOCCANO, LABELSTUDIO)
DEFAULT_FROM_NAME, DEFAULT_TO_NAME = "label", "text"
MODEL_VERSION = "modelzoo"
TEXT_FIELD = "text"  # the task field the template's <Text value="$text"> shows


def doccano_json_line(prediction: Prediction) -> str:
    """One doccano sequence-labelling record (no line end)."""
    record = {
        "line": prediction.line,
        "text": prediction.text,
        "label": [[entity.start, entity.end, entity.type] for entity in prediction.entities],
    }
    return json.dumps(record, ensure_ascii=False)


def labelstudio_task(prediction: Prediction, from_name: str = DEFAULT_FROM_NAME, to_name: str = DEFAULT_TO_NAME) -> dict:
    """One Label Studio task holding the prediction as a pre-annotation."""
    result = [
        {
            "id": f"line{prediction.line}-{index}",
            "from_name": from_name,
            "to_name": to_name,
            "type": "labels",
            "value": {"start": entity.start, "end": entity.end, "text": entity.text, "labels": [entity.type]},
            "score": rounded(entity.score),
        }
        for index, entity in enumerate(prediction.entities)
    ]
    score = rounded(min(prediction.word_scores)) if prediction.word_scores else 1.0
    return {
        "data": {TEXT_FIELD: prediction.text, "line": prediction.line},
        "predictions": [{"model_version": MODEL_VERSION, "score": score, "result": result}],
    }


@dataclass
class LabelStudioList:
    """Label Studio tasks written as one JSON list, a task a line, as predictions stream out: ``[`` before
    the first, ``,`` between, ``]`` from :meth:`closing` (a killed run leaves a list that does not parse,
    never one that silently lacks tasks)."""

    from_name: str = DEFAULT_FROM_NAME
    to_name: str = DEFAULT_TO_NAME
    written: int = 0

    def render(self, prediction: Prediction) -> str:
        opening = "[\n" if self.written == 0 else ",\n"
        self.written += 1
        return opening + json.dumps(labelstudio_task(prediction, self.from_name, self.to_name), ensure_ascii=False)

    def closing(self) -> str:
        """What ends the list (nothing when no task was written: the run then fails as having no words)."""
        return "\n]\n" if self.written else ""
