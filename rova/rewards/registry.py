"""The reward components (docs/rewards.md), as ONE registry that scoring, totals, metrics and the console read.

Each component is a pure function of a branch's `BranchInputs` (texts, answers, lengths, correctness and
the cross-branch signals) returning a [groups, group_size] array, NaN where it does not apply. The total
reward of a completion is sum_c weight_c * value_c over the components that apply to its branch, NaN
counting as 0. The weight of component c is `reward.<weight_key>` in config.

Adding a reward: write its function here (or in its own module), add one `RewardComponent` to
`REWARD_COMPONENTS`, and add its weight field to `RewardConfig` (rova/config/schema.py) and to the reward
presets that turn it on. Scoring, advantages, metrics, the console line and the registry tests follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from rova.config.branches import CLEAN, TRAINED_BRANCHES
from rova.rewards.format import format_score
from rova.rewards.length import length_bonus
from rova.rewards.temporal import temporal_bonus



@dataclass
class BranchInputs:
    """What the components of one branch are computed from; arrays are [groups, group_size]."""

    branch: str
    texts: list[str]
    lengths: np.ndarray            # completion tokens, EOS included
    correctness: np.ndarray        # accuracy_score of every completion (temporal IoU on grounding rows)
    grounding: np.ndarray          # bool: the row's correctness is a temporal IoU (weighted by w_iou)
    shuffled_correctness: np.ndarray | None = None  # [groups, Gs] from the shuffled branch, NaN rows = none
    kl: np.ndarray | None = None   # KL(P_clean || P_corr) of each completion, when measured

    @property
    def shape(self) -> tuple[int, int]:
        return self.correctness.shape  # type: ignore[return-value]


ComponentFn = Callable[[BranchInputs, Any], np.ndarray]


@dataclass(frozen=True)
class RewardComponent:
    name: str                      # metric name: rewards/<branch>/<name>/mean
    weight_key: str                # RewardConfig field holding its weight
    branches: tuple[str, ...]      # branches whose completions receive it
    compute: ComponentFn           # (inputs, reward config) -> [groups, group_size], NaN = not applicable

    def weight(self, cfg: Any) -> float:
        return float(getattr(cfg, self.weight_key))


def _nan(inputs: BranchInputs) -> np.ndarray:
    return np.full(inputs.shape, np.nan)


def accuracy(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    """Answer accuracy (docs/rewards.md "Accuracy reward"); grounding rows are scored by `iou` instead."""
    return np.where(inputs.grounding, np.nan, inputs.correctness)


def iou(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    """Temporal-grounding IoU of the predicted segments, weighted by w_iou."""
    return np.where(inputs.grounding, inputs.correctness, np.nan)


def format_(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    return np.array([format_score(t) for t in inputs.texts], dtype=np.float64).reshape(inputs.shape)


def length(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    """Length control, decided per prompt group."""
    if inputs.correctness.size == 0:
        return np.zeros(inputs.shape)
    return np.stack([
        length_bonus(acc, n, len_min=cfg.len_min, len_max=cfg.len_max, bonus=cfg.len_bonus,
                     acc_threshold=cfg.acc_threshold)
        for acc, n in zip(inputs.correctness, inputs.lengths)
    ])


def temporal(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    """Video-R1's temporal bonus from each group's own p (ordered) and p~ (shuffled); NaN without a shuffled group."""
    if inputs.shuffled_correctness is None:
        return _nan(inputs)
    bonus, _, p_shuffled = temporal_bonus(
        inputs.correctness, inputs.shuffled_correctness, alpha=cfg.temporal_alpha, mu=cfg.temporal_mu,
        acc_threshold=cfg.acc_threshold,
    )
    return np.where(np.isfinite(p_shuffled)[:, None], bonus, np.nan)


def kl_consistency(inputs: BranchInputs, cfg: Any) -> np.ndarray:
    """ROVA's exp(-kl_alpha * KL(P_clean || P_corr)) of each clean completion."""
    if inputs.kl is None:
        return _nan(inputs)
    import torch

    from rova.rewards.kl import kl_reward

    kl = torch.as_tensor(np.asarray(inputs.kl, dtype=np.float64).reshape(inputs.shape))
    return np.asarray(kl_reward(kl, cfg.kl_alpha), dtype=np.float64)


REWARD_COMPONENTS: tuple[RewardComponent, ...] = (
    RewardComponent("accuracy", "w_acc", TRAINED_BRANCHES, accuracy),
    RewardComponent("iou", "w_iou", TRAINED_BRANCHES, iou),
    RewardComponent("format", "w_fmt", TRAINED_BRANCHES, format_),
    RewardComponent("length", "w_len", TRAINED_BRANCHES, length),
    RewardComponent("temporal", "w_temp", (CLEAN,), temporal),
    RewardComponent("kl", "w_kl", (CLEAN,), kl_consistency),
)


def components_for(branch: str) -> tuple[RewardComponent, ...]:
    return tuple(c for c in REWARD_COMPONENTS if branch in c.branches)


def get_component(name: str) -> RewardComponent:
    for component in REWARD_COMPONENTS:
        if component.name == name:
            return component
    raise KeyError(f"no reward component {name!r}; known: {', '.join(c.name for c in REWARD_COMPONENTS)}")


def score_components(inputs: BranchInputs, cfg: Any) -> dict[str, np.ndarray]:
    """Every component that applies to the branch, in registry order."""
    return {c.name: np.asarray(c.compute(inputs, cfg), dtype=np.float64) for c in components_for(inputs.branch)}


def total_reward(branch: str, components: dict[str, np.ndarray], cfg: Any) -> np.ndarray:
    """sum_c weight_c * value_c over the branch's components; NaN (not applicable) counts as 0."""
    parts = [c.weight(cfg) * np.nan_to_num(components[c.name], nan=0.0) for c in components_for(branch)]
    return np.sum(parts, axis=0)
