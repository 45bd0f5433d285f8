"""TW-GRPO's soft multi-choice score for records whose answer holds several letters: |S| / |GT| if S is a non-empty
subset of GT, else 0 (reward.multi_answer=soft); exact (the default) needs every letter and no other."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.rewards import accuracy_score
from rova.rewards.accuracy import RewardDataError
from rova.rewards.choices import is_multi_answer, multi_answer_score

GT = "<answer>A, C, D</answer>"


@pytest.mark.parametrize("pred,soft,exact", [
    ("A,C,D", 1.0, 1.0), ("D, A ,C", 1.0, 1.0), ("a,c,d", 1.0, 1.0),   # order, spaces and case do not matter
    ("A", 1 / 3, 0.0), ("A,C", 2 / 3, 0.0), ("C,C", 1 / 3, 0.0),       # a subset: partial credit when soft
    ("A,B", 0.0, 0.0), ("B", 0.0, 0.0), ("A,C,D,E", 0.0, 0.0),         # any letter outside GT: 0
    ("", 0.0, 0.0), ("A,,C", 0.0, 0.0), ("A and C", 0.0, 0.0), ("A.", 0.0, 0.0),  # empty or unparsable: 0
])
def test_soft_and_exact_by_hand(pred, soft, exact):
    completion = f"<think>x</think><answer>{pred}</answer>"
    assert accuracy_score(completion, GT, "multiple choice", multi_answer="soft") == pytest.approx(soft)
    assert accuracy_score(completion, GT, "multiple choice", multi_answer="exact") == exact
    assert accuracy_score(completion, GT, "multiple choice") == exact


def test_single_letter_records_are_unchanged_and_bad_modes_refused():
    assert accuracy_score("<answer>A,C</answer>", "<answer>A</answer>", "multiple choice", multi_answer="soft") == 0.0
    assert accuracy_score("<answer>(A)</answer>", "<answer>A</answer>", "multiple choice", multi_answer="soft") == 1.0
    assert accuracy_score("no tags", GT, "multiple choice", multi_answer="soft") == 0.0
    with pytest.raises(ValueError, match="multi_answer"):
        accuracy_score("<answer>A</answer>", GT, "multiple choice", multi_answer="partial")
    with pytest.raises(RewardDataError):
        accuracy_score("<answer>A</answer>", "<answer>A,,C</answer>", "multiple choice")
    assert is_multi_answer("A,C") and is_multi_answer(" b , d ") and not is_multi_answer("A")
    assert not is_multi_answer("A, the dog")


letters = st.sets(st.sampled_from("ABCDEFG"), min_size=2, max_size=7)


@settings(max_examples=80, deadline=None)
@given(letters, st.sets(st.sampled_from("ABCDEFGH"), max_size=8))
def test_soft_score_is_the_covered_fraction_of_a_subset(truth, chosen):
    gt, pred = ",".join(sorted(truth)), ", ".join(sorted(chosen))
    soft, exact = multi_answer_score(pred, gt, "soft"), multi_answer_score(pred, gt, "exact")
    expected = len(chosen) / len(truth) if chosen and chosen <= truth else 0.0
    assert soft == pytest.approx(expected) and 0.0 <= exact <= soft <= 1.0
    assert exact == (1.0 if chosen == truth else 0.0)
