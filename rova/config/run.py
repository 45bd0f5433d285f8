"""The `run.*` settings: where the run writes, and what it resumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.errors import ConfigError


@dataclass
class RunConfig:
    """Where the run writes, and what it resumes."""

    output_root: str = "outputs"
    dir: Optional[str] = None
    cache_dir: str = ".cache"
    resume: bool = True
    tag: Optional[str] = None

    def __post_init__(self) -> None:
        if self.tag is not None and not all(c.isalnum() or c in "-_." for c in self.tag):
            raise ConfigError("run.tag", f"got {self.tag!r}; use letters, digits, '-', '_' or '.' (it names the run dir)")
