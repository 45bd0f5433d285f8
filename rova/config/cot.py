"""The `cot.*` settings (schema of the `cot` section): how the teacher annotates a Video-R1 dataset."""

from __future__ import annotations

from dataclasses import dataclass

from rova.errors import ConfigError


@dataclass
class CotConfig:
    """k teacher samples per item, each scored with the accuracy reward; the best at or above min_score is kept."""

    num_samples: int = 4               # k completions per item
    min_score: float = 1.0             # keep the best sample only if its accuracy >= this
    temperature: float = 1.0           # sampling temperature of the teacher (k > 1 needs sampling)
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 4                # prompts per generate call
    shards: int = 1                    # cluster=slurm: K array tasks share the items, as eval.shards

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ConfigError("cot.num_samples", f"got {self.num_samples}; must be >= 1")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError("cot.min_score", f"got {self.min_score}; must be in [0, 1]")
        if self.temperature <= 0:
            raise ConfigError("cot.temperature", f"got {self.temperature}; must be > 0")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("cot.top_p", f"got {self.top_p}; must be in (0, 1]")
        for key in ("max_new_tokens", "batch_size", "shards"):
            if getattr(self, key) < 1:
                raise ConfigError(f"cot.{key}", f"got {getattr(self, key)}; must be >= 1")
