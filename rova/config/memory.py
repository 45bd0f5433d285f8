"""The `memory.*` settings: the difficulty-aware memory (ROVA; docs/memory.md, rova/memory)."""

from __future__ import annotations

from dataclasses import dataclass

from rova.config.checks import _seed
from rova.errors import ConfigError


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
