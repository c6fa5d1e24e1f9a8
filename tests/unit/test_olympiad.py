"""OlympiadBench from a file in its released format (soar.data.olympiad), and the paper-olympiad preset."""

import json

import pytest

from soar.config import load_config
from soar.data.problems import load_problems
from soar.errors import DataError

RELEASED = [  # the fields of OE_TO_maths_en_COMP.json (OlympiadBench release); values made up
    {"id": 1606, "subfield": "Combinatorics", "context": None, "question": "How many subsets of $\\\\{1,2,3\\\\}$ are there?",
     "solution": ["There are $2^3$."], "final_answer": ["$8$"], "is_multiple_answer": False, "unit": None,
     "answer_type": "Numerical", "error": None},
    {"id": 1607, "subfield": "Algebra", "context": "Let $f(x)=x^2$.", "question": "Find all $x$ with $f(x)=4$.",
     "solution": ["..."], "final_answer": ["$2$", "$-2$"], "is_multiple_answer": True, "unit": None,
     "answer_type": "Numerical", "error": None},
    {"id": 1608, "subfield": "Geometry", "context": None, "question": "In the figure <image_1>, find the area.",
     "solution": ["..."], "final_answer": ["$6$"], "is_multiple_answer": False, "unit": "cm^2",
     "answer_type": "Numerical", "error": None, "image_1": "data:image/png;base64,AAAA"},
    {"id": 1609, "subfield": "Number Theory", "context": None, "question": "Prove that there are infinitely many primes.",
     "solution": ["..."], "final_answer": None, "is_multiple_answer": False, "unit": None, "answer_type": None,
     "error": None},
    {"id": 1610, "subfield": "Algebra", "context": None, "question": "A car goes 60 km in 1.5 hours. Speed?",
     "solution": ["..."], "final_answer": ["$40$"], "is_multiple_answer": False, "unit": "km/h",
     "answer_type": "Numerical", "error": None},
]


def test_the_released_format_loads_text_only_answerable_problems(tmp_path):
    from soar.data.olympiad import load_olympiadbench

    path = tmp_path / "OE_TO_maths_en_COMP.json"
    path.write_text(json.dumps(RELEASED))
    problems, skipped = load_olympiadbench(path)
    assert [p.id for p in problems] == ["1606", "1607", "1610"]
    assert skipped == {"with an image": 1, "without a final answer": 1}
    assert problems[0].answer == "8" and problems[1].answer == "2, -2"
    assert problems[1].question == "Let $f(x)=x^2$.\n\nFind all $x$ with $f(x)=4$."  # context first
    assert problems[2].metadata["unit"] == "km/h" and problems[2].metadata["source"] == "olympiadbench"
    # the same records through load_problems, as data.source, and as JSONL
    assert load_problems(f"olympiadbench:{path}") == problems
    (tmp_path / "o.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RELEASED))
    assert load_problems(f"olympiadbench:{tmp_path / 'o.jsonl'}") == problems


def test_bad_olympiadbench_input_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="OlympiadBench file not found"):
        load_problems(f"olympiadbench:{missing}")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"problem": "x", "answer": "1"}]))
    with pytest.raises(DataError, match=r"wrong.json: record 0: missing or empty 'question'"):
        load_problems(f"olympiadbench:{wrong}")
    images = tmp_path / "mm.json"
    images.write_text(json.dumps([RELEASED[2]]))
    with pytest.raises(DataError, match="no text-only OlympiadBench problem with a final answer"):
        load_problems(f"olympiadbench:{images}")


def test_paper_olympiad_is_the_held_out_protocol():
    c = load_config("paper-olympiad")
    math = load_config("paper-math")
    assert c.data.source.startswith("olympiadbench:") and c.data.fail_at_k == 128 and c.data.test_fraction == 0.5
    assert c.evaluation.mixing == "mixed" and c.evaluation.fixed_step == 50  # B.6: reported at 50 steps
    assert (c.model, c.student) == (math.model, math.student)  # the same student as the MATH and HARP runs
