"""The HTML page of predictions: entity marks with types and score tooltips, a legend, text that is
escaped, shown visibly when it is a control character and isolated when it is bidirectional, in a
real browser too; the classifier's page of labels."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from modelzoo.data.raw_words import split_words
from modelzoo.heads.sequence_classification.predictor import Classification, render_classification_page
from modelzoo.heads.token_classification.predictor import render_page
from modelzoo.heads.token_classification.records import make_prediction

LINES = {
    "Angela Merkel met Emmanuel Macron in Paris.": ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"],
    "<script>alert('x')</script> & Apple Inc": None,  # tagged below: Apple Inc is an ORG
}
ENTITIES = [("PER", "Angela Merkel"), ("PER", "Emmanuel Macron"), ("LOC", "Paris"), ("ORG", "Apple Inc")]
RIGHT_TO_LEFT_OVERRIDE = "\u202e"


def predictions():
    result = []
    for number, (line, tags) in enumerate(LINES.items(), start=1):
        words = split_words(line)
        tags = tags or ["O"] * (len(words) - 2) + ["B-ORG", "I-ORG"]
        scores = [0.25 + 0.75 * index / len(words) for index in range(len(words))]
        result.append(make_prediction(number, line, words, tags, scores))
    return result


class _Marks(HTMLParser):
    """Collects (class, data-type, title, text) of every <mark> (its text without the type label),
    whether any <script> exists, and how many <bdi> elements there are."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[str, str, str | None, str]] = []
        self.scripts = self.isolates = 0
        self._open: list | None = None
        self._in_type_label = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.scripts += tag == "script"
        self.isolates += tag == "bdi"
        if tag == "mark":
            self._open = [attributes.get("class"), attributes.get("data-type"), attributes.get("title"), ""]
        elif tag == "span" and attributes.get("class") == "entity-type":
            self._in_type_label = True

    def handle_endtag(self, tag):
        if tag == "mark" and self._open is not None:
            self.marks.append(tuple(self._open))
            self._open = None
        elif tag == "span":
            self._in_type_label = False

    def handle_data(self, data):
        if self._open is not None and not self._in_type_label:
            self._open[3] += data


def parsed(page: str) -> _Marks:
    parser = _Marks()
    parser.feed(page)
    return parser


def test_page_marks_each_entity_with_its_type_and_score_and_has_a_legend():
    marks = parsed(render_page(predictions())).marks
    entities = [(kind, text) for css, kind, _, text in marks if css == "entity"]
    assert entities == ENTITIES
    scores = [entity.score for prediction in predictions() for entity in prediction.entities]
    assert [title for css, _, title, _ in marks if css == "entity"] == [
        f"{kind}, score {score:.2f}" for (kind, _), score in zip(ENTITIES, scores, strict=True)
    ]
    legend = {kind: text for css, kind, _, text in marks if css == "legend-entry"}
    assert legend == {"PER": "2 ×", "LOC": "1 ×", "ORG": "1 ×"}


def test_text_is_escaped_never_injected():
    page = render_page(predictions())
    assert parsed(page).scripts == 0
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; " in page


def test_control_characters_are_shown_as_symbols_never_raw():
    line = "Paris\x00 and\x1b[31m Rome\x85 ."
    words = split_words(line)
    page = render_page([make_prediction(1, line, words, ["B-LOC"] + ["O"] * (len(words) - 1), [0.9] * len(words))])
    for raw in ("\x00", "\x1b", "\x85"):
        assert raw not in page
    assert '<span class="control">\u2400</span>' in page  # NUL as the "symbol for null"
    assert '<span class="control">\u241b</span>[31m' in page
    assert '<span class="control">\\x85</span>' in page


def test_a_right_to_left_override_stays_inside_its_own_isolate():
    line = f"evil {RIGHT_TO_LEFT_OVERRIDE}txet Paris ."
    words = split_words(line)
    tags = ["O", "O", "B-LOC", "O"]
    page = render_page([make_prediction(1, line, words, tags, [0.9] * len(words)), *predictions()])
    body = page[page.index('<p class="sentence">') :]
    for piece in body.split("<bdi>")[1:]:  # every run of user text sits in a <bdi> of its own
        assert "<" not in piece[: piece.index("</bdi>")].replace("<span class=\"control\">", "")
    override_run = next(piece for piece in body.split("<bdi>") if RIGHT_TO_LEFT_OVERRIDE in piece)
    assert override_run.index(RIGHT_TO_LEFT_OVERRIDE) < override_run.index("</bdi>")  # closed before the mark
    assert parsed(page).isolates >= 2 * len(tags)


def test_page_is_self_contained():
    page = render_page(predictions())
    assert "<style>" in page
    for reference in ("src=", "href=", "@import", "url("):
        assert reference not in page


def test_a_capped_page_says_so():
    page = render_page(predictions()[:1], note="This page shows the first 1 of 2 predicted lines")
    assert '<div class="note">This page shows the first 1 of 2 predicted lines</div>' in page


def test_the_classifier_page_has_a_row_per_line_with_label_and_score():
    items = [Classification(1, "a warm story", "1", 0.93, {"0": 0.07, "1": 0.93}),
             Classification(3, "<b>dull</b>", "0", 0.61, {"0": 0.61, "1": 0.39})]
    page = render_classification_page(items)
    assert page.count('<tr class="classified">') == 2
    labels = [(kind, text) for css, kind, _, text in parsed(page).marks if css == "label"]
    assert labels == [("1", "1"), ("0", "0")]
    assert '<td class="score">0.93</td>' in page and '<td class="score">0.61</td>' in page
    assert "&lt;b&gt;dull&lt;/b&gt;" in page


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.mark.slow
def test_headless_chromium_renders_the_entity_marks_and_tooltips(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("apt-get install -y chromium chromium-driver")
    page = tmp_path / "page.html"
    line = f"{RIGHT_TO_LEFT_OVERRIDE}evil\x00 Paris ."
    words = split_words(line)
    extra = make_prediction(3, line, words, ["O", "B-LOC", "O"], [0.9, 0.35, 0.9])
    page.write_text(render_page([*predictions(), extra]), encoding="utf-8")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    browser = parsed(dom)  # the DOM as the browser built it, not the file as written
    entities = [(kind, text, title) for css, kind, title, text in browser.marks if css == "entity"]
    assert [(kind, text) for kind, text, _ in entities] == [*ENTITIES, ("LOC", "Paris")]
    assert entities[-1][2] == "LOC, score 0.35"  # the tooltip the browser shows on hover
    assert browser.scripts == 0
    assert "\x00" not in dom and "\u2400" in dom
    assert browser.isolates > 0
    screenshot = tmp_path / "page.png"
    subprocess.run([*command, f"--screenshot={screenshot}", "--window-size=1000,600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
