"""VideoChat-R1's strict per-task format (reward.format_rule=per_task): the linear matcher equals re.fullmatch of
the spec's patterns, grounded QA needs <glue>, tracking a valid box list of the ground truth's length."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.rewards.format_rules import strict_format_score, tags_fullmatch

PATTERNS = {
    ("think", "answer"): r"<think>.*?</think>\s*<answer>.*?</answer>",
    ("think", "answer", "glue"): r"<think>.*?</think>\s*<answer>.*?</answer>\s*<glue>.*?</glue>",
}
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "<glue>", "</glue>", " ", "\n", "a", "<", "\u00a0"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), st.sampled_from(sorted(PATTERNS)))
def test_the_linear_matcher_equals_the_spec_regex(text, tags):
    assert tags_fullmatch(text, tags) == bool(re.fullmatch(PATTERNS[tags], text, re.DOTALL))


GT_TRACK = "<answer>[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]</answer>"


@pytest.mark.parametrize("completion,problem_type,solution,expected", [
    ("<think>x</think> <answer>B</answer>", "multiple choice", "<answer>B</answer>", 1.0),
    (" <think>x</think><answer>B</answer>", "multiple choice", "<answer>B</answer>", 0.0),   # fullmatch: no padding
    ("<think>x</think><answer>B</answer>\n", "multiple choice", "<answer>B</answer>", 0.0),
    ("<answer>B</answer>", "multiple choice", "<answer>B</answer>", 0.0),
    ("<think>x</think><answer>[1, 2]</answer>", "grounding", "<answer>[1, 2]</answer>", 1.0),
    ("<think>x</think><answer>B</answer>\n<glue>[(1, 2)]</glue>", "grounded_qa", "<answer>B</answer><glue>[]</glue>",
     1.0),
    ("<think>x</think><answer>B</answer>", "grounded_qa", "<answer>B</answer><glue>[]</glue>", 0.0),  # no glue
    ("<think>x</think><answer>[[0, 0, 1, 1], [0, 0, 0.2, 0.2]]</answer>", "tracking", GT_TRACK, 1.0),
    ("<think>x</think><answer>[[0, 0, 1, 1]]</answer>", "tracking", GT_TRACK, 0.0),                   # K = 1, not 2
    ("<think>x</think><answer>[[0, 0, 1, 1], [0, 0, 2, 2]]</answer>", "tracking", GT_TRACK, 0.0),     # not in [0, 1]
    ("<think>x</think><answer>two boxes</answer>", "tracking", GT_TRACK, 0.0),
])
def test_strict_rules_per_task(completion, problem_type, solution, expected):
    assert strict_format_score(completion, problem_type, solution) == expected


@pytest.mark.timeout(60)
def test_huge_outputs_stay_linear():
    # Guards against quadratic backtracking (minutes on 1 MB); not a performance assertion.
    for text in ("<think>" + "</think> " * 200_000 + "<answer>", "<think>" + "</answer>\n" * 200_000 + "</glue>"):
        assert tags_fullmatch(text, ("think", "answer", "glue")) is False
        assert tags_fullmatch(text + "</answer>", ("think", "answer")) in (True, False)


NASTY = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(PIECES + ["[[0, 0, 1, 1]]", "nan", "[(", ")]"]),
                                                  max_size=20).map("".join))


@settings(max_examples=200, deadline=None)
@given(NASTY, st.sampled_from(["multiple choice", "grounding", "grounded_qa", "tracking", "free-form"]))
def test_strict_format_is_total(text, problem_type):
    assert strict_format_score(text, problem_type, GT_TRACK) in (0.0, 1.0)
