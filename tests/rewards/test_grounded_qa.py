"""Grounded QA (VideoChat-R1): the option letter's accuracy plus the glue IoU of the interval UNIONS; hand-computed
values and the edge cases of ../shared/docs/methods.md (empty sets, zero unions, unparsable)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.rewards import accuracy_score, segments_iou
from rova.rewards.accuracy import RewardDataError
from rova.rewards.choices import parse_grounded_choice
from rova.rewards.glue import glue_iou, glue_score, parse_glue

SETTINGS = settings(max_examples=80, deadline=None)
SOLUTION = "<answer>B</answer><glue>[(1.0, 3.0), (6, 8)]</glue>"


@pytest.mark.parametrize("answer,letter", [
    ("B", "B"), ("(C) a dog", "C"), ("The best answer is D", "D"), ("The answer is: E.", "E"),
    ("Answer: A", "A"), ("best answer is (G)", "G"), ("Because F", "F"), ("H", None), ("", None), ("dog", None),
    ("b", None),
])
def test_the_letter_is_the_first_a_to_g_after_the_prefix(answer, letter):
    assert parse_grounded_choice(answer) == letter


def test_accuracy_is_the_letter_only():
    assert accuracy_score("<answer>The best answer is B</answer><glue>[]</glue>", SOLUTION, "grounded_qa") == 1.0
    assert accuracy_score("<answer>C</answer><glue>[(1.0, 3.0), (6, 8)]</glue>", SOLUTION, "grounded_qa") == 0.0
    assert accuracy_score("<answer>none</answer>", SOLUTION, "grounded_qa") == 0.0


def test_glue_iou_of_unions_by_hand():
    # gt union: [1, 3] + [6, 8] = 4 s; pred [2, 7]: intersection [2, 3] + [6, 7] = 2, union [1, 8] = 7
    assert glue_score("<glue>[(2, 7)]</glue>", SOLUTION) == pytest.approx(2 / 7)
    # overlapping predicted intervals are merged first: [1, 2] + [1.5, 3] = [1, 3]
    assert glue_score("<glue>[(1, 2), (1.5, 3), (6, 8)]</glue>", SOLUTION) == 1.0
    assert glue_score("<glue>[[6, 8], [1, 3]]</glue>", SOLUTION) == 1.0  # order and bracket style free
    assert glue_iou([(0, 1)], [(2, 3)]) == 0.0


def test_empty_sets_and_zero_unions():
    assert glue_iou([], []) == 1.0                  # both empty: VideoChat-R1's rule, kept
    assert glue_iou([], [(1, 2)]) == 0.0 and glue_iou([(1, 2)], []) == 0.0
    assert glue_iou([(2, 2)], [(2, 2)]) == 0.0      # non-empty sets with a zero-length union
    assert glue_iou([(2, 2)], [(1, 3)]) == 0.0
    assert glue_score("<glue>[]</glue>", "<answer>A</answer><glue>[]</glue>") == 1.0


@pytest.mark.parametrize("completion", [
    "<answer>B</answer>",                                  # no glue span
    "<glue>(1, 3)</glue>", "<glue>[(1, 3)</glue>", "<glue>[(3, 1)]</glue>", "<glue>[(-1, 3)]</glue>",
    "<glue>[(1, 2, 3)]</glue>", "<glue>[(1, nan)]</glue>", "<glue>[(1, 1e309)]</glue>", "<glue>1 to 3</glue>",
])
def test_unparsable_glue_scores_zero(completion):
    assert glue_score(completion, SOLUTION) == 0.0


def test_a_solution_without_glue_or_letter_is_a_data_error():
    with pytest.raises(RewardDataError):
        glue_score("<glue>[]</glue>", "<answer>B</answer>")
    with pytest.raises(RewardDataError):
        accuracy_score("<answer>B</answer>", "<answer>B</answer>", "grounded_qa")
    with pytest.raises(RewardDataError):
        accuracy_score("<answer>B</answer>", "<answer>Z</answer><glue>[]</glue>", "grounded_qa")


interval = st.tuples(st.floats(0, 100), st.floats(0, 100)).map(lambda p: (min(p), max(p)))


@SETTINGS
@given(st.lists(interval, max_size=5), st.lists(interval, max_size=5), st.randoms())
def test_glue_iou_is_symmetric_order_free_and_in_range(pred, gt, rng: random.Random):
    value = glue_iou(pred, gt)
    assert 0.0 <= value <= 1.0 and value == glue_iou(gt, pred)
    shuffled = list(pred)
    rng.shuffle(shuffled)
    assert glue_iou(shuffled, gt) == pytest.approx(value)
    if pred and gt and sum(e - s for s, e in pred + gt) > 0 and value > 0:
        assert value == pytest.approx(segments_iou(pred, gt))
    text = "[" + ", ".join(f"({s!r}, {e!r})" for s, e in pred) + "]"
    assert parse_glue(text) == pred
