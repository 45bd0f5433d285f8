"""DAPO's soft overlong punishment (rova.rewards.overlong; docs/rewards.md "Soft overlong punishment")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.config.branches import CLEAN
from rova.config.compose import load, load_typed
from rova.config.reward import RewardConfig
from rova.errors import ConfigError
from rova.rewards.overlong import soft_overlong_punishment
from rova.rewards.registry import score_components, total_reward
from tests.rewards.test_registry import branch_inputs


def test_the_papers_setting_by_hand():
    """DAPO: L_max 20480 with a 4096-token buffer, so 16384 tokens go free and the penalty reaches -1 at 20480."""
    lengths = [1, 16384, 16385, 17408, 18432, 20480, 20481, 40000]
    got = soft_overlong_punishment(lengths, max_length=20480, buffer=4096)
    np.testing.assert_allclose(got, [0.0, 0.0, -1 / 4096, -0.25, -0.5, -1.0, -1.0, -1.0], rtol=0, atol=1e-15)


@given(max_length=st.integers(2, 50_000), data=st.data())
def test_zero_then_a_linear_ramp_to_minus_one(max_length, data):
    buffer = data.draw(st.integers(1, max_length - 1))
    lengths = np.array(data.draw(st.lists(st.integers(0, 2 * max_length), min_size=1, max_size=20)))
    got = soft_overlong_punishment(lengths, max_length=max_length, buffer=buffer)
    expected_length = max_length - buffer
    assert got.shape == lengths.shape
    assert np.all((got >= -1.0) & (got <= 0.0))
    assert np.all(got[lengths <= expected_length] == 0.0)
    assert np.all(got[lengths > max_length] == -1.0)
    # verl's recipe/dapo form on the lengths a rollout can produce: min(-(|y| - expected) / buffer, 0)
    inside = lengths <= max_length
    np.testing.assert_allclose(got[inside], np.minimum(-(lengths[inside] - expected_length) / buffer, 0.0), atol=1e-12)
    # one token longer never pays less, and the ramp meets both flat parts without a jump
    ordered = np.sort(lengths)
    assert np.all(np.diff(soft_overlong_punishment(ordered, max_length=max_length, buffer=buffer)) <= 0.0)
    ends = soft_overlong_punishment([expected_length, max_length], max_length=max_length, buffer=buffer)
    assert ends.tolist() == [0.0, -1.0]


@pytest.mark.parametrize("buffer,max_length", [(0, 10), (10, 10), (11, 10)])
def test_a_buffer_that_leaves_no_free_length_is_refused(buffer, max_length):
    with pytest.raises(ValueError, match="buffer"):
        soft_overlong_punishment([5], max_length=max_length, buffer=buffer)


def test_the_run_config_fills_the_length_from_the_rollout_and_the_buffer_as_a_fifth():
    cfg = load_typed(["stage=grpo", "stage.max_completion_length=40", "reward.w_overlong=1"])
    assert (cfg.reward.overlong_max_length, cfg.reward.overlong_buffer) == (40, 8)
    cfg = load_typed(["stage=grpo", "reward.overlong_max_length=100", "reward.overlong_buffer=30"])
    assert (cfg.reward.overlong_max_length, cfg.reward.overlong_buffer) == (100, 30)


@pytest.mark.parametrize("overrides,key", [
    (["reward.overlong_buffer=40"], "reward.overlong_buffer"),       # = stage.max_completion_length (40)
    (["reward.overlong_buffer=0"], "reward.overlong_buffer"),
    (["reward.overlong_max_length=-3"], "reward.overlong_max_length"),
    (["reward.w_overlong=-1"], "reward.w_overlong"),
])
def test_bad_values_fail_at_compose_time_with_the_key_named(overrides, key):
    with pytest.raises(ConfigError) as err:
        load(["stage=grpo", "stage.max_completion_length=40", "reward.w_overlong=1", *overrides])
    assert err.value.key == key


def test_unweighted_it_never_blocks_a_run_with_a_tiny_completion_budget():
    cfg = load_typed(["stage=grpo", "stage.max_completion_length=1", "stage.num_generations=2",
                   "stage.per_device_train_batch_size=2"])
    assert cfg.reward.w_overlong == 0.0


def test_scored_per_completion_and_weighted_into_the_total():
    cfg = RewardConfig(w_acc=0.0, w_fmt=0.0, w_temp=0.0, w_iou=0.0, w_overlong=2.0)
    cfg.resolve_overlong(100)  # buffer 20: free up to 80 tokens
    inputs = branch_inputs(CLEAN, ["a", "b", "c", "d"], [10, 80, 90, 100], [1.0, 1.0, 0.0, 1.0])
    components = score_components(inputs, cfg)
    np.testing.assert_allclose(components["overlong"], [[0.0, 0.0, -0.5, -1.0]])
    np.testing.assert_allclose(total_reward(CLEAN, components, cfg), [[0.0, 0.0, -1.0, -2.0]])


def test_a_bare_reward_config_scores_it_as_not_applicable():
    inputs = branch_inputs(CLEAN, ["a", "b"], [10, 999], [1.0, 0.0])
    assert np.isnan(score_components(inputs, RewardConfig())["overlong"]).all()
