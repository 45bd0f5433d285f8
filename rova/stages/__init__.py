"""Stages of the recipe: one module each (`run(cfg, run_dir)`, `outcome(run_dir)`), declared in rova.config.stage."""

from __future__ import annotations

from pathlib import Path

from rova.config.stage import get_spec


def run_stage(cfg, run_dir: Path) -> None:
    """Run the stage `cfg.stage.name` names, in this process (workers and cluster=local, distributed=none)."""
    get_spec(cfg.stage.name).load()(cfg, Path(run_dir))
