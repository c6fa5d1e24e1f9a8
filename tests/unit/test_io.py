"""soar.io's one JSONL reader: the one rule for a line torn by a kill, and the repair a reader that appends needs."""

import json

import pytest

from soar.errors import SoarError
from soar.io import append_jsonl, iter_jsonl, read_jsonl


def test_a_torn_last_line_is_skipped_and_repair_cuts_it_so_appends_start_clean(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [{"i": 0}, {"i": 1}])
    path.write_text(path.read_text() + '{"i": 2, "acc')  # a kill in mid-append: no newline after it
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]
    assert path.read_text().endswith('"acc')  # reading alone changes nothing
    assert read_jsonl(path, repair=True) == [{"i": 0}, {"i": 1}]
    append_jsonl(path, [{"i": 2}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_a_bad_line_elsewhere_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"i": 0}\nnot json\n{"i": 2}\n')
    with pytest.raises(SoarError, match=r"run.jsonl:2: not valid JSON"):
        read_jsonl(path)
    torn_but_terminated = tmp_path / "t.jsonl"
    torn_but_terminated.write_text('{"i": 0}\n{"i": \n')  # ends with a newline: a whole line, not a torn append
    with pytest.raises(SoarError, match=r"t.jsonl:2"):
        read_jsonl(torn_but_terminated)


def test_a_person_s_file_gets_the_error_even_on_its_last_line(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text('{"question": "q", "answer": "1"}\n{"question": ')
    with pytest.raises(SoarError, match=r"problems.jsonl:2"):
        list(iter_jsonl(path, torn_tail=False))
    assert read_jsonl(tmp_path / "absent.jsonl") == []
