"""Stage registry: `stage.name` -> the function that runs it. Imported lazily (stages pull in torch)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from rova.config.schema import RootConfig

STAGES: dict[str, str] = {
    "grpo": "rova.stages.rl:run",
    "tgrpo": "rova.stages.rl:run",
    "memory": "rova.stages.rl:run",
}


def get_stage(name: str) -> Callable[[RootConfig, Path], None]:
    module_name, _, func = STAGES[name].partition(":")
    return getattr(importlib.import_module(module_name), func)


def run_stage(cfg: RootConfig, run_dir: Path) -> None:
    get_stage(cfg.stage.name)(cfg, Path(run_dir))
