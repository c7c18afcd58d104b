"""The HTML page of predictions: entity marks with their types, a legend, escaped text, in a real browser too."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from modelzoo.predict.html_page import render_page
from modelzoo.predict.records import make_prediction
from modelzoo.predict.tokenize_raw import split_words

LINES = {
    "Angela Merkel met Emmanuel Macron in Paris.": ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"],
    "<script>alert('x')</script> & Apple Inc": None,  # tagged below: Apple Inc is an ORG
}


def predictions():
    result = []
    for number, (line, tags) in enumerate(LINES.items(), start=1):
        words = split_words(line)
        tags = tags or ["O"] * (len(words) - 2) + ["B-ORG", "I-ORG"]
        result.append(make_prediction(number, line, words, tags))
    return result


class _Marks(HTMLParser):
    """Collects (class, data-type, text) of every <mark>, and whether any <script> element exists."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[str, str, str]] = []
        self.scripts = 0
        self._open: list | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "mark":
            self._open = [attributes.get("class"), attributes.get("data-type"), ""]
        elif self._open is not None:
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "mark" and self._open is not None:
            self.marks.append(tuple(self._open))
            self._open = None
        elif self._open is not None:
            self._depth -= 1

    def handle_data(self, data):
        if self._open is not None and self._depth == 0:
            self._open[2] += data


def test_page_marks_each_entity_with_its_type_and_has_a_legend():
    parser = _Marks()
    parser.feed(render_page(predictions()))
    entities = [(kind, text) for css, kind, text in parser.marks if css == "entity"]
    assert entities == [("PER", "Angela Merkel"), ("PER", "Emmanuel Macron"), ("LOC", "Paris"), ("ORG", "Apple Inc")]
    legend = {kind: text for css, kind, text in parser.marks if css == "legend-entry"}
    assert legend == {"PER": "2 ×", "LOC": "1 ×", "ORG": "1 ×"}


def test_text_is_escaped_never_injected():
    page = render_page(predictions())
    parser = _Marks()
    parser.feed(page)
    assert parser.scripts == 0
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; " in page


def test_page_is_self_contained():
    page = render_page(predictions())
    assert "<style>" in page
    for reference in ("src=", "href=", "@import", "url("):
        assert reference not in page


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.mark.slow
def test_headless_chromium_renders_the_entity_marks(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("apt-get install -y chromium chromium-driver")
    page = tmp_path / "page.html"
    page.write_text(render_page(predictions()), encoding="utf-8")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    parser = _Marks()
    parser.feed(dom)  # the DOM as the browser built it, not the file as written
    entities = [(kind, text) for css, kind, text in parser.marks if css == "entity"]
    assert entities == [("PER", "Angela Merkel"), ("PER", "Emmanuel Macron"), ("LOC", "Paris"), ("ORG", "Apple Inc")]
    assert parser.scripts == 0
    screenshot = tmp_path / "page.png"
    subprocess.run([*command, f"--screenshot={screenshot}", "--window-size=1000,600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
