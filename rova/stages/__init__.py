"""Stages of the recipe. The registry (`rova.stages.registry`) is light; a stage's module loads when it runs."""

from __future__ import annotations

from pathlib import Path

from rova.stages.registry import STAGES, StageSpec, get_spec, stage_names

__all__ = ["STAGES", "StageSpec", "get_spec", "run_stage", "stage_names"]


def run_stage(cfg, run_dir: Path) -> None:
    """Run the stage `cfg.stage.name` names, in this process (workers and cluster=local, distributed=none)."""
    get_spec(cfg.stage.name).load()(cfg, Path(run_dir))
