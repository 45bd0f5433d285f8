"""Running launch.py as a user does, and finding the run dir it made (shared by the stage-run tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def launch(tmp_path: Path, cache_dir: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="offline")
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), f"run.cache_dir={cache_dir}",
         f"run.output_root={tmp_path / 'outputs'}", *overrides],
        capture_output=True, text=True, cwd=tmp_path, timeout=timeout, env=env,
    )


def only_run_dir(root: Path) -> Path:
    dirs = [p.parent for p in root.rglob("resolved.yaml")]
    assert len(dirs) == 1, dirs
    return dirs[0]
