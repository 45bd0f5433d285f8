"""The run directory: everything a run writes, starting with the resolved config and its provenance."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rova.errors import ConfigError
from rova.utils.io import atomic_write_json, atomic_write_text

RESOLVED = "resolved.yaml"
META = "meta.json"


def git_state(repo: Path) -> dict:
    def run(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=5)
            return out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {"git_sha": run("rev-parse", "HEAD") or None, "git_dirty": bool(run("status", "--porcelain"))}


def new_run_dir(output_root: Path, stage: str, now: dt.datetime, tag: str | None = None) -> Path:
    """`<root>/<stage>/<date>/<time>[_<tag>]/`; never reuses an existing dir."""
    base = output_root / stage / now.strftime("%Y-%m-%d") / (now.strftime("%H-%M-%S") + (f"_{tag}" if tag else ""))
    candidate, n = base, 1
    while candidate.exists():
        candidate = base.with_name(f"{base.name}_{n}")
        n += 1
    return candidate


def write_run_dir(run_dir: Path, resolved: DictConfig, overrides: list[str], repo: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RESOLVED, OmegaConf.to_yaml(resolved, resolve=True))
    meta = {
        "command": [sys.executable, *sys.argv],
        "overrides": list(overrides),
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cwd": os.getcwd(),
        **git_state(repo),
    }
    atomic_write_json(run_dir / META, meta)
    return run_dir


def run_dir_error(exc: OSError, run) -> ConfigError:
    """The one-line error for a run dir that cannot be made (`run`: the run.* config), naming the key to change.

    A name longer than the file system allows (ENAMETOOLONG) is run.tag's when the tag is in it, else
    run.output_root's (or run.dir's when given); anything else (an unwritable or full output root, a file where a
    directory should be) is the root's.
    """
    import errno

    key = "run.dir" if run.dir else "run.output_root"
    path = Path(exc.filename or (run.dir or run.output_root))
    if exc.errno == errno.ENAMETOOLONG:
        limit = _name_max(path)
        name = max(path.parts, key=len)
        if run.tag and run.tag in name:
            key = "run.tag"
        shown = f"{name[:40]}..." if len(name) > 40 else name
        return ConfigError(key, f"the run dir name {shown!r} is {len(name)} characters, too long for the file "
                                f"system (at most {limit}); use a shorter {key}")
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(key, f"cannot create the run dir {path}: {reason}; choose a writable {key}")


def _name_max(path: Path) -> int:
    """The longest file name the file system of `path` (its nearest existing parent) allows."""
    for parent in (path, *path.parents):
        try:
            if parent.is_dir():
                return os.pathconf(parent, "PC_NAME_MAX")
        except OSError:
            continue
    return 255
