"""``run.py {CPU,GPU} --mode predict``: raw text in, ``model.head``'s predictions out as a stream.

The input is read in chunks of ``chunk_lines`` lines; each chunk's records are written and flushed
in input order before the next chunk is read, so memory stays bounded, output appears at once and a
killed run leaves whole records (``--resume`` goes on, :mod:`modelzoo.predict.resume`). What a line
gets (tags and entities, or a label) is the head's predictor's business
(:mod:`modelzoo.heads.prediction`); this module only streams. Every expected failure is a
:class:`UserError`: one ``error:`` line, before anything is written where it can be checked first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch
from tqdm import tqdm

from modelzoo.common.atomic import write_text_atomic
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.heap import return_freed_memory
from modelzoo.heads.prediction import DOCUMENTS, LinePredictor, NumberedLine, PredictOptions
from modelzoo.params.params import Params
from modelzoo.predict.inference_model import build_predictor
from modelzoo.predict.input_lines import check_input, chunks, count_lines, document_chunks, numbered_lines
from modelzoo.predict.output import Output, check_output_paths
from modelzoo.predict.resume import (
    check_same_run,
    conll_continuation,
    cut_to,
    jsonl_continuation,
    records_of,
    run_identity,
    skip_done,
)


def check_options(options: PredictOptions) -> None:
    """What no head can do with the options given: one error line, before any work."""
    if options.resume and not options.output:
        raise ParamsError("--resume: continues an --output FILE (stdout cannot be continued)")
    if options.resume and options.output_html:
        raise ParamsError("--resume: cannot rebuild --output_html for the lines predicted before; make the page in its own run")
    if options.resume and options.input_format == DOCUMENTS:
        raise ParamsError("--resume: not with --input_format documents (a document cut by the stop would be tagged "
                          "without its first sentences' context); predict the documents left in a run of their own")
    if options.chunk_lines < 1 or options.html_max_lines < 1:
        raise ParamsError("--chunk_lines and --html_max_lines: at least 1")
    check_output_paths(options)


def _continue_or_start(
    options: PredictOptions, predictor: LinePredictor, identity: dict, lines: Iterator[NumberedLine]
) -> Tuple[Iterator[NumberedLine], int, bool]:
    """The input lines left to predict, how many were skipped, and whether the output is appended to.

    A resumed output is checked to be this run's (same identity, every kept record made from its
    line) before its trailing partial record is cut.
    """
    output = Path(options.output) if options.output else None
    if options.resume and output is not None and output.is_file():
        check_same_run(output, identity)
        continuation = conll_continuation(output) if options.output_format == "conll" else jsonl_continuation(output)
        skipped = skip_done(lines, records_of(output, continuation), predictor.holds_record, predictor.made_from, output)
        cut_to(output, continuation)
        return lines, skipped, True
    return lines, 0, False


def run_predict(params: Params, options: PredictOptions, device: torch.device, strict: bool = True) -> None:
    """Stream the input through the model in chunks; write each chunk's records in input order (stdout by
    default), and the HTML page of the first ``html_max_lines`` records at the end if asked."""
    check_input(options.input)
    check_options(options)
    predictor, report, checkpoint = build_predictor(params, options, device, strict)
    for line in report:
        print(line, file=sys.stderr)
    identity = run_identity(options, checkpoint, params.model.head) if options.output else {}
    lines, skipped, appending = _continue_or_start(options, predictor, identity, numbered_lines(options.input))
    output = Output(options.output, append=appending, run_identity=identity)
    page: list = []
    done = 0
    started = time.perf_counter()
    progress = tqdm(total=count_lines(options.input), initial=skipped, unit=" lines", file=sys.stderr, mininterval=1.0)
    try:
        chunked = document_chunks if options.input_format == DOCUMENTS else chunks
        for chunk in chunked(lines, options.chunk_lines):
            records = predictor.predict(chunk)
            if records:
                output.write(part for record in records for part in predictor.render(record))
            done += len(records)
            if options.output_html and len(page) < options.html_max_lines:
                page.extend(records[: options.html_max_lines - len(page)])
            return_freed_memory()
            progress.update(len(chunk))
            progress.set_postfix_str(f"{done / (time.perf_counter() - started):.0f} {predictor.kind}/s", refresh=False)
        if predictor.closing():
            output.write([predictor.closing()])
    finally:
        progress.close()
        output.close()
    if done == 0 and not appending:
        raise DataFileError(options.source_name, None, "the input holds no words")
    _finish(options, predictor, page, done, skipped if appending else None)


def _finish(options: PredictOptions, predictor: LinePredictor, page: list, done: int, skipped: Optional[int]) -> None:
    """The page, if asked, and the closing log line."""
    where = f" to {options.output}" if options.output else ""
    if options.output_html:
        note = None
        if done > len(page):
            note = f"This page shows the first {len(page)} of {done} predicted lines (--html_max_lines); all are in the output."
            print(f"page {options.output_html}: {note}", file=sys.stderr)
        write_text_atomic(options.output_html, predictor.page(page, note))
        where += f", page {options.output_html}"
    resumed = f" after {skipped} lines already done" if skipped is not None else ""
    print(f"predicted {done} {predictor.kind}{resumed}, {predictor.summary()}{where}", file=sys.stderr)
