"""stage=select's keep rule (rova.select.rule) as properties of the pure function, and its select.* config keys."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.select.rule import (ACCURACY, KEPT, NO_VARIANCE, SPREAD, TOO_EASY, TOO_HARD, keep_status, reward_stats,
                              rule_for, selects_by_iou)

unit = st.floats(0.0, 1.0, allow_nan=False)
rewards = st.lists(unit, min_size=1, max_size=16)
binary = st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=16)
DEFAULTS = {"min_mean": 0.0, "max_mean": 1.0, "min_std": 0.1}


@st.composite
def mean_bounds(draw):
    low, high = sorted(draw(st.lists(unit, min_size=2, max_size=2, unique=True)))
    return low, high


@given(binary)
def test_right_wrong_records_are_kept_iff_the_answers_disagree(values):
    """Temporal-R1 with rova's defaults: kept iff 0 < mean accuracy < 1, i.e. some right and some wrong."""
    status = keep_status(values, ACCURACY, **DEFAULTS)
    if 0.0 in values and 1.0 in values:
        assert status == KEPT
    else:
        assert status == (TOO_EASY if values[0] == 1.0 else TOO_HARD)


@given(rewards, mean_bounds())
def test_accuracy_rule_is_the_open_interval_of_the_mean(values, bounds):
    low, high = bounds
    mean = reward_stats(values).mean
    status = keep_status(values, ACCURACY, min_mean=low, max_mean=high, min_std=0.1)
    assert status == (TOO_EASY if mean >= high else TOO_HARD if mean <= low else KEPT)
    assert status != NO_VARIANCE


@given(rewards, st.floats(0.0, 0.49))
def test_spread_rule_keeps_iff_the_std_exceeds_the_threshold(values, threshold):
    stats = reward_stats(values)
    status = keep_status(values, SPREAD, min_mean=0.0, max_mean=1.0, min_std=threshold)
    assert status == (KEPT if stats.std > threshold else NO_VARIANCE)


@given(unit, st.integers(1, 16), st.floats(0.0, 0.49))
def test_equal_rewards_have_no_variance_and_are_never_kept(value, n, threshold):
    values = [value] * n
    stats = reward_stats(values)
    assert (stats.mean, stats.variance, stats.std) == (value, 0.0, 0.0)
    assert keep_status(values, SPREAD, min_mean=0.0, max_mean=1.0, min_std=threshold) == NO_VARIANCE
    assert keep_status(values, ACCURACY, **DEFAULTS) in ((TOO_EASY, TOO_HARD) if value in (0.0, 1.0) else (KEPT,))


@given(rewards, st.randoms(use_true_random=False))
def test_the_verdict_does_not_depend_on_the_order_of_the_samples(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    for rule in (ACCURACY, SPREAD):
        assert keep_status(values, rule, **DEFAULTS) == keep_status(shuffled, rule, **DEFAULTS)


@given(rewards)
def test_stats_are_the_population_mean_variance_and_std(values):
    stats = reward_stats(values)
    mean = sum(values) / len(values)
    assert min(values) <= stats.mean <= max(values)
    assert math.isclose(stats.mean, mean, abs_tol=1e-12)
    assert math.isclose(stats.variance, sum((v - mean) ** 2 for v in values) / len(values), abs_tol=1e-12)
    assert stats.std == math.sqrt(stats.variance) and 0.0 <= stats.std <= 0.5 + 1e-12


def test_hand_computed_examples():
    # 8 samples, 3 right: mean 3/8, variance 3/8 * 5/8.
    stats = reward_stats([1, 1, 1, 0, 0, 0, 0, 0])
    assert (stats.mean, stats.variance) == (0.375, 0.234375)
    assert keep_status([0.9, 0.1], SPREAD, **DEFAULTS) == KEPT            # std 0.4
    assert keep_status([0.5, 0.6, 0.55], SPREAD, **DEFAULTS) == NO_VARIANCE  # std 0.041
    assert keep_status([0.3, 0.1], SPREAD, **DEFAULTS) == NO_VARIANCE     # std exactly 0.1: not > 0.1
    with pytest.raises(ValueError):
        reward_stats([])
    with pytest.raises(ValueError):
        keep_status([1.0], "median", **DEFAULTS)


def test_which_rule_and_which_reward_each_problem_type_gets():
    assert [rule_for(t) for t in ("multiple choice", "numerical")] == [ACCURACY, ACCURACY]
    assert {rule_for(t) for t in ("grounding", "tracking", "grounded_qa", "regression", "OCR", "free-form",
                                  "caption")} == {SPREAD}
    assert [selects_by_iou(t) for t in ("grounding", "tracking", "grounded_qa", "multiple choice", "regression")] == [
        True, True, True, False, False]
    assert rule_for("Multiple Choice") == ACCURACY  # canonical spelling, case-insensitive as the rewards read it


@pytest.mark.parametrize("override, key", [
    ("select.num_samples=1", "select.num_samples"),
    ("select.min_mean=0.6", "select.min_mean"),   # with max_mean 0.5 below
    ("select.max_mean=1.5", "select.max_mean"),
    ("select.min_std=0.5", "select.min_std"),
    ("select.min_std=-0.1", "select.min_std"),
    ("select.temperature=0", "select.temperature"),
    ("select.top_p=0", "select.top_p"),
    ("select.batch_size=0", "select.batch_size"),
    ("select.shards=2", "select.shards"),          # SLURM array tasks: needs cluster=slurm
    ("select.num_sample=4", "select.num_sample"),  # a typo
])
def test_bad_select_values_fail_at_compose_time_naming_the_key(override, key):
    from rova.config.compose import load
    from rova.errors import ConfigError

    extra = ["select.max_mean=0.5"] if override.startswith("select.min_mean") else []
    with pytest.raises(ConfigError) as err:
        load(["stage=select", override, *extra])
    assert err.value.key == key, str(err.value)


def test_select_defaults_are_methods_md():
    from rova.config.compose import load_typed

    cfg = load_typed(["stage=select"])
    assert cfg.stage.name == "select" and cfg.logger.name == "none"
    s = cfg.select
    assert (s.num_samples, s.min_mean, s.max_mean, s.min_std, s.temperature) == (8, 0.0, 1.0, 0.1, 1.0)
    assert load_typed(["stage=select", "cluster=slurm", "select.shards=3"]).select.shards == 3
