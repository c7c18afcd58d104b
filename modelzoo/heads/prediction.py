"""What a head's predictor is to ``--mode predict`` and ``--mode serve``: raw lines in, records out.

The runner streams numbered input lines through a :class:`LinePredictor` and writes what it returns;
it knows nothing of tags or labels. Each head's predictor turns its model's outputs into records
(tags and entities, or a label), renders them (a JSON line, CoNLL columns), builds its HTML page, and
refuses the options that mean nothing to it. Scores are written with ``SCORE_DECIMALS`` decimals:
more is noise (the last bits vary with how sentences share a batch), and fewer digits keep a
continued run's output equal to an uninterrupted one (see :mod:`modelzoo.predict.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Protocol, Tuple

from torch import nn

from modelzoo.bert.config import BertConfig
from modelzoo.common.device import DeviceSetup
from modelzoo.data.params import InputParams

SCORE_DECIMALS = 4
CHUNK_LINES = 1000
MAX_PAGE_LINES = 2000
STDIN = "-"
# --input_format: one text a line (lines), or documents of one sentence a line separated by blank lines.
LINES, DOCUMENTS = "lines", "documents"
INPUT_FORMATS = (LINES, DOCUMENTS)
NumberedLine = Tuple[int, str]


@dataclass(frozen=True)
class PredictOptions:
    """The predict-only command-line options (``output_format`` None: JSON lines)."""

    input: str
    output: Optional[str] = None
    output_format: Optional[str] = None
    output_html: Optional[str] = None
    pretokenized: bool = False
    input_format: str = LINES
    quantize: Optional[str] = None
    engine: str = "auto"
    pairs: bool = False
    min_entity_score: Optional[float] = None
    conll_scores: bool = False
    resume: bool = False
    chunk_lines: int = CHUNK_LINES
    html_max_lines: int = MAX_PAGE_LINES
    ls_from_name: Optional[str] = None
    ls_to_name: Optional[str] = None

    @property
    def source_name(self) -> str:
        return source_name(self.input)


def source_name(source: str) -> str:
    """An input as error messages name it."""
    return "stdin" if source == STDIN else source


def rounded(score: float) -> float:
    """A score as every output writes it."""
    return round(float(score), SCORE_DECIMALS)


class LinePredictor(Protocol):
    """A head's prediction over raw lines. ``kind`` names what one record is, for the log ("sentences").

    Built from the loaded (maybe quantized) model, the ``eval_input`` section (vocab, rows, batch), the
    ``model:`` section, the label of every class id, the device, the options, and whether the model
    skips its padding (a quantized one computes it, see :mod:`modelzoo.heads.token_classification.tagger`).
    """

    kind: str
    output_formats: Tuple[str, ...]  # the --output_format values it writes, the default first
    request_parameters: Tuple[str, ...]  # the per-request parameters of --mode serve it takes

    def __init__(
        self, model: nn.Module, inputs: InputParams, config: BertConfig, id_to_label: List[str], setup: DeviceSetup,
        options: PredictOptions, skip_padding: bool,
    ) -> None: ...

    @staticmethod
    def check_options(options: PredictOptions) -> None:
        """Refuse, with one error line, the options that mean nothing to this head."""

    def predict(self, lines: List[NumberedLine]) -> list:
        """A record per line that holds one (blank lines get none); records keep the line numbers."""

    def render(self, record: Any) -> Iterable[str]:
        """The record as the output format writes it, newline included, in parts written one after
        another (a record of millions of words is never joined into one string)."""

    def closing(self) -> str:
        """What ends the output after the last record (a JSON list's ``]``; usually nothing)."""

    def inference_api_record(self, record: Any) -> Any:
        """The record as the Hugging Face inference API answers for this task (``--mode serve``)."""

    def holds_record(self, line: str) -> bool: ...

    def made_from(self, record: str, number: int, line: str) -> bool:
        """Whether ``record``, as :meth:`render` wrote it, was made from input line ``number`` (``--resume``)."""

    def summary(self) -> str:
        """What was found, for the closing log line."""

    def page(self, records: list, note: Optional[str]) -> str:
        """The HTML page of ``records``."""
