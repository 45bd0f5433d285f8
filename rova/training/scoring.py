"""Assemble the reward components of one generation batch, group by group (shared/docs/rewards.md).

Pure numpy over per-completion accuracies/lengths: no model, no distributed calls. Groups are the G
completions of one prompt on one branch; group-level rules (length control, temporal bonus) and
advantages are computed per group, never over the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rova.config.schema import RewardConfig
from rova.rewards import accuracy_score, canonical_problem_type, format_score, length_bonus, temporal_bonus

COMPONENTS = ("accuracy", "format", "length", "temporal", "kl", "iou")
GROUNDING = "grounding"


@dataclass
class BranchScores:
    """Per-completion components of one branch, shaped [num_groups, group_size] (NaN = not applicable)."""

    accuracy: np.ndarray
    format: np.ndarray
    lengths: np.ndarray
    grounding: np.ndarray  # bool: the accuracy term of this row is a temporal IoU (weighted by w_iou)
    length: np.ndarray = field(default=None)  # type: ignore[assignment]
    temporal: np.ndarray = field(default=None)  # type: ignore[assignment]
    kl: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for name in ("length", "temporal", "kl"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(self.accuracy.shape, np.nan))

    @property
    def iou(self) -> np.ndarray:
        return np.where(self.grounding, self.accuracy, np.nan)


def score_texts(
    texts: list[str], solutions: list[str], problem_types: list[str], lengths: list[int], group_size: int,
    cfg: RewardConfig,
) -> BranchScores:
    acc = np.array(
        [accuracy_score(t, s, p, fallback_whole_output=False) for t, s, p in zip(texts, solutions, problem_types)],
        dtype=np.float64,
    )
    fmt = np.array([format_score(t) for t in texts], dtype=np.float64)
    shape = (-1, group_size)
    grounding = np.array([canonical_problem_type(p) == GROUNDING for p in problem_types]).reshape(shape)
    scores = BranchScores(acc.reshape(shape), fmt.reshape(shape), np.asarray(lengths).reshape(shape), grounding)
    scores.length = np.stack([
        length_bonus(a, n, len_min=cfg.len_min, len_max=cfg.len_max, bonus=cfg.len_bonus, acc_threshold=cfg.acc_threshold)
        for a, n in zip(scores.accuracy, scores.lengths)
    ]) if scores.accuracy.size else np.zeros(scores.accuracy.shape)
    return scores


def apply_temporal(clean: BranchScores, shuffled_acc: np.ndarray, cfg: RewardConfig) -> tuple[np.ndarray, np.ndarray]:
    """Temporal bonus of each clean completion from ITS group's p and p~ (rows of NaN = no shuffled branch)."""
    bonus, p, p_shuffled = temporal_bonus(
        clean.accuracy, shuffled_acc, alpha=cfg.temporal_alpha, mu=cfg.temporal_mu, acc_threshold=cfg.acc_threshold
    )
    has_branch = np.isfinite(shuffled_acc).any(axis=1) if shuffled_acc.size else np.zeros(len(bonus), bool)
    clean.temporal = np.where(has_branch[:, None], bonus, np.nan)
    return p, p_shuffled


def total_reward(s: BranchScores, cfg: RewardConfig) -> np.ndarray:
    """R = w_acc*acc (w_iou for grounding rows) + w_fmt*format + w_len*length + w_temp*temporal + w_kl*r_kl."""
    acc_weight = np.where(s.grounding, cfg.w_iou, cfg.w_acc)
    total = acc_weight * s.accuracy + cfg.w_fmt * s.format + cfg.w_len * s.length
    total = total + cfg.w_temp * np.nan_to_num(s.temporal, nan=0.0) + cfg.w_kl * np.nan_to_num(s.kl, nan=0.0)
    return total


def group_advantages(rewards: np.ndarray, scale: str, eps: float = 1e-4) -> np.ndarray:
    """GRPO advantages per group: (R - mean_g) / (std_g + eps) ('group'), global std ('batch'), or unscaled."""
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if scale == "group":
        return centred / (rewards.std(axis=1, ddof=1, keepdims=True) + eps) if rewards.shape[1] > 1 else centred
    if scale == "batch":
        return centred / (rewards.std(ddof=1) + eps) if rewards.size > 1 else centred
    return centred
