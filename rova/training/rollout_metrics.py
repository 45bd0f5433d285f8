"""What a rollout logs, per branch and as trained (pure: the trainer reduces the arrays over processes).

The key set depends only on the configured branch sizes, never on the data a process happens to hold
(an image prompt has no shuffled view), so every process makes the same collective calls in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rova.config.branches import BRANCHES, CLEAN, CORRUPTED, SHUFFLED, TRAINED_BRANCHES
from rova.rewards.registry import components_for
from rova.training.scoring import BranchScores, GenerationPlan, LossRows, zero_std_groups

MEAN, MEAN_STD, SUM = "mean", "mean_std", "sum"


@dataclass
class MetricValues:
    """Local values per metric and how to reduce them: MEAN -> name, MEAN_STD -> name/mean + name/std, SUM -> name."""

    values: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)

    def add(self, name: str, values, kind: str = MEAN) -> None:
        self.values[name] = (np.asarray(values, dtype=np.float64).reshape(-1), kind)


def _branch_array(scores: dict[str, BranchScores], branch: str, attr: str) -> np.ndarray:
    s = scores.get(branch)
    return np.zeros(0) if s is None or getattr(s, attr) is None else getattr(s, attr)


def rollout_metrics(
    plan: GenerationPlan,
    scores: dict[str, BranchScores],
    loss: LossRows,
    completion_lengths: list[int],
    kl: np.ndarray | None,
    corrupted_families: list[str] | None,
    variance_filter: bool,
) -> MetricValues:
    m = MetricValues()
    trained = [b for b in TRAINED_BRANCHES if plan.sizes.get(b, 0) > 0]
    for branch in trained:
        s = scores.get(branch)
        for component in components_for(branch):
            values = s.components[component.name] if s is not None else np.zeros(0)
            m.add(f"rewards/{branch}/{component.name}", values, MEAN_STD)
        m.add(f"reward/{branch}", _branch_array(scores, branch, "total"), MEAN_STD)
        totals = _branch_array(scores, branch, "total")
        m.add(f"frac_reward_zero_std/{branch}", zero_std_groups(totals.reshape(-1, plan.sizes[branch])))
    # As trained: every row and group that enters the loss (clean + corrupted).
    trained_totals = [_branch_array(scores, b, "total").reshape(-1, plan.sizes[b]) for b in trained]
    m.add("reward", np.concatenate([t.reshape(-1) for t in trained_totals]), MEAN_STD)
    m.add("frac_reward_zero_std", np.concatenate([zero_std_groups(t) for t in trained_totals]))
    for branch in BRANCHES:
        if plan.sizes.get(branch, 0) > 0:
            m.add(f"accuracy/{branch}", _branch_array(scores, branch, "correctness"))
            m.add(f"branch/{branch}_completions", [len(plan.indices(branch))], SUM)
            m.add(f"completions/{branch}/mean_length", [completion_lengths[i] for i in plan.indices(branch)])
    m.add("completions/mean_length", [completion_lengths[i] for i in loss.indices])
    if plan.sizes.get(SHUFFLED, 0) > 0:
        clean = scores.get(CLEAN)
        shuffled = scores.get(SHUFFLED)
        with_shuffle = set(shuffled.groups) if shuffled is not None else set()
        p = [v for g, v in (clean.group_accuracy().items() if clean else []) if g in with_shuffle]
        m.add("temporal/p", p)
        m.add("temporal/p_shuffled", list(shuffled.group_accuracy().values()) if shuffled is not None else [])
    if kl is not None:
        m.add("kl_consistency/mean", kl)
    # reward.caption_scorer=judge sets judge_fallbacks on every branch it scores, the clean one included, which every
    # process scores: so these names exist on every process alike. Counts over all processes and branches.
    judged = [s.judge_fallbacks.reshape(-1) for s in scores.values() if s.judge_fallbacks is not None]
    if judged:
        flags = np.concatenate(judged)
        m.add("caption/judge_fallbacks", flags, SUM)                                  # scored by the rule instead
        m.add("caption/judged", np.where(np.isfinite(flags), 1.0, np.nan), SUM)       # captions sent to the judge
    if corrupted_families is not None:
        m.add("corruption/frac_corrupted", [family != "clean" for family in corrupted_families])
    if variance_filter:
        m.add("variance_filter/dropped_frac", ~loss.keep)
    return m


__all__ = ["CORRUPTED", "MEAN", "MEAN_STD", "MetricValues", "SUM", "rollout_metrics"]
