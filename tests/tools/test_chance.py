"""The chance-level tool: the best constant answer per group, scored as eval scores."""

from __future__ import annotations

import pytest

from rova.data.records import VideoQARecord
from rova.tools.chance import constant_answer_baseline


def _record(i, answer, problem_type="multiple choice", kind="a"):
    return VideoQARecord(i, "q", "video", problem_type, ["A. x", "B. y", "C. z", "D. w"], f"<answer>{answer}</answer>",
                         "/v.mp4", extra={"task": {"kind": kind}})


def test_balanced_multiple_choice_is_one_over_the_options_and_skew_is_found():
    records = [_record(i, "ABCD"[i % 4]) for i in range(8)] + [_record(9, "B", kind="b"), _record(10, "B", kind="b"),
                                                               _record(11, "C", kind="b")]
    rows = constant_answer_baseline(records, "task.kind")
    assert rows["a"]["score"] == pytest.approx(0.25) and rows["a"]["n"] == 8
    assert rows["b"] == {"n": 3, "problem_type": "multiple choice", "answer": "B", "score": pytest.approx(2 / 3)}


def test_regression_chance_uses_mra_and_groups_default_to_the_problem_type():
    records = [_record(i, str(v), "regression") for i, v in enumerate([10, 20, 30])]
    rows = constant_answer_baseline(records)
    assert list(rows) == ["regression"] and rows["regression"]["answer"] == "20"
    assert 0 < rows["regression"]["score"] < 1  # MRA gives partial credit to a near answer
