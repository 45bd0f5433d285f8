"""Running launch.py as a user does, and finding the run dir it made (shared by the stage-run tests).

`launch` runs `launch.py` in this process (`rova.cli.main`, what `launch.py` calls): the same compose,
validation, run-dir and dispatch code, without paying a fresh interpreter's torch/transformers import for
every run. Runs that must cross a process boundary (several workers, SLURM, a kill, a real exit status of
the interpreter) use `launch_subprocess`; `launch` hands those to it too (any `distributed=` other than none
and any `cluster=slurm`), so a test cannot run them in-process by mistake.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_SUBPROCESS_ONLY = ("distributed=", "cluster=slurm", "cluster.name=slurm")


@dataclass
class LaunchResult:
    """The part of `subprocess.CompletedProcess` the tests read."""

    returncode: int
    stdout: str
    stderr: str


def _base_overrides(tmp_path: Path, cache_dir: Path) -> list[str]:
    return [f"run.cache_dir={cache_dir}", f"run.output_root={tmp_path / 'outputs'}"]


def launch_subprocess(tmp_path: Path, cache_dir: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="offline")
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), *_base_overrides(tmp_path, cache_dir), *overrides],
        capture_output=True, text=True, cwd=tmp_path, timeout=timeout, env=env,
    )


def _needs_subprocess(overrides: tuple[str, ...]) -> bool:
    return any(
        o.startswith(_SUBPROCESS_ONLY) and o not in ("distributed=none", "distributed.name=none") for o in overrides
    )


def launch(tmp_path: Path, cache_dir: Path, *overrides: str, timeout: int = 600):
    """`python launch.py <overrides>` from `tmp_path`: in this process unless the run needs other processes."""
    if _needs_subprocess(overrides):
        return launch_subprocess(tmp_path, cache_dir, *overrides, timeout=timeout)
    return launch_in_process(tmp_path, cache_dir, *overrides)


def launch_in_process(tmp_path: Path, cache_dir: Path, *overrides: str) -> LaunchResult:
    """`rova.cli.main` with the run's cwd, stdout and stderr captured as a subprocess would give them.

    An exception that escapes main (what the interpreter would print as a traceback and exit 1 on) becomes
    returncode 1 with the traceback on stderr; `sys.exit(n)` becomes returncode n.
    """
    from rova.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous_cwd = os.getcwd()
    previous_env = dict(os.environ)
    root_handlers = list(logging.getLogger().handlers)
    handler = logging.StreamHandler(err)
    logging.getLogger().addHandler(handler)
    tmp_path.mkdir(parents=True, exist_ok=True)
    os.chdir(tmp_path)
    os.environ["WANDB_MODE"] = "offline"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*_base_overrides(tmp_path, cache_dir), *overrides])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # noqa: BLE001 - the interpreter's behaviour: traceback on stderr, exit 1
                traceback.print_exc(file=err)
                code = 1
    finally:
        os.chdir(previous_cwd)
        os.environ.clear()
        os.environ.update(previous_env)
        for added in logging.getLogger().handlers:
            if added not in root_handlers:
                added.close()  # the run's train.log FileHandler
        logging.getLogger().handlers[:] = root_handlers
    return LaunchResult(int(code or 0), out.getvalue(), err.getvalue())


def only_run_dir(root: Path) -> Path:
    dirs = [p.parent for p in root.rglob("resolved.yaml")]
    assert len(dirs) == 1, dirs
    return dirs[0]
