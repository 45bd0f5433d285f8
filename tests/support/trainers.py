"""Build a real VideoGRPOTrainer on the tiny model for a test, from launch-style overrides."""

from __future__ import annotations

from pathlib import Path


def run_overrides(cache_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    """Overrides that point a test run at the session cache and a private output root, with tiny sizes."""
    return [
        f"run.cache_dir={cache_dir}",
        f"run.output_root={tmp_path / 'outputs'}",
        "data.demo_num_clips=8",
        "logger=none",
        *extra,
    ]


def make_trainer(cache_dir: Path, tmp_path: Path, *extra: str, resume_from: str | None = None):
    """(trainer, typed config, run dir) for the overrides; the run dir is tmp_path / "run"."""
    from rova.config.compose import load_typed
    from rova.config.paths import absolutize
    from rova.stages.builders import build_rl_trainer

    cfg = load_typed(run_overrides(cache_dir, tmp_path, *extra))
    cfg = absolutize(cfg, tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer, _ = build_rl_trainer(cfg, run_dir, resume_from=resume_from)
    return trainer, cfg, run_dir
