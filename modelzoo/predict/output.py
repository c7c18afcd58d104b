"""Where predictions go: stdout or ``--output``, written as a stream, and never over the input.

The output file is opened at the first write (so a run that fails first leaves no file), appended to
when continuing, and flushed after every chunk. Before anything is written, every output path the
run was given is checked against the input: an output that is the input file (the same path, a
symlink to it or a hard link of it) would destroy it, and a run reading its own output would feed
on itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Optional

from modelzoo.common.atomic import write_json_atomic
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.heads.prediction import STDIN, PredictOptions
from modelzoo.predict.resume import run_file


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): they cannot be the same file
        return False


def check_output_paths(options: PredictOptions) -> None:
    """No output may be the input or another output; an HTML page is a file, not a folder."""
    outputs: Dict[str, Optional[str]] = {"--output": options.output, "--output_html": options.output_html}
    given = {flag: path for flag, path in outputs.items() if path is not None}
    for flag, path in given.items():
        if options.input != STDIN and _same_file(path, options.input):
            raise ParamsError(f"{flag} {path} is the input file {options.input}: it would be overwritten; write elsewhere")
        if Path(path).is_dir():
            raise DataFileError(path, None, f"{flag}: is a directory; give a file name")
    if len(given) == 2 and (given["--output"] == given["--output_html"] or _same_file(*given.values())):
        raise ParamsError(f"--output and --output_html are the same file {options.output}: give two names")


class Output:
    """stdout or the ``--output`` file, opened at the first write, appended to when continuing; every
    chunk is flushed at once. A new output file gets its run record (``run_identity``, see
    :mod:`modelzoo.predict.resume`) just before it is opened."""

    def __init__(self, path: Optional[str], append: bool, run_identity: Dict[str, Any]) -> None:
        self.path, self.append, self.run_identity = path, append, run_identity
        self._stream: Optional[IO[str]] = None

    def write(self, texts: Iterable[str]) -> None:
        """Write ``texts`` one after the other (a chunk's records, never joined into one more copy), then
        flush; the file is opened once the first text has been made."""
        for text in texts:
            self._open().write(text)
        if self._stream is not None:
            self._stream.flush()

    def _open(self) -> IO[str]:
        if self._stream is None:
            mode = "a" if self.append else "w"
            if self.path is not None and not self.append:
                write_json_atomic(run_file(Path(self.path)), self.run_identity)
            # closed by close(), after the last chunk: the stream lives across the whole loop
            self._stream = sys.stdout if self.path is None else open(self.path, mode, encoding="utf-8", newline="")  # noqa: SIM115
        return self._stream

    def close(self) -> None:
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
