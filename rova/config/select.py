"""The `select.*` settings (schema of the `select` section): Temporal-R1's offline variance-aware data selection.

The model (model.*) answers every record of data.train_file `num_samples` times; a record is kept when its reward
varies across the samples (../shared/docs/methods.md, Temporal-R1). The rule (rova.select.rule):
  - right/wrong rewards (multiple choice, numerical): kept iff min_mean < mean accuracy < max_mean;
  - graded rewards (the IoU of grounding, tracking and grounded_qa's evidence; regression, OCR, free-form, caption):
    kept iff std(reward) > min_std.
Temporal-R1 does not release N or the thresholds; rova's defaults: N = 8, 0 < mean < 1, std(IoU) > 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from rova.errors import ConfigError

# The largest standard deviation (population) of values in [0, 1]: half of them 0, half 1.
MAX_STD = 0.5


@dataclass
class SelectConfig:
    """N sampled answers per record, each scored by the training reward; the keep rule's thresholds."""

    num_samples: int = 8               # N completions per record (Temporal-R1: 8)
    min_mean: float = 0.0              # right/wrong rewards: kept iff min_mean < mean accuracy < max_mean
    max_mean: float = 1.0
    min_std: float = 0.1               # graded rewards (IoU, ...): kept iff std over the N samples > min_std
    temperature: float = 1.0           # sampling temperature (Temporal-R1's rollouts: 1.0)
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 8                # prompts per generate call (a record is num_samples prompts)
    shards: int = 1                    # cluster=slurm: K array tasks share the records, as eval.shards

    def __post_init__(self) -> None:
        if self.num_samples < 2:
            raise ConfigError("select.num_samples", f"got {self.num_samples}; must be >= 2 (one sample has no variance)")
        for key in ("min_mean", "max_mean"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"select.{key}", f"got {getattr(self, key)}; must be in [0, 1]")
        if self.min_mean >= self.max_mean:
            raise ConfigError("select.min_mean", f"got {self.min_mean} with select.max_mean {self.max_mean}; min_mean "
                              "must be < max_mean (a record is kept when min_mean < mean accuracy < max_mean)")
        if not 0.0 <= self.min_std < MAX_STD:
            raise ConfigError("select.min_std", f"got {self.min_std}; must be in [0, {MAX_STD}) (the std of rewards "
                              f"in [0, 1] is at most {MAX_STD}, so a larger threshold keeps nothing)")
        if self.temperature <= 0:
            raise ConfigError("select.temperature", f"got {self.temperature}; must be > 0 (N samples need sampling)")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("select.top_p", f"got {self.top_p}; must be in (0, 1]")
        for key in ("max_new_tokens", "batch_size", "shards"):
            if getattr(self, key) < 1:
                raise ConfigError(f"select.{key}", f"got {getattr(self, key)}; must be >= 1")
