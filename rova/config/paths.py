"""Make the path-valued config keys absolute once, in the launcher, so workers and SLURM jobs agree."""

from __future__ import annotations

from pathlib import Path

from rova.config.schema import RootConfig


def _absolute(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _looks_local(value: str, base: Path) -> bool:
    # A hub id ("Qwen/Qwen2.5-VL-7B-Instruct") stays as it is; anything that exists or starts like a path is a path.
    return value.startswith((".", "/", "~")) or (base / value).exists() or Path(value).expanduser().is_absolute()


def absolutize(cfg: RootConfig, base: Path) -> RootConfig:
    cfg.run.output_root = _absolute(cfg.run.output_root, base)
    cfg.run.cache_dir = _absolute(cfg.run.cache_dir, base)
    cfg.run.dir = _absolute(cfg.run.dir, base)
    cfg.data.train_file = _absolute(cfg.data.train_file, base)
    cfg.data.media_root = _absolute(cfg.data.media_root, base)
    cfg.benchmark.file = _absolute(cfg.benchmark.file, base)
    cfg.benchmark.media_root = _absolute(cfg.benchmark.media_root, base)
    cfg.eval.reference = _absolute(cfg.eval.reference, base)
    if cfg.model.build_tiny or _looks_local(cfg.model.path, base):
        cfg.model.path = _absolute(cfg.model.path, base)
    return cfg
