"""The `reward.*` settings: reward weights and constants (definitions: docs/rewards.md)."""

from __future__ import annotations

from dataclasses import dataclass

from rova.config.checks import _choice, _positive, _unit
from rova.errors import ConfigError


@dataclass
class RewardConfig:
    """Reward weights and constants (definitions: docs/rewards.md)."""

    name: str = "video_r1"
    w_acc: float = 1.0
    w_fmt: float = 1.0
    w_len: float = 0.0
    w_temp: float = 1.0
    w_kl: float = 0.0
    w_iou: float = 1.0
    len_min: int = 320
    len_max: int = 512
    len_bonus: float = 0.2
    temporal_alpha: float = 0.3
    temporal_mu: float = 0.8
    kl_alpha: float = 1.0
    kl_estimator: str = "full"
    kl_topk: int = 64
    kl_loss_coef: float = 0.0
    acc_threshold: float = 0.1
    # video_r1: one <think>/<answer> rule for every task (rova.rewards.format); per_task: VideoChat-R1's strict
    # rules (grounded QA adds <glue>, tracking needs a valid K x 4 box list: rova.rewards.format_rules).
    format_rule: str = "video_r1"
    # A multiple-choice record with several correct letters ("A,C"): exact (all of them, no other) or soft
    # (TW-GRPO: |S| / |GT| for a non-empty subset S of GT, else 0; rova.rewards.choices).
    multi_answer: str = "exact"
    # A control: each trained branch's total rewards are permuted across its completions (seeded by the step)
    # before the advantages, so they no longer say which completion was right; logged rewards stay the true ones.
    shuffle: bool = False

    def __post_init__(self) -> None:
        for key in ("w_acc", "w_fmt", "w_len", "w_temp", "w_kl", "w_iou", "len_bonus", "temporal_alpha",
                    "kl_alpha", "kl_loss_coef"):
            _positive(f"reward.{key}", getattr(self, key), allow_zero=True)
        _positive("reward.len_min", self.len_min, allow_zero=True)
        if self.len_max < self.len_min:
            raise ConfigError("reward.len_max", f"got {self.len_max}; must be >= reward.len_min ({self.len_min})")
        _positive("reward.temporal_mu", self.temporal_mu, allow_zero=True)
        _choice("reward.kl_estimator", self.kl_estimator, ("full", "topk", "sampled"))
        _positive("reward.kl_topk", self.kl_topk)
        _unit("reward.acc_threshold", self.acc_threshold)
        _choice("reward.format_rule", self.format_rule, ("video_r1", "per_task"))
        _choice("reward.multi_answer", self.multi_answer, ("exact", "soft"))
