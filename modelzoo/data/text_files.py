"""Reading a data file as UTF-8 text, pointing at the line of the first byte that is not UTF-8."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from modelzoo.common.errors import DataFileError


def read_utf8_text(path: Union[str, Path], what: str = "file") -> str:
    """The file's text (a leading byte-order mark dropped); DataFileError if missing or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, None, f"{what} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataFileError(
            path, line, f"not UTF-8: byte 0x{data[error.start]:02x} cannot be decoded ({error.reason})"
        ) from error
