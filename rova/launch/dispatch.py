"""Dispatch validated jobs: in this process, as N local workers, or to SLURM."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from omegaconf import OmegaConf

from rova.config.schema import RootConfig
from rova.errors import ConfigError
from rova.launch.rundir import claim_run_dir, write_run_dir

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
LOCAL_MASTER = "127.0.0.1"  # the rendezvous address of a run whose workers all start on this machine


def prepare_run_dirs(
    jobs: list[list[str]], typed_jobs: list[RootConfig], *, now: dt.datetime, multirun: bool,
    claims: ExitStack | None = None,
) -> list[Path]:
    """Each job's run dir, claimed (rova.launch.rundir.claim_run_dir: checks, lock, settings) before any is
    written; then resolved.yaml and the provenance are written. With `claims` the run dirs stay this launch's
    until it closes (the launcher's; and a run dir made here holding nothing else then is removed); without,
    the locks are released on return."""
    from rova.launch.rundir import new_run_dir

    run_dirs = []
    sweep_base: Path | None = None
    for index, cfg in enumerate(typed_jobs):
        if cfg.run.dir:
            run_dir = Path(cfg.run.dir)
        elif multirun:
            if sweep_base is None:
                sweep_base = new_run_dir(Path(cfg.run.output_root), "multirun", now, cfg.run.tag)
            run_dir = sweep_base / f"{index}_{cfg.stage.name}"
        else:
            run_dir = new_run_dir(Path(cfg.run.output_root), cfg.stage.name, now, cfg.run.tag)
        if run_dir in run_dirs:
            raise ConfigError("run.dir", f"runs {run_dirs.index(run_dir)} and {index} of this sweep would share "
                              f"{run_dir}; drop run.dir (each run then gets its own) or sweep run.dir too")
        run_dirs.append(run_dir)
    with ExitStack() as own:
        stack = claims if claims is not None else own
        extended = [claim_run_dir(run_dir, cfg, stack, remove_unused=claims is not None)
                    for run_dir, cfg in zip(run_dirs, typed_jobs)]
        for overrides, cfg, run_dir, grown in zip(jobs, typed_jobs, run_dirs, extended):
            cfg.run.dir = str(run_dir)
            write_run_dir(run_dir, OmegaConf.structured(cfg), overrides, REPO, extended=grown)
    return run_dirs


def run_local_workers(cfg: RootConfig, run_dir: Path) -> int:
    """Start the workers of one run on this machine and wait for them."""
    from rova.launch.workers import free_port, worker_command
    from rova.utils.deepspeed_shm import orphans_warning, remove_run_segments

    if cfg.distributed.name in ("zero2", "zero3") and (warning := orphans_warning()):
        print(f"[rova] warning: {warning}", file=sys.stderr, flush=True)
    port = cfg.distributed.master_port or free_port()
    cmd = worker_command(cfg, run_dir, master_addr=LOCAL_MASTER, master_port=port)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    print(f"[rova] starting workers: {' '.join(cmd)}", flush=True)
    try:
        return subprocess.run(cmd, env=env, cwd=REPO).returncode
    finally:
        if left := remove_run_segments(LOCAL_MASTER, port):  # a rank died while the process group started
            print(f"[rova] removed {len(left)} DeepSpeed shared-memory segment(s) the workers left", flush=True)


def dispatch(typed_jobs: list[RootConfig], run_dirs: list[Path], release=lambda: None) -> int:
    """Run the jobs here (one after the other) or submit them to SLURM; `release` hands the run dirs' locks
    on once submitted (the SLURM tasks take them on their nodes; rova.launch.rundir)."""
    if typed_jobs[0].cluster.name == "slurm":
        from rova.launch.slurm import submit

        return submit(typed_jobs, run_dirs, release=release)

    failures = 0
    for cfg, run_dir in zip(typed_jobs, run_dirs):
        print(f"[rova] run dir: {run_dir}", flush=True)
        if cfg.distributed.name == "none":
            from rova.stages import run_stage

            run_stage(cfg, run_dir)
            code = 0
        else:
            from rova.stages.assets import prepare_assets

            prepare_assets(cfg)
            code = run_local_workers(cfg, run_dir)
        if code != 0:
            print(f"[rova] run failed (exit {code}): {run_dir}", file=sys.stderr, flush=True)
            failures += 1
    return 1 if failures else 0
