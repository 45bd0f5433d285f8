"""The `logger.*` settings: experiment tracking (wandb offline needs no key; `logger=none` turns it off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rova.config.checks import _choice


@dataclass
class LoggerConfig:
    """Experiment tracking. wandb offline needs no key; `logger=none` turns tracking off."""

    name: str = "wandb"
    project: str = "rova"
    entity: Optional[str] = None
    mode: str = "offline"
    group: Optional[str] = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("logger.name", self.name, ("wandb", "none"))
        _choice("logger.mode", self.mode, ("offline", "online", "disabled"))
