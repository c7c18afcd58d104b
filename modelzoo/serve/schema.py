"""The request and response shapes of ``POST /predict`` (the Hugging Face inference API's), for
validation and for the OpenAPI page, and validation errors worded as one line.

Types are strict: a number is not a string, ``"yes"`` is not ``true``, and an unknown key is an
error naming the known ones, so a misspelt parameter is never silently ignored.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from typing_extensions import Annotated

# Predict reads a word's tag at its first piece: the Hugging Face pipeline's "first" aggregation.
AGGREGATION_STRATEGIES = ("first",)
REQUEST_PARAMETERS = ("aggregation_strategy", "min_entity_score", "pretokenized")  # a head takes its predictor's

Score = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aggregation_strategy: StrictStr = Field(
        "first", description="how word pieces form entities: only `first` (a word's tag is its first piece's)"
    )
    min_entity_score: Optional[Score] = Field(
        None, description="drop entities scored below this probability (run.py --min_entity_score)"
    )
    pretokenized: StrictBool = Field(
        False, description="each input is whitespace-separated words, split no further (run.py --pretokenized)"
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": "George Washington flew from New York to Berlin on Monday.",
                    "parameters": {"aggregation_strategy": "first", "min_entity_score": 0.5},
                },
                {"inputs": ["EU rejects German call to boycott British lamb .", "Peter Blackburn"]},
            ]
        },
    )

    inputs: Union[StrictStr, List[StrictStr]] = Field(description="one text, or a list of texts: one line each")
    parameters: Optional[Parameters] = Field(None, description="token classifier only")


class EntityGroup(BaseModel):
    """An entity as ``run.py --mode predict`` finds it: ``word == text[start:end]``, its score the lowest of its words'."""

    entity_group: str = Field(examples=["PER"])
    score: float = Field(examples=[0.9987])
    word: str = Field(examples=["George Washington"])
    start: int = Field(examples=[0])
    end: int = Field(examples=[17])


class LabelScores(BaseModel):
    """A sequence classifier's answer for one text: its label, that label's probability, every label's."""

    label: str = Field(examples=["1"])
    score: float = Field(examples=[0.9731])
    scores: Dict[str, float] = Field(examples=[{"0": 0.0269, "1": 0.9731}])


# A text gets a list of entities (token classifier) or its label (sequence classifier); a list of
# texts gets a list of those.
PredictResponse = Union[List[EntityGroup], List[List[EntityGroup]], LabelScores, List[LabelScores]]


class ErrorMessage(BaseModel):
    error: str = Field(examples=["inputs: 65 texts; at most 64 a request (--max_inputs)"])


_KNOWN_KEYS = {(): list(PredictRequest.model_fields), ("parameters",): list(Parameters.model_fields)}
_UNION_TAGS = ("str", "list[str]")


def describe_errors(errors: Sequence[Dict[str, Any]]) -> str:
    """pydantic's errors as one line: the most precise one, located like ``inputs[2]`` or ``parameters.pretokenized``."""
    error = max(errors, key=lambda e: len([part for part in e["loc"] if part not in _UNION_TAGS]))
    path = [part for part in error["loc"] if part not in _UNION_TAGS and part != "body"]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".") or "body"
    if error["type"] == "extra_forbidden":
        known = _KNOWN_KEYS.get(tuple(path[:-1]), [])
        return f"{where}: unknown key (known: {', '.join(known)})"
    if path == ["inputs"] and error["type"] != "missing":
        return "inputs: a string or a list of strings"
    return f"{where}: {error['msg']}"
