"""Stages of the recipe: one module each (`run(cfg, run_dir)`, `outcome(run_dir)`), declared in rova.config.stage."""

from __future__ import annotations

from pathlib import Path

from rova.config.stage import get_spec


def run_stage(cfg, run_dir: Path) -> None:
    """Run the stage `cfg.stage.name` names, in this process (workers and cluster=local, distributed=none).

    A full device met anywhere in the stage (a log line, memory.json, model/) is one line (DiskFullError) naming
    the path and the last complete checkpoint, not the traceback of whatever was writing.
    """
    from rova.errors import RovaError

    try:
        get_spec(cfg.stage.name).load()(cfg, Path(run_dir))
    except RovaError:
        raise
    except Exception as exc:
        from rova.training.args import CHECKPOINTS
        from rova.training.checkpoints import disk_full_error, is_disk_full

        if not is_disk_full(exc, Path(run_dir)):
            raise
        path = Path(getattr(exc, "filename", None) or run_dir)
        raise disk_full_error(path, Path(run_dir) / CHECKPOINTS, f"running stage={cfg.stage.name}") from exc
