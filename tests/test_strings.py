"""remove_prefix and remove_suffix: str.removeprefix and str.removesuffix for Python 3.8."""

from __future__ import annotations

import pytest

from modelzoo.common.strings import remove_prefix, remove_suffix


@pytest.mark.parametrize(
    ("text", "prefix", "expected"),
    [("bert.encoder", "bert.", "encoder"), ("cls.bias", "bert.", "cls.bias"), ("bert.", "bert.", ""),
     ("abc", "", "abc"), ("ab", "abc", "ab")],
)
def test_remove_prefix(text, prefix, expected):
    assert remove_prefix(text, prefix) == expected


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [("line\r", "\r", "line"), ("line\r\r", "\r", "line\r"), ("line", "\r", "line"), ("abc", "", "abc"),
     ("\n", "\n", "")],
)
def test_remove_suffix(text, suffix, expected):
    assert remove_suffix(text, suffix) == expected
