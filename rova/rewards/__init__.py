"""Reward functions (docs/rewards.md): pure functions of strings and arrays.

The KL functions need torch; they are imported on first use so `import rova.rewards` stays light.
"""

from __future__ import annotations

from typing import Any

from rova.rewards.accuracy import (
    MRA_THRESHOLDS,
    PROBLEM_TYPES,
    RewardDataError,
    accuracy_reward,
    accuracy_score,
    canonical_problem_type,
    ground_truth,
    make_accuracy_reward,
    parse_choice,
    parse_number,
)
from rova.rewards.answers import completion_to_text, extract_answer
from rova.rewards.format import FORMAT_PATTERN, format_reward, format_score
from rova.rewards.iou import interval_iou, merge_segments, parse_segments, segments_iou
from rova.rewards.length import length_bonus
from rova.rewards.temporal import temporal_bonus

_KL_EXPORTS = ("ESTIMATORS", "kl_consistency_loss", "kl_reward", "sequence_kl")

__all__ = [
    "FORMAT_PATTERN",
    "MRA_THRESHOLDS",
    "PROBLEM_TYPES",
    "RewardDataError",
    "accuracy_reward",
    "accuracy_score",
    "canonical_problem_type",
    "completion_to_text",
    "extract_answer",
    "format_reward",
    "format_score",
    "ground_truth",
    "interval_iou",
    "length_bonus",
    "make_accuracy_reward",
    "merge_segments",
    "parse_choice",
    "parse_number",
    "parse_segments",
    "segments_iou",
    "temporal_bonus",
    *_KL_EXPORTS,
]


def __getattr__(name: str) -> Any:
    if name in _KL_EXPORTS:
        from rova.rewards import kl

        return getattr(kl, name)
    raise AttributeError(f"module 'rova.rewards' has no attribute {name!r}")
