"""Assets a stage builds on first use: the tiny model, the procedural data (one process builds, the others wait)."""

from __future__ import annotations

from pathlib import Path

from rova.config.data import DataConfig
from rova.config.schema import RootConfig
from rova.utils.locking import file_lock


def prepare_assets(cfg: RootConfig) -> None:
    """Build what the run builds on first use (tiny model, demo data) in ONE plain process, before workers start."""
    from rova.eval.benchmark import ensure_benchmark_demo
    from rova.models.loading import ensure_model_files

    ensure_model_files(cfg.model)
    ensure_demo_data(cfg.data)
    ensure_benchmark_demo(cfg.benchmark)


def ensure_demo_data(cfg: DataConfig) -> None:
    if not cfg.build_demo:
        return
    from rova.data.procedural import build_procedural

    train_file = Path(cfg.train_file)
    with file_lock(train_file.parent.with_name(train_file.parent.name + ".lock")):
        built = build_procedural(cfg.demo_task, train_file.parent, cfg.demo_num_clips, cfg.demo_split)
    if Path(built) != train_file:
        from rova.errors import ConfigError

        raise ConfigError("data.train_file", f"the procedural builder writes {built}; point data.train_file there")

