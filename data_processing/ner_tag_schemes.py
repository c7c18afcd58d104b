"""Word tags in IOB2, IOB1, BIOES (IOBES) or BILOU -> IOB2, the one scheme the CSV holds.

IOB2 (every entity begins with ``B-``) is what evaluation and the label vocab read. The others:
IOB1 begins an entity with ``I-`` unless it touches one of the same type; BIOES marks the last word
``E-`` and a one-word entity ``S-``; BILOU says ``L-`` and ``U-`` for the same. The scheme is given
(``--tag_scheme``) or read off the tags where they leave no doubt: ``E``/``S`` tags mean BIOES,
``L``/``U`` tags BILOU, only ``B``/``I`` IOB2. IOB1 is never guessed: an entity that begins with
``I-`` is what a broken IOB2 file looks like too, so it is refused unless ``--tag_scheme iob1`` says
which it is. A tag sequence the scheme does not allow (an ``E-`` that closes no entity, a BIOES
``B-`` never closed) is refused with its place rather than converted into different entities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple

from data_processing.ner_raw import Sentence
from modelzoo.common.errors import DataFileError

IOB2, IOB1, BIOES, BILOU = "iob2", "iob1", "bioes", "bilou"
TAG_SCHEMES = (IOB2, IOB1, BIOES, BILOU)
# Per scheme: (begin, inside, end, single) prefixes; IOB has no end or single tag.
_PREFIXES = {IOB2: ("B", "I", None, None), IOB1: ("B", "I", None, None), BIOES: ("B", "I", "E", "S"),
             BILOU: ("B", "I", "L", "U")}
_OUTSIDE = "O"


def _split(tag: str) -> Tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"I"`` -> ``("I", "")``."""
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type


def detect_scheme(tags: Iterable[str], where: str) -> str:
    """The scheme the set of ``tags`` leaves no doubt about; ``where`` names the files in an error."""
    prefixes = {_split(tag)[0] for tag in tags}
    bioes, bilou = prefixes & {"E", "S"}, prefixes & {"L", "U"}
    if bioes and bilou:
        raise DataFileError(
            where, None, f"tags with {'/'.join(sorted(bioes))} (BIOES) and {'/'.join(sorted(bilou))} (BILOU) "
            "prefixes: give --tag_scheme"
        )
    return BIOES if bioes else BILOU if bilou else IOB2


class TagConverter:
    """Rewrites one sentence's tags into IOB2 (checking them against ``scheme``) and counts the changes."""

    def __init__(self, scheme: str, source: str) -> None:
        if scheme not in TAG_SCHEMES:
            raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {TAG_SCHEMES}")
        self.scheme, self.source = scheme, source
        self.begin, self.inside, self.end, self.single = _PREFIXES[scheme]
        self.allowed = {prefix for prefix in _PREFIXES[scheme] if prefix}
        self.rewritten = 0

    def convert(self, path: Path, sentence: Sentence) -> None:
        """``sentence.labels`` in IOB2, in place; DataFileError at the first tag the scheme does not allow."""
        converted = self.iob2_tags(sentence.labels, lambda index, problem: DataFileError(
            path, sentence.where(index), problem))
        self.rewritten += sum(old != new for old, new in zip(sentence.labels, converted))
        sentence.labels = converted

    def iob2_tags(self, tags: List[str], error: Callable[[int, str], DataFileError]) -> List[str]:
        scheme_name = self.scheme.upper()
        converted: List[str] = []
        open_type: Optional[str] = None  # the entity type a BIOES/BILOU begin tag left open
        previous = _OUTSIDE
        for index, tag in enumerate(tags):
            if tag == _OUTSIDE:
                prefix, entity_type = _OUTSIDE, ""
            else:
                prefix, entity_type = _split(tag)
                if prefix not in self.allowed:
                    raise error(index, f"label {tag!r} is not {scheme_name} ({self.source}); "
                                f"--tag_scheme says which of {', '.join(TAG_SCHEMES)} the tags are")
            closing = self.end is not None
            if closing and open_type is not None and prefix not in (self.inside, self.end):
                raise error(index, f"label {tag!r} after {previous!r}: the {scheme_name} entity before is never "
                            f"closed by {self.end}- (a one-word entity is {self.single}-)")
            continues = prefix in (self.inside, self.end) and (
                open_type == entity_type if closing else _continues(previous, entity_type))
            if prefix in (self.inside, self.end) and not continues:
                if self.scheme == IOB2:
                    raise error(index, f"label {tag!r} begins an entity: the file is IOB1 (or broken IOB2), this "
                                "project reads IOB2; --tag_scheme iob1 turns every entity-starting I- into B-")
                if self.scheme != IOB1:
                    raise error(index, f"label {tag!r} after {previous!r} continues no {scheme_name} entity")
                converted.append(f"B-{entity_type}" if entity_type else "B")
            elif prefix == _OUTSIDE:
                converted.append(_OUTSIDE)
            else:
                iob2_prefix = "B" if prefix in (self.begin, self.single) else "I"
                converted.append(f"{iob2_prefix}-{entity_type}" if entity_type else iob2_prefix)
            if closing:
                open_type = entity_type if prefix in (self.begin, self.inside) else None
            previous = tag
        if open_type is not None:
            raise error(len(tags) - 1, f"the sentence ends inside a {scheme_name} entity (never closed by {self.end}-)")
        return converted


def _continues(previous: str, entity_type: str) -> bool:
    """Whether an IOB ``I`` tag of ``entity_type`` continues the entity ``previous`` belongs to."""
    return previous != _OUTSIDE and _split(previous)[1] == entity_type

