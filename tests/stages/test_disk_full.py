"""Slow tier: a run that fills its disk (a small tmpfs) stops with one line naming the path, the full device and
the last complete checkpoint; that checkpoint is intact, and once space is freed the same launch resumes from it.

The tmpfs is mounted in a mount namespace of its own (`unshare -m` as root, `unshare -rm` otherwise), so this file
runs as a script inside it (`drive`) and reports what it saw; the test reads the report. Where no namespace or
mount is allowed (a container without CAP_SYS_ADMIN, user namespaces off) the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A checkpoint of the tiny model is ~0.9 MB: checkpoints 1 and 2 fit in 2.4 MB, checkpoint-3 fills the disk.
DISK = "2400k"
OVERRIDES = ("data.demo_num_clips=8", "logger=none", "stage.max_steps=4", "stage.save_steps=1", "data.probe_workers=1")


def unshare_command(mountpoint: Path) -> list[str]:
    """`unshare` with a private mount namespace in which a tmpfs mounts, or skip naming why not."""
    if sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs Linux with unshare(1) and mount(8) to mount a small tmpfs")
    command = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    probe = subprocess.run([*command, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here ({' '.join(command)}: "
                    f"{probe.stderr.strip() or probe.returncode}); needs root or unprivileged user namespaces")
    return command


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(tmp_path, cache_dir):
    disk = tmp_path / "disk"
    disk.mkdir()
    command = unshare_command(disk)
    report_path = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               WANDB_MODE="offline")
    proc = subprocess.run([*command, sys.executable, __file__, str(disk), str(cache_dir), str(report_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())

    full = report["full"]
    assert full["returncode"] == 1, full["stdout"] + full["stderr"]
    assert "Traceback" not in full["stderr"] and "Logging error" not in full["stderr"], full["stderr"]
    errors = [line for line in full["stderr"].splitlines() if line.startswith("error:")]
    assert len(errors) == 1, full["stderr"]
    (line,) = errors
    assert "no space left on device" in line and report["run_dir"] in line, line
    last = report["last_complete"]
    assert last is not None and f"the last complete checkpoint is {last}:" in line, line
    assert report["last_complete_loads"], "the last complete checkpoint does not load"

    resumed = report["resumed"]
    assert resumed["returncode"] == 0, resumed["stdout"][-3000:] + resumed["stderr"][-3000:]
    summary = report["summary"]
    assert summary["resumed_from"] == last and summary["global_step"] == 4
    assert report["train_steps"] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------------ the driver
def drive(disk: Path, cache_dir: Path, report_path: Path) -> None:
    """In the private mount namespace: fill a small tmpfs with a run, look at what it left, free space, resume."""
    from safetensors.numpy import load_file

    from rova.training.checkpoints import latest_complete_checkpoint
    from tests.support.runs import launch_in_process

    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(disk)], check=True)
    run_dir = disk / "run"
    work = report_path.parent / "work"  # cwd and output root off the small disk
    overrides = (*OVERRIDES, f"run.dir={run_dir}")
    full = launch_in_process(work, cache_dir, *overrides)
    last = latest_complete_checkpoint(run_dir / "checkpoints", warn=False)
    loads = last is not None and bool(load_file(str(last / "model.safetensors")))
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # space freed
    resumed = launch_in_process(work, cache_dir, *overrides)
    summary_path = run_dir / "summary.json"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    report_path.write_text(json.dumps({
        "run_dir": str(run_dir),
        "full": {"returncode": full.returncode, "stdout": full.stdout[-5000:], "stderr": full.stderr[-5000:]},
        "last_complete": str(last) if last is not None else None,
        "last_complete_loads": loads,
        "resumed": {"returncode": resumed.returncode, "stdout": resumed.stdout[-5000:],
                    "stderr": resumed.stderr[-5000:]},
        "summary": json.loads(summary_path.read_text()) if summary_path.exists() else None,
        "train_steps": [m["step"] for m in metrics if "loss" in m and "train_loss" not in m],
    }, indent=1))


if __name__ == "__main__":
    drive(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
