"""Streaming prediction's pieces: numbered lines, chunks aligned to line numbers, where ``--resume`` goes on."""

from __future__ import annotations

import json

import pytest

from modelzoo.common.errors import DataFileError
from modelzoo.predict.input_lines import check_input, chunks, count_lines, numbered_lines
from modelzoo.predict.resume import conll_continuation, cut_to, jsonl_continuation


def test_lines_are_numbered_from_one_with_line_ends_removed(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\r\ntwo\n\nthree")
    assert list(numbered_lines(str(path))) == [(1, "one"), (2, "two"), (3, ""), (4, "three")]
    assert count_lines(str(path)) == 4
    path.write_bytes(b"one\ntwo\n")
    assert count_lines(str(path)) == len(list(numbered_lines(str(path)))) == 2


def test_a_bad_byte_names_its_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(DataFileError, match=r"in.txt:3: not UTF-8 text \(byte 5 of the line\)"):
        list(numbered_lines(str(path)))


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(DataFileError, match="is a directory, not a text file"):
        check_input(str(tmp_path))
    with pytest.raises(DataFileError, match="input file not found"):
        check_input(str(tmp_path / "absent.txt"))


def test_chunks_end_at_multiples_of_the_chunk_size_wherever_they_start():
    lines = [(number, f"line {number}") for number in range(1, 24)]
    assert [[n for n, _ in chunk] for chunk in chunks(iter(lines), 10)] == [
        list(range(1, 11)), list(range(11, 21)), list(range(21, 24))
    ]
    resumed = chunks(iter(lines[6:]), 10)  # a run continued after line 6
    assert [[n for n, _ in chunk] for chunk in resumed] == [list(range(7, 11)), list(range(11, 21)), list(range(21, 24))]
    assert list(chunks(iter([]), 10)) == []


def _records(numbers):
    return "".join(json.dumps({"line": number, "text": "x" * number}) + "\n" for number in numbers)


def test_jsonl_continuation_keeps_whole_records_and_cuts_a_partial_one(tmp_path):
    path = tmp_path / "out.jsonl"
    whole = _records([1, 2, 5])
    path.write_text(whole + '{"line": 6, "te', encoding="utf-8")
    continuation = jsonl_continuation(path)
    assert (continuation.last_line, continuation.keep_bytes) == (5, len(whole.encode()))
    cut_to(path, continuation)
    assert path.read_text(encoding="utf-8") == whole
    assert jsonl_continuation(path).last_line == 5  # nothing partial left: the same point again


def test_jsonl_continuation_of_an_empty_or_foreign_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"line": 1, "te', encoding="utf-8")
    assert (jsonl_continuation(path).last_line, jsonl_continuation(path).keep_bytes) == (0, 0)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="not a predict JSON record"):
        jsonl_continuation(path)


def test_a_long_last_record_is_found_across_read_blocks(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(_records([1, 200_000]), encoding="utf-8")  # the last record spans several 64 KiB blocks
    assert jsonl_continuation(path).last_line == 200_000


def test_conll_continuation_counts_complete_sentence_blocks(tmp_path):
    path = tmp_path / "out.tsv"
    whole = "Paris\tB-LOC\n.\tO\n\nHe\tO\nsaw\tO\n\n"
    path.write_text(whole + "Rome\tB-LOC\nis", encoding="utf-8")
    continuation = conll_continuation(path)
    assert (continuation.sentences, continuation.keep_bytes) == (2, len(whole.encode()))
    cut_to(path, continuation)
    assert path.read_text(encoding="utf-8") == whole


def test_conll_blocks_are_counted_across_read_blocks(tmp_path):
    path = tmp_path / "out.tsv"
    whole = "w\tO\n\n" * 60_000  # 300 kB in 64 KiB reads: the 4th read ends between the two newlines
    path.write_text(whole + "cut\tO", encoding="utf-8")
    continuation = conll_continuation(path)
    assert (continuation.sentences, continuation.keep_bytes) == (60_000, len(whole))
