"""T-GRPO temporal bonus, computed per prompt group."""

from __future__ import annotations

import numpy as np
import pytest

from rova.rewards import temporal_bonus

ALPHA, MU = 0.3, 0.8


def test_per_prompt_groups_differ_from_a_batch_mean():
    ordered = np.array(
        [
            [1.0, 1.0, 1.0, 1.0],  # p = 1.0,  p~ = 1.0 -> 1.0 >= 0.8: bonus to all correct
            [1.0, 1.0, 0.0, 0.0],  # p = 0.5,  p~ = 1.0 -> 0.5 <  0.8: no bonus
            [1.0, 0.0, 0.05, 0.0],  # p = 0.2625, p~ = 0 -> bonus, but only to acc > 0.1
        ]
    )
    shuffled = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    bonus, p, p_shuffled = temporal_bonus(ordered, shuffled, alpha=ALPHA, mu=MU)
    np.testing.assert_allclose(p, [1.0, 0.5, 0.2625])
    np.testing.assert_allclose(p_shuffled, [1.0, 1.0, 0.0])
    expected = np.array([[0.3, 0.3, 0.3, 0.3], [0, 0, 0, 0], [0.3, 0, 0, 0]])
    np.testing.assert_allclose(bonus, expected)

    # The public code's batch mean (p = 0.5875, p~ = 0.6667 -> 0.5875 >= 0.533) would give row 1 a bonus.
    batch_p, batch_ps = ordered.mean(), shuffled.mean()
    batch_bonus = np.where((batch_p >= MU * batch_ps) & (ordered > 0.1), ALPHA, 0.0)
    assert not np.allclose(batch_bonus, bonus)


def test_batch_mean_would_deny_a_deserving_prompt():
    ordered = np.array([[1.0, 1.0], [0.0, 0.0]])
    shuffled = np.array([[0.5, 0.5], [1.0, 1.0]])
    bonus, _, _ = temporal_bonus(ordered, shuffled, alpha=ALPHA, mu=MU)
    np.testing.assert_allclose(bonus, [[0.3, 0.3], [0.0, 0.0]])
    assert not (ordered.mean() >= MU * shuffled.mean())  # a batch mean gives nobody the bonus


def test_mu_boundary_is_inclusive_and_configurable():
    ordered = np.array([[0.8, 0.8]])
    shuffled = np.array([[1.0, 1.0]])
    assert temporal_bonus(ordered, shuffled, alpha=0.3, mu=0.8)[0].tolist() == [[0.3, 0.3]]
    assert temporal_bonus(ordered, shuffled, alpha=0.3, mu=1.0)[0].tolist() == [[0.0, 0.0]]


def test_image_prompts_get_no_bonus():
    ordered = np.array([[1.0, 1.0], [1.0, 1.0]])
    bonus, p, p_shuffled = temporal_bonus(ordered, np.zeros((2, 0)), alpha=ALPHA, mu=MU)
    np.testing.assert_array_equal(bonus, np.zeros((2, 2)))
    assert np.isnan(p_shuffled).all()
    np.testing.assert_allclose(p, [1.0, 1.0])

    # mixed batch: the image prompt's shuffled row is all NaN
    shuffled = np.array([[1.0, 0.0], [np.nan, np.nan]])
    bonus, _, p_shuffled = temporal_bonus(ordered, shuffled, alpha=ALPHA, mu=MU)
    np.testing.assert_allclose(bonus, [[0.3, 0.3], [0.0, 0.0]])
    assert p_shuffled[0] == 0.5 and np.isnan(p_shuffled[1])


def test_ragged_shuffled_groups_use_nan_padding():
    ordered = np.array([[1.0, 1.0]])
    shuffled = np.array([[1.0, np.nan, np.nan]])
    _, _, p_shuffled = temporal_bonus(ordered, shuffled, alpha=ALPHA, mu=MU)
    assert p_shuffled.tolist() == [1.0]


def test_shape_errors():
    with pytest.raises(ValueError, match="N = 2"):
        temporal_bonus(np.ones((2, 4)), np.ones((3, 2)), alpha=ALPHA, mu=MU)
    with pytest.raises(ValueError, match=r"\[N, G\]"):
        temporal_bonus(np.ones(4), np.ones((1, 2)), alpha=ALPHA, mu=MU)
