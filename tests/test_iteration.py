"""zip_strict: zip(..., strict=True) for Python 3.8, which has no strict."""

from __future__ import annotations

import pytest

from modelzoo.common.iteration import zip_strict


def test_equal_lengths_pair_up_like_zip():
    assert list(zip_strict([1, 2, 3], "abc", iter((True, False, None)))) == [(1, "a", True), (2, "b", False), (3, "c", None)]
    assert list(zip_strict()) == []
    assert list(zip_strict([], "")) == []


@pytest.mark.parametrize(
    ("iterables", "lengths"),
    [(([1, 2, 3], "ab"), "3, 2"), (("ab", [1, 2, 3]), "2, 3"), (([1], iter([]), (4, 5)), "1, 0, 2")],
)
def test_unequal_lengths_raise_naming_the_lengths(iterables, lengths):
    with pytest.raises(ValueError, match=rf"different lengths \({lengths}\)"):
        list(zip_strict(*iterables))


def test_pairs_before_the_mismatch_come_out_first():
    """Lazy like zip: a consumer sees the rows that do line up before the error."""
    rows = zip_strict([1, 2, 3], "ab")
    assert next(rows) == (1, "a")
    assert next(rows) == (2, "b")
    with pytest.raises(ValueError):
        next(rows)
