"""The `tgrpo.*` settings: which T-GRPO branches run, and how many completions each generates per prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rova.config.branches import BRANCHES as TGRPO_BRANCHES  # the one home of branch names
from rova.config.branches import CLEAN
from rova.config.checks import _choice, _positive
from rova.errors import ConfigError

SHUFFLE_MODES = ("uniform", "derangement")  # tgrpo.shuffle: the modes of rova.corruption.temporal.shuffle_frames


@dataclass
class TGRPOConfig:
    """T-GRPO branches: which run, and how many completions each generates per prompt.

    The default is plain GRPO (the clean group only); stage=tgrpo and stage=memory add the other branches.
    """

    branches: list[str] = field(default_factory=lambda: [CLEAN])
    # null = stage.num_generations // 2 (Video-R1); only its accuracy is used (temporal reward), so 1 is allowed.
    shuffled_generations: Optional[int] = None
    # null = max(2, stage.num_generations // 2), capped at the group (ROVA). The corrupted group is trained with
    # its own group-normalised advantage: a group of 1 always has advantage 0 and only dilutes the loss.
    corrupted_generations: Optional[int] = None
    shuffle: str = "uniform"  # the shuffled branch's frame order: uniform (Video-R1) | derangement (no frame stays)

    def __post_init__(self) -> None:
        for name in self.branches:
            _choice("tgrpo.branches", name, TGRPO_BRANCHES)
        if CLEAN not in self.branches:
            raise ConfigError("tgrpo.branches", "must contain 'clean' (the group every other branch is compared to)")
        if len(set(self.branches)) != len(self.branches):
            raise ConfigError("tgrpo.branches", f"duplicate branch in {self.branches}")
        if self.shuffled_generations is not None:
            _positive("tgrpo.shuffled_generations", self.shuffled_generations)
        if self.corrupted_generations is not None and self.corrupted_generations < 2:
            raise ConfigError(
                "tgrpo.corrupted_generations",
                f"got {self.corrupted_generations}; the corrupted branch is a trained group and needs >= 2 completions "
                "(a group of one has advantage 0 and gives no gradient)",
            )
        _choice("tgrpo.shuffle", self.shuffle, SHUFFLE_MODES)
