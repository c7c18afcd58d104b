"""The frame of the HTML page of predictions, which each head's predictor fills (entities highlighted
by type, displaCy-style, or a row per line with its label).

Everything is inline (CSS in a ``<style>`` element, no scripts, fonts or images fetched), so the
page opens anywhere and can be mailed. The text is the user's, so it is never trusted: every piece
goes through ``html.escape`` (a ``<script>`` in it shows as text, never runs); control characters
(NUL, escape, the C1 range) are shown as visible symbols instead of reaching the browser raw; and
every run of text sits in its own ``<bdi>``, so a right-to-left override in a line cannot reorder
the entity marks, their labels or the lines after it. Each entity's tooltip (``title``) gives its
type and score. A page holds at most ``--html_max_lines`` lines and says so when the input had more.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from itertools import cycle
from typing import Dict, List, Optional

# Colours for the CoNLL-2003 types, then a cycle for any other type (in order of first sight).
KNOWN_COLOURS = {"PER": "#aa9cfc", "ORG": "#7aecec", "LOC": "#ff9561", "MISC": "#bfeeb7", "ENTITY": "#feca74"}
OTHER_COLOURS = ("#e4e7d2", "#c887fb", "#9cc9cc", "#ffeb80", "#f0a8a8", "#b5d3f5", "#d9b99b")

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; line-height: 2.4; color: #222; }
h1 { font-size: 1.3em; line-height: 1.4; }
.legend, .note { margin-bottom: 1.5em; line-height: 2; }
.sentence { margin: 0 0 1em 0; padding-bottom: 0.5em; border-bottom: 1px solid #eee; }
.line-number { color: #999; font-size: 0.75em; margin-right: 0.8em; }
.control { color: #c00; }
mark.entity, mark.legend-entry, mark.label { padding: 0.25em 0.45em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1; }
.entity-type { font-size: 0.65em; font-weight: bold; text-transform: uppercase; margin-left: 0.4em; vertical-align: middle; }
td { padding: 0.2em 0.8em; vertical-align: top; line-height: 1.6; }
"""


def visible_text(text: str) -> str:
    """``text`` HTML-escaped, its control characters as visible symbols (U+2400.. for C0, ``\\xNN`` for the rest)."""
    def symbol(match: re.Match) -> str:
        code = ord(match.group())
        shown = chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else f"\\x{code:02x}"
        return f'<span class="control">{shown}</span>'

    return _CONTROL.sub(symbol, html.escape(text))


def isolated(text: str) -> str:
    return f"<bdi>{visible_text(text)}</bdi>"


def type_colours(kinds: List[str]) -> Dict[str, str]:
    """A colour per type (entity type or label) in order of first sight, known types in their usual colours."""
    colours: Dict[str, str] = {}
    others = cycle(OTHER_COLOURS)
    for kind in kinds:
        if kind not in colours:
            colours[kind] = KNOWN_COLOURS.get(kind) or next(others)
    return colours


def mark(text: str, kind: str, colour: str, css_class: str, tooltip: Optional[str] = None) -> str:
    """A highlighted run of text with its type after it; the legend uses the same look, another class."""
    kind_text = html.escape(kind, quote=True)
    title = f' title="{html.escape(tooltip, quote=True)}"' if tooltip else ""
    return (
        f'<mark class="{css_class}" data-type="{kind_text}"{title} style="background: {colour}">{isolated(text)}'
        f'<span class="entity-type">{kind_text}</span></mark>'
    )


def entity_tooltip(kind: str, score: float) -> str:
    return f"{kind}, score {score:.2f}"


def page(title: str, legend_html: str, body: str, note: Optional[str]) -> str:
    note_html = f'<div class="note">{html.escape(note)}</div>\n' if note else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{note_html}"
        f'<div class="legend">{legend_html}</div>\n'
        f"{body}\n</body>\n</html>\n"
    )


def legend(kinds: List[str], colours: Dict[str, str]) -> str:
    """Each type's colour and how often it occurs."""
    counts = Counter(kinds)
    return " ".join(mark(f"{counts[kind]} ×", kind, colour, "legend-entry") for kind, colour in colours.items())
