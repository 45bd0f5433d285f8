"""The `run.*` settings: where the run writes, what it resumes, and whether a relaunch may extend it.

A relaunch into an existing run dir (`run.dir=<it>`) must give the settings it was made with (rova.config.
fingerprint says which keys count); `run.extend=true` lets a training stage's `stage.max_steps` grow, recorded
in the run dir's launches.jsonl. None of the `run.*` keys shapes a run's results.
"""

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
    extend: bool = False       # a relaunch may raise stage.max_steps of a training run dir (recorded)

    def __post_init__(self) -> None:
        if self.tag is not None and not all(c.isalnum() or c in "-_." for c in self.tag):
            raise ConfigError("run.tag", f"got {self.tag!r}; use letters, digits, '-', '_' or '.' (it names the run dir)")
