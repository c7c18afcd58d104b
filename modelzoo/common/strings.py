"""``str.removeprefix`` and ``str.removesuffix`` for the Pythons that lack them.

The library runs on Python 3.8 (the Poplar SDK's, PYTHON-SETUP.md); the two methods came in 3.9.
"""

from __future__ import annotations


def remove_prefix(text: str, prefix: str) -> str:
    """``text.removeprefix(prefix)``: ``text`` without ``prefix`` if it starts with it, else ``text``."""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def remove_suffix(text: str, suffix: str) -> str:
    """``text.removesuffix(suffix)``: ``text`` without ``suffix`` if it ends with it, else ``text``."""
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text
