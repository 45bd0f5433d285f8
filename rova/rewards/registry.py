"""The reward components (docs/rewards.md), as ONE registry that scoring, totals, metrics and the console read.

Every component is a reward function with TRL's signature (TRL's `reward_funcs`):

    component(prompts, completions, **kwargs) -> one value per completion, NaN (or None) = not applicable

`completions[i]` is the decoded text of completion i and `prompts[i]` its prompt (the chat messages);
the dataset columns come per completion as keyword arguments, as TRL passes them: the ground truth
`solution` and `problem_type` (every component receives them; none looks them up elsewhere). The rova
scorer (rova.training.scoring.score_rollout, via `score_components`) adds the keyword arguments of a branch:

    reward_config          the reward.* config: weights and constants (len_min, temporal_alpha, kl_alpha, ...)
    branch                 "clean" or "corrupted" (rova.config.branches)
    lengths                [groups, group_size] completion tokens, EOS included
    correctness            [groups, group_size] accuracy_score(completion, solution, problem_type) of every
                           completion (a temporal IoU on grounding rows, the caption recall of the configured
                           reward.caption_scorer on caption rows: rova.rewards.correctness), computed once by the scorer
    shuffled_correctness   [groups, Gs] the same on the shuffled branch (NaN rows = no shuffled view), or None
    kl                     [groups, group_size] KL(P_clean || P_corr) of each completion, or None (not measured)

The completions of a prompt group are consecutive; the group-level components (length, temporal) read the
group structure from these arrays. A component returns a flat list in completion order or a
[groups, group_size] array. The total reward of a completion is sum_c weight_c * value_c over the components
that apply to its branch, NaN counting as 0. The weight of component c is `reward.<weight_key>` in config.
The per-completion components (accuracy, iou, format) need only TRL's inputs, so each works as a TRL
reward function as it is.

Adding a reward: write its function here (or in its own module), add one `RewardComponent` to
`REWARD_COMPONENTS`, and add its weight field to `RewardConfig` (rova/config/reward.py) and to the reward
presets that turn it on. Scoring, advantages, metrics, the console line and the registry tests follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rova.config.branches import CLEAN, TRAINED_BRANCHES
from rova.rewards.accuracy import canonical_problem_type
from rova.rewards.answers import completion_to_text
from rova.rewards.correctness import score_correctness
from rova.rewards.format import format_score
from rova.rewards.format_rules import strict_format_score
from rova.rewards.glue import glue_score
from rova.rewards.length import length_bonus
from rova.rewards.overlong import soft_overlong_punishment
from rova.rewards.temporal import temporal_bonus

GROUNDING = "grounding"
# The problem types whose correctness IS an IoU (temporal segments, per-frame boxes): scored by `iou`, not `accuracy`.
IOU_TYPES = (GROUNDING, "tracking")
GROUNDED_QA = "grounded_qa"  # correctness is its multiple-choice accuracy (`accuracy`); its glue IoU is `iou`


@dataclass
class BranchInputs:
    """One branch's completions with their prompts, ground truth and signals: the inputs of its components.

    Lists have one entry per completion (group after group); arrays are [groups, group_size].
    """

    branch: str
    prompts: list[Any]             # the prompt (chat messages) of each completion
    completions: list[str]
    solution: list[str]            # ground truth of each completion's prompt ("<answer>X</answer>")
    problem_type: list[str]
    lengths: np.ndarray            # completion tokens, EOS included
    correctness: np.ndarray        # accuracy_score of every completion (temporal IoU on grounding rows)
    shuffled_correctness: np.ndarray | None = None  # [groups, Gs] from the shuffled branch, NaN rows = none
    kl: np.ndarray | None = None   # KL(P_clean || P_corr) of each completion, when measured

    @property
    def shape(self) -> tuple[int, int]:
        return self.correctness.shape  # type: ignore[return-value]

    def reward_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every component receives besides prompts and completions."""
        return {
            "solution": self.solution, "problem_type": self.problem_type, "branch": self.branch,
            "lengths": self.lengths, "correctness": self.correctness,
            "shuffled_correctness": self.shuffled_correctness, "kl": self.kl,
        }


# component(prompts, completions, **kwargs) -> values per completion (module docstring)
ComponentFn = Callable[..., "Sequence[float | None] | np.ndarray"]


@dataclass(frozen=True)
class RewardComponent:
    name: str                      # metric name: rewards/<branch>/<name>/mean
    weight_key: str                # RewardConfig field holding its weight
    branches: tuple[str, ...]      # branches whose completions receive it
    compute: ComponentFn           # TRL's reward-function signature (module docstring); NaN = not applicable

    def weight(self, cfg: Any) -> float:
        return float(getattr(cfg, self.weight_key))


def is_iou_type(problem_type: Sequence[str]) -> np.ndarray:
    """bool per completion: its correctness is an IoU (temporal grounding, tracking), not an accuracy."""
    return np.array([canonical_problem_type(p) in IOU_TYPES for p in problem_type], dtype=bool)


def _correctness(prompts, completions, solution, problem_type, correctness=None, reward_config=None) -> np.ndarray:
    """Flat accuracy of every completion: the scorer's `correctness`, or scored here from the ground truth as the
    scorer does (rova.rewards.correctness: reward.multi_answer, the caption scorer)."""
    if correctness is not None:
        return np.asarray(correctness, dtype=np.float64).reshape(-1)
    return score_correctness(completions, solution, problem_type, reward_config).scores


def accuracy(prompts, completions, *, solution, problem_type, correctness=None, reward_config=None,
             **kwargs) -> np.ndarray:
    """Answer accuracy (docs/rewards.md "Accuracy reward"), caption recall on caption rows; grounding and tracking
    rows are scored by `iou`."""
    score = _correctness(prompts, completions, solution, problem_type, correctness, reward_config)
    return np.where(is_iou_type(problem_type), np.nan, score)


def iou(prompts, completions, *, solution, problem_type, correctness=None, reward_config=None,
        **kwargs) -> np.ndarray:
    """The IoU of the row's kind, weighted by w_iou: temporal segments (grounding), mean box IoU (tracking), glue
    intervals (grounded QA, rova.rewards.glue); NaN for the other problem types."""
    kinds = [canonical_problem_type(p) for p in problem_type]
    score = np.full(len(kinds), np.nan)
    rows = [i for i, kind in enumerate(kinds) if kind in IOU_TYPES]
    if correctness is not None:
        score = np.asarray(correctness, dtype=np.float64).reshape(-1)
    elif rows:  # only the IoU rows: a caption row's judge is asked once, by `accuracy`
        score[rows] = _correctness(None, [completions[i] for i in rows], [solution[i] for i in rows],
                                   [problem_type[i] for i in rows], None, reward_config)
    return np.array([
        score[i] if kind in IOU_TYPES
        else glue_score(completion_to_text(completions[i]), solution[i]) if kind == GROUNDED_QA
        else np.nan
        for i, kind in enumerate(kinds)
    ], dtype=np.float64)


def format_(prompts, completions, *, solution=None, problem_type=None, reward_config=None, **kwargs) -> list[float]:
    """reward.format_rule: video_r1 (rova.rewards.format, every task) or per_task (VideoChat-R1's strict rules)."""
    if getattr(reward_config, "format_rule", "video_r1") == "per_task":
        return [strict_format_score(completion_to_text(c), canonical_problem_type(t), s)
                for c, s, t in zip(completions, solution, problem_type)]
    return [format_score(completion_to_text(c)) for c in completions]


def length(prompts, completions, *, lengths, correctness, reward_config, **kwargs) -> np.ndarray:
    """Length control, decided per prompt group (rows of `correctness` / `lengths`)."""
    cfg = reward_config
    if np.size(correctness) == 0:
        return np.zeros(np.shape(correctness))
    return np.stack([
        length_bonus(acc, n, len_min=cfg.len_min, len_max=cfg.len_max, bonus=cfg.len_bonus,
                     acc_threshold=cfg.acc_threshold)
        for acc, n in zip(correctness, lengths)
    ])


def overlong(prompts, completions, *, lengths, reward_config, **kwargs) -> np.ndarray:
    """DAPO's soft overlong punishment of each completion's length: 0 up to L_max - L_cache, then down to -1 at L_max
    (L_max = reward.overlong_max_length, L_cache = reward.overlong_buffer); NaN while they are unresolved (a bare
    RewardConfig: the run config fills them from stage.max_completion_length) or unusable (L_cache >= L_max, refused
    at compose time when w_overlong > 0)."""
    cfg = reward_config
    max_length, buffer = cfg.overlong_max_length, cfg.overlong_buffer
    if max_length is None or buffer is None or buffer >= max_length:
        return np.full(np.shape(lengths), np.nan)
    return soft_overlong_punishment(lengths, max_length=max_length, buffer=buffer)


def temporal(prompts, completions, *, correctness, reward_config, shuffled_correctness=None, **kwargs) -> np.ndarray:
    """Video-R1's temporal bonus from each group's own p (ordered) and p~ (shuffled); NaN without a shuffled group."""
    if shuffled_correctness is None:
        return np.full(np.shape(correctness), np.nan)
    cfg = reward_config
    bonus, _, p_shuffled = temporal_bonus(
        correctness, shuffled_correctness, alpha=cfg.temporal_alpha, mu=cfg.temporal_mu,
        acc_threshold=cfg.acc_threshold,
    )
    return np.where(np.isfinite(p_shuffled)[:, None], bonus, np.nan)


def kl_consistency(prompts, completions, *, reward_config, kl=None, **kwargs) -> np.ndarray:
    """ROVA's exp(-kl_alpha * KL(P_clean || P_corr)) of each clean completion."""
    if kl is None:
        return np.full(len(completions), np.nan)
    import torch

    from rova.rewards.kl import kl_reward

    kl = torch.as_tensor(np.asarray(kl, dtype=np.float64))
    return np.asarray(kl_reward(kl, reward_config.kl_alpha), dtype=np.float64)


REWARD_COMPONENTS: tuple[RewardComponent, ...] = (
    RewardComponent("accuracy", "w_acc", TRAINED_BRANCHES, accuracy),
    RewardComponent("iou", "w_iou", TRAINED_BRANCHES, iou),
    RewardComponent("format", "w_fmt", TRAINED_BRANCHES, format_),
    RewardComponent("length", "w_len", TRAINED_BRANCHES, length),
    RewardComponent("overlong", "w_overlong", TRAINED_BRANCHES, overlong),
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
    """Every component that applies to the branch, in registry order, each [groups, group_size].

    Each is called as TRL calls a reward function, `compute(prompts, completions, **kwargs)`, with the
    ground truth and the branch's signals as keyword arguments and `cfg` (reward.*) as `reward_config`.
    """
    kwargs = {**inputs.reward_kwargs(), "reward_config": cfg}
    return {
        c.name: np.asarray(c.compute(inputs.prompts, inputs.completions, **kwargs), dtype=np.float64).reshape(inputs.shape)
        for c in components_for(inputs.branch)
    }


def total_reward(branch: str, components: dict[str, np.ndarray], cfg: Any) -> np.ndarray:
    """sum_c weight_c * value_c over the branch's components; NaN (not applicable) counts as 0."""
    parts = [c.weight(cfg) * np.nan_to_num(components[c.name], nan=0.0) for c in components_for(branch)]
    return np.sum(parts, axis=0)
