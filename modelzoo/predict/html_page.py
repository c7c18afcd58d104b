"""One self-contained HTML page that highlights the predicted entities by type (displaCy-style).

Everything is inline (CSS in a ``<style>`` element, no scripts, fonts or images fetched), so the
page opens anywhere and can be mailed. Every piece of input text goes through ``html.escape``:
the text is the user's, and a ``<script>`` in it must show as text, never run.
"""

from __future__ import annotations

import html
from collections import Counter
from itertools import cycle

from modelzoo.predict.records import Prediction

# Colours for the CoNLL-2003 types, then a cycle for any other type (in order of first sight).
KNOWN_COLOURS = {"PER": "#aa9cfc", "ORG": "#7aecec", "LOC": "#ff9561", "MISC": "#bfeeb7", "ENTITY": "#feca74"}
OTHER_COLOURS = ("#e4e7d2", "#c887fb", "#9cc9cc", "#ffeb80", "#f0a8a8", "#b5d3f5", "#d9b99b")

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; line-height: 2.4; color: #222; }
h1 { font-size: 1.3em; line-height: 1.4; }
.legend { margin-bottom: 1.5em; line-height: 2; }
.sentence { margin: 0 0 1em 0; padding-bottom: 0.5em; border-bottom: 1px solid #eee; }
.line-number { color: #999; font-size: 0.75em; margin-right: 0.8em; }
mark.entity, mark.legend-entry { padding: 0.25em 0.45em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1; }
.entity-type { font-size: 0.65em; font-weight: bold; text-transform: uppercase; margin-left: 0.4em; vertical-align: middle; }
"""


def type_colours(predictions: list[Prediction]) -> dict[str, str]:
    """A colour per entity type present, known types first in their usual colours."""
    colours: dict[str, str] = {}
    others = cycle(OTHER_COLOURS)
    for prediction in predictions:
        for entity in prediction.entities:
            if entity.type not in colours:
                colours[entity.type] = KNOWN_COLOURS.get(entity.type) or next(others)
    return colours


def _mark(text: str, entity_type: str, colour: str, css_class: str = "entity") -> str:
    """A highlighted run of text with its type after it; the legend uses the same look, another class."""
    kind = html.escape(entity_type, quote=True)
    return (
        f'<mark class="{css_class}" data-type="{kind}" style="background: {colour}">{html.escape(text)}'
        f'<span class="entity-type">{kind}</span></mark>'
    )


def _sentence(prediction: Prediction, colours: dict[str, str]) -> str:
    parts, position = [], 0
    for entity in prediction.entities:
        parts.append(html.escape(prediction.text[position : entity.start]))
        parts.append(_mark(entity.text, entity.type, colours[entity.type]))
        position = entity.end
    parts.append(html.escape(prediction.text[position:]))
    return f'<p class="sentence"><span class="line-number">{prediction.line}</span>{"".join(parts)}</p>'


def render_page(predictions: list[Prediction], title: str = "Named entities") -> str:
    """The whole page: title, a legend with each type's colour and count, one paragraph per input line."""
    colours = type_colours(predictions)
    counts = Counter(entity.type for prediction in predictions for entity in prediction.entities)
    legend = " ".join(_mark(f"{counts[kind]} ×", kind, colour, "legend-entry") for kind, colour in colours.items())
    body = "\n".join(_sentence(prediction, colours) for prediction in predictions)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<div class="legend">{legend or "no entities found"}</div>\n'
        f"{body}\n</body>\n</html>\n"
    )
