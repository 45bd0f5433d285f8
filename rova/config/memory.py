"""The `memory.*` settings: the difficulty-aware memory (ROVA; docs/memory.md, rova/memory) and the options that act
on a rollout's groups by their difficulty: the variance filter and DeepVideo-R1's difficulty-aware augmentation
(rova.training.difficulty_augment). These options need no memory (`memory.enabled`): the trainer reads them on any RL
stage (grpo, tgrpo, memory); the rules that span groups are in rova/config/schema.py."""

from __future__ import annotations

from dataclasses import dataclass

from rova.config.checks import _seed
from rova.errors import ConfigError


# The rollout options under memory.* that shape no memory state (DeepVideo-R1's augmentation): memory.json leaves
# them out (rova.memory.difficulty), as a resumed memory would never read them.
AUGMENT_KEYS = ("augment_easy", "augment_hard", "hint_max_chars", "hint_template")


@dataclass
class MemoryConfig:
    """The `memory.*` settings; field names are the config keys (also the schema of the `memory` section)."""

    # On for stage=memory (conf/stage/memory.yaml); the trainer switches the memory on by this, not by stage name.
    enabled: bool = False
    fail_threshold: float = 0.0
    replay_frac: float = 0.25
    recheck_interval: int = 50
    max_strikes: int = 2
    max_size: int = 100
    seed: int = 0
    # Temporal-R1 / DAPO option applied by the trainer: groups whose reward std is 0 leave the loss.
    variance_filter: bool = False
    # DeepVideo-R1's difficulty-aware augmentation (rova.training.difficulty_augment; docs/memory.md): a group whose
    # every clean completion is right is re-rolled on a corrupted clip of the corruption mix (augment_easy), one whose
    # every completion is wrong with a hint in its prompt (augment_hard): the record's `hint` field, else its `process`
    # rationale, cut to hint_max_chars characters (rova default: the paper gives no length) and written into the
    # question by hint_template (its {hint} is replaced). The re-rolled group replaces the original in the batch.
    augment_easy: bool = False
    augment_hard: bool = False
    hint_max_chars: int = 300
    hint_template: str = "\nHint: {hint}"

    def __post_init__(self) -> None:
        if not (isinstance(self.fail_threshold, (int, float)) and 0.0 <= self.fail_threshold < 1.0):
            raise ConfigError("memory.fail_threshold", f"must be in [0, 1), got {self.fail_threshold!r}")
        if not (isinstance(self.replay_frac, (int, float)) and 0.0 <= self.replay_frac <= 1.0):
            raise ConfigError("memory.replay_frac", f"must be in [0, 1], got {self.replay_frac!r}")
        for key in ("recheck_interval", "max_strikes", "max_size"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"memory.{key}", f"must be an integer >= 1, got {value!r}")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool)):
            raise ConfigError("memory.seed", f"must be an integer, got {self.seed!r}")
        _seed("memory.seed", self.seed)
        for key in ("augment_easy", "augment_hard"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"memory.{key}", f"got {getattr(self, key)!r}; must be true or false")
        chars = self.hint_max_chars
        if not (isinstance(chars, int) and not isinstance(chars, bool) and chars >= 1):
            raise ConfigError("memory.hint_max_chars", f"got {chars!r}; must be an integer >= 1 (characters of the hint)")
        if not (isinstance(self.hint_template, str) and "{hint}" in self.hint_template):
            raise ConfigError("memory.hint_template", f"got {self.hint_template!r}; must be text holding {{hint}}, "
                              "where the hint goes (it is appended to the question)")
