"""Rollout phases that are pure numpy: plan the generation rows, score them, and compute advantages.

Groups are the completions of one prompt on one branch (clean: G, shuffled: G_s, corrupted: G_c). Every
group-level rule (length control, temporal bonus, advantages) is applied per group, never over the
whole batch. Nothing here touches a model or a process group: the trainer hands in what needs one (the
KL values, the gathered batch std) so each phase is testable on hand-made arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rova.config.branches import BRANCHES, CLEAN, SHUFFLED, TRAINED_BRANCHES
from rova.rewards.correctness import score_correctness
from rova.rewards.registry import BranchInputs, score_components, total_reward


@dataclass
class GenerationPlan:
    """Which (branch, group) each generated row belongs to: clean rows first, then shuffled, then corrupted.

    `groups[branch]` lists the prompt groups that have that branch (an image prompt has no shuffled view).
    """

    rows: list[tuple[str, int]]
    sizes: dict[str, int]
    groups: dict[str, list[int]]

    def indices(self, branch: str) -> list[int]:
        return [i for i, (b, _) in enumerate(self.rows) if b == branch]


def plan_generation(num_groups: int, sizes: dict[str, int], available: dict[str, list[bool]]) -> GenerationPlan:
    """Rows to generate: `sizes[branch]` completions for every group whose view of that branch exists."""
    rows: list[tuple[str, int]] = []
    groups: dict[str, list[int]] = {}
    for branch in BRANCHES:
        size = sizes.get(branch, 0)
        have = available.get(branch, [False] * num_groups)
        groups[branch] = [g for g in range(num_groups) if size > 0 and have[g]]
        rows += [(branch, g) for g in groups[branch] for _ in range(size)]
    return GenerationPlan(rows, dict(sizes), groups)


@dataclass
class BranchScores:
    """Scores of one branch, each array [len(groups), size]."""

    branch: str
    groups: list[int]              # prompt group of each row of the arrays
    correctness: np.ndarray
    lengths: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    total: np.ndarray | None = None
    judge_fallbacks: np.ndarray | None = None  # reward.caption_scorer=judge: rova.rewards.correctness.Correctness

    def group_accuracy(self) -> dict[int, float]:
        """Mean correctness of each prompt group's completions on this branch."""
        return {g: float(np.mean(row)) for g, row in zip(self.groups, self.correctness)}


def score_rollout(
    plan: GenerationPlan,
    texts: list[str],
    lengths: list[int],
    rows: list[dict],
    cfg,
    kl: np.ndarray | None = None,
) -> dict[str, BranchScores]:
    """Correctness of every row, then the registry's components and the total of every trained branch.

    `rows` are the dataset rows of the prompt groups (one per group): their `prompt`, `solution` and
    `problem_type` reach every reward component as its inputs (rova.rewards.registry); `cfg` is reward.*;
    `kl` is per clean row (None = not measured).
    """
    num_groups = len(rows)
    solutions = [row["solution"] for row in rows]
    problem_types = [row["problem_type"] for row in rows]
    scores: dict[str, BranchScores] = {}
    for branch in BRANCHES:
        idx, groups, size = plan.indices(branch), plan.groups[branch], plan.sizes.get(branch, 0)
        if not groups:
            continue
        shape = (len(groups), size)
        row_group = [plan.rows[i][1] for i in idx]
        scored = score_correctness([texts[i] for i in idx], [solutions[g] for g in row_group],
                                   [problem_types[g] for g in row_group], cfg)
        scores[branch] = BranchScores(branch, groups, scored.scores.reshape(shape),
                                      np.asarray([lengths[i] for i in idx]).reshape(shape),
                                      judge_fallbacks=None if scored.judge_fallbacks is None
                                      else scored.judge_fallbacks.reshape(shape))

    shuffled_by_group = np.full((num_groups, max(plan.sizes.get(SHUFFLED, 0), 1)), np.nan)
    if SHUFFLED in scores:
        shuffled_by_group[scores[SHUFFLED].groups] = scores[SHUFFLED].correctness
    for branch in TRAINED_BRANCHES:
        if branch not in scores:
            continue
        s = scores[branch]
        row_group = [plan.rows[i][1] for i in plan.indices(branch)]
        inputs = BranchInputs(
            branch=branch,
            prompts=[rows[g]["prompt"] for g in row_group],
            completions=[texts[i] for i in plan.indices(branch)],
            solution=[solutions[g] for g in row_group],
            problem_type=[problem_types[g] for g in row_group],
            lengths=s.lengths,
            correctness=s.correctness,
            shuffled_correctness=shuffled_by_group[s.groups] if SHUFFLED in scores else None,
            kl=np.asarray(kl).reshape(s.correctness.shape) if (kl is not None and branch == CLEAN) else None,
        )
        s.components = score_components(inputs, cfg)
        s.total = total_reward(branch, s.components, cfg)
    return scores


def shuffle_rewards(scores: dict[str, BranchScores], seed: int) -> None:
    """reward.shuffle (a control): permute each trained branch's total rewards across all its completions, in
    place, so a reward no longer belongs to the completion it scored; components (the logged rewards) stay."""
    rng = np.random.default_rng(seed)
    for branch in TRAINED_BRANCHES:
        s = scores.get(branch)
        if s is None or s.total is None:
            continue
        flat = np.asarray(s.total, dtype=np.float64).ravel()
        s.total = flat[rng.permutation(flat.size)].reshape(np.shape(s.total))


def group_advantages(rewards: np.ndarray, scale: str, batch_std: float | None = None, eps: float = 1e-4) -> np.ndarray:
    """GRPO advantages, centred on each group's mean (TRL 1.16's formulas).

    scale="group": divide by the group's std (ddof=1); "batch": by `batch_std`, the std of every reward of
    the generation batch over ALL processes (the caller gathers it; a per-process std differs); "none":
    centred only.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if scale == "group":
        if rewards.shape[1] < 2:
            return centred
        return centred / (rewards.std(axis=1, ddof=1, keepdims=True) + eps)
    if scale == "batch":
        if batch_std is None:
            raise ValueError("scale_rewards='batch' needs the std over all processes (batch_std)")
        return centred / (batch_std + eps)
    if scale == "none":
        return centred
    raise ValueError(f"scale_rewards must be group, batch or none, got {scale!r}")


def zero_std_groups(rewards: np.ndarray) -> np.ndarray:
    """bool per group: every completion got the same reward (no learning signal)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return np.isclose(rewards.std(axis=1), 0.0) if rewards.size else np.zeros(rewards.shape[0], dtype=bool)


@dataclass
class LossRows:
    """The trained rows of a rollout: generation-row indices, their advantages, and rows kept in the loss."""

    indices: list[int]
    advantages: np.ndarray
    keep: np.ndarray               # False = masked out of the loss (variance filter)
    num_clean: int                 # the first num_clean rows are clean completions


def loss_rows(
    plan: GenerationPlan, scores: dict[str, BranchScores], scale: str, batch_std: dict[str, float] | None = None,
    variance_filter: bool = False,
) -> LossRows:
    """Clean rows, then corrupted rows, each branch normalised on its own groups."""
    indices: list[int] = []
    advantages: list[np.ndarray] = []
    keep: list[np.ndarray] = []
    num_clean = 0
    for branch in TRAINED_BRANCHES:
        if branch not in scores:
            continue
        s = scores[branch]
        std = (batch_std or {}).get(branch)
        adv = group_advantages(s.total, scale, std)
        flat_zero = np.repeat(zero_std_groups(s.total), s.total.shape[1])
        if variance_filter:  # Temporal-R1 / DAPO: groups with one reward carry no signal
            adv = np.where(flat_zero.reshape(adv.shape), 0.0, adv)
        indices += plan.indices(branch)
        advantages.append(adv.reshape(-1))
        keep.append(~flat_zero if variance_filter else np.ones(flat_zero.shape, dtype=bool))
        if branch == CLEAN:
            num_clean = len(plan.indices(branch))
    return LossRows(indices, np.concatenate(advantages), np.concatenate(keep), num_clean)


__all__ = [
    "BranchScores", "GenerationPlan", "LossRows", "group_advantages",
    "loss_rows", "plan_generation", "score_rollout", "zero_std_groups",
]
