"""The keep rule of stage=select (pure): a record is kept when its reward varies across the N sampled answers.

Temporal-R1 (../shared/docs/methods.md) runs the base model N times per record and keeps the records whose reward
varies; it releases neither N nor the thresholds. rova's rule, by the kind of reward the record's problem type has:
  - ACCURACY (right/wrong: multiple choice, numerical): kept iff min_mean < mean < max_mean (defaults 0 and 1:
    not always right, not always wrong); mean >= max_mean is "too easy", mean <= min_mean "too hard".
  - SPREAD (graded: the IoU of grounding and tracking, grounded_qa's evidence IoU, and regression, OCR,
    free-form and caption recall, whose scores are graded too, so their mean is rarely exactly 0 or 1): kept iff
    std > min_std (default 0.1); otherwise "no variance".
The statistics are over the N samples: mean, the population variance (divided by N, not N - 1) and its square
root. N samples that are all equal have variance exactly 0 (not a rounding residue).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rova.rewards.accuracy import canonical_problem_type
from rova.rewards.registry import GROUNDED_QA, IOU_TYPES

ACCURACY = "accuracy"
SPREAD = "spread"
KEPT, TOO_EASY, TOO_HARD, NO_VARIANCE = "kept", "too_easy", "too_hard", "no_variance"
DROPPED = (TOO_EASY, TOO_HARD, NO_VARIANCE)
# Problem types whose selection reward is an IoU (the reward registry's `iou` component), not the accuracy:
# temporal grounding and tracking (their accuracy IS an IoU) and grounded QA (its evidence intervals' glue IoU).
IOU_SELECTED_TYPES = (*IOU_TYPES, GROUNDED_QA)
# Problem types whose accuracy is a graded score in [0, 1], not right/wrong (caption: the share of events covered).
GRADED_TYPES = ("regression", "OCR", "free-form", "caption")


def selects_by_iou(problem_type: str) -> bool:
    """Whether a record's selection reward is its IoU (IOU_SELECTED_TYPES) rather than its accuracy."""
    return canonical_problem_type(problem_type) in IOU_SELECTED_TYPES


def rule_for(problem_type: str) -> str:
    """ACCURACY or SPREAD: which test the records of this problem type pass (module docstring)."""
    kind = canonical_problem_type(problem_type)
    return SPREAD if kind in IOU_SELECTED_TYPES or kind in GRADED_TYPES else ACCURACY


@dataclass(frozen=True)
class RewardStats:
    mean: float
    variance: float
    std: float


def reward_stats(rewards: Sequence[float]) -> RewardStats:
    """Mean, population variance and std of a non-empty list of finite rewards."""
    values = [float(r) for r in rewards]
    if not values:
        raise ValueError("reward_stats needs at least one reward")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"rewards must be finite, got {values}")
    low, high = min(values), max(values)
    if low == high:
        return RewardStats(low, 0.0, 0.0)
    # fsum: exact sums, so N right answers average to exactly 1.0; clamped as a mean lies within the values.
    mean = min(high, max(low, math.fsum(values) / len(values)))
    variance = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return RewardStats(mean, variance, math.sqrt(variance))


def keep_status(rewards: Sequence[float], rule: str, *, min_mean: float, max_mean: float, min_std: float) -> str:
    """KEPT, TOO_EASY, TOO_HARD or NO_VARIANCE for one record's N rewards under `rule` (ACCURACY or SPREAD)."""
    stats = reward_stats(rewards)
    if rule == ACCURACY:
        if stats.mean >= max_mean:
            return TOO_EASY
        if stats.mean <= min_mean:
            return TOO_HARD
        return KEPT
    if rule == SPREAD:
        return KEPT if stats.std > min_std else NO_VARIANCE
    raise ValueError(f"rule must be {ACCURACY!r} or {SPREAD!r}, got {rule!r}")
