"""Format reward and the length-control bonus."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rova.rewards import FORMAT_PATTERN, format_reward, format_score, length_bonus


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>a</think><answer>B</answer>", 1.0),
        ("  \n<think>\nmulti\nline\n</think>\n\n<answer>\nB\n</answer>\n ", 1.0),
        ("<think></think><answer></answer>", 1.0),
        ("<think>a</think> <answer>B</answer> trailing", 0.0),
        ("prefix <think>a</think><answer>B</answer>", 0.0),
        ("<think>a</think> x <answer>B</answer>", 0.0),
        ("<answer>B</answer>", 0.0),
        ("<think>a</think>", 0.0),
        ("<think>a<answer>B</answer>", 0.0),
        # the lazy .*? parts can absorb tags: these match the spec's regex, so they score 1
        ("<think>a</think>x</think><answer>B</answer>", 1.0),
        ("<think>a</think><answer>B</answer><answer>C</answer>", 1.0),
        ("", 0.0),
    ],
)
def test_format_score(text, expected):
    assert format_score(text) == expected
    assert expected == (1.0 if re.match(FORMAT_PATTERN, text, re.DOTALL) else 0.0)


def test_format_reward_trl_signature():
    good = "<think>a</think><answer>B</answer>"
    completions = [good, [{"role": "assistant", "content": good}], [{"role": "assistant", "content": [{"type": "text", "text": good}]}], "bad"]
    assert format_reward(prompts=["p"] * 4, completions=completions, completion_ids=None) == [1.0, 1.0, 1.0, 0.0]
    assert format_reward.__name__ == "format_reward"


def test_length_bonus_in_range_when_more_than_one_correct():
    bonus = length_bonus([1.0, 1.0, 1.0, 0.0], [400, 100, 512, 400], len_min=320, len_max=512, bonus=0.2)
    np.testing.assert_array_equal(bonus, [0.2, 0.0, 0.2, 0.0])  # bounds inclusive; wrong answers get none


def test_length_bonus_needs_more_than_one_correct():
    bonus = length_bonus([1.0, 0.0, 0.05, 0.1], [400, 400, 400, 400], len_min=320, len_max=512, bonus=0.2)
    np.testing.assert_array_equal(bonus, [0.0, 0.0, 0.0, 0.0])  # only one accuracy > 0.1


def test_length_bonus_threshold_and_bounds():
    bonus = length_bonus([0.11, 0.5, 0.1, 1.0], [319, 320, 400, 513], len_min=320, len_max=512, bonus=0.3)
    np.testing.assert_array_equal(bonus, [0.0, 0.3, 0.0, 0.0])
    bonus = length_bonus([0.5, 0.5], [10, 10], len_min=0, len_max=20, bonus=1.0, acc_threshold=0.6)
    np.testing.assert_array_equal(bonus, [0.0, 0.0])


def test_length_bonus_nan_accuracy_is_not_correct():
    bonus = length_bonus([np.nan, 1.0, 1.0], [400, 400, 400], len_min=320, len_max=512, bonus=0.2)
    np.testing.assert_array_equal(bonus, [0.0, 0.2, 0.2])


def test_length_bonus_rejects_bad_arguments():
    with pytest.raises(ValueError, match="one entry per completion"):
        length_bonus([1.0, 1.0], [1], len_min=0, len_max=1, bonus=0.2)
    with pytest.raises(ValueError, match="len_min"):
        length_bonus([1.0], [1], len_min=5, len_max=1, bonus=0.2)
