"""The `sft.*` settings (schema of the `sft` section): video SFT on a Video-R1-COT file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.errors import ConfigError


@dataclass
class SftConfig:
    """What stage=sft trains on; the optimiser settings are stage.* (TRL names), the data data.*."""

    max_length: Optional[int] = None   # prompt (video tokens included) + completion tokens; longer rows are dropped
    require_process: bool = True       # every record needs a `process` (<think>) rationale: the CoT file's point

    def __post_init__(self) -> None:
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError("sft.max_length", f"got {self.max_length}; must be null or >= 1")
