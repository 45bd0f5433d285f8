"""Slow tier: a stage=memory run SIGKILLed at 10 random moments (seeded), relaunched after each, ends where an
uninterrupted run ends: the same weights, the same memory, and every per-step log holds each step once.

Each attempt must be a process of its own (a kill ends it), but a fresh interpreter per attempt would spend most
of the test importing torch / transformers / TRL. So a driver process (this file run as a script) imports them
once and forks one child per attempt; a child runs `launch.py`'s main on the same run dir (as a relaunch does)
and SIGKILLs itself at its moment. A moment is drawn from the seed as an operation of the training and checkpoint
path (a rollout, a torch.save, an atomic write, trainer_state.json -- the kill of issue 22 --, memory.json, the
checkpoint's marker, a log line), its n-th call in the attempt, and a delay after entering it of 0 or up to 20 ms
(so some kills land inside a write and leave it torn). Counting calls rather than seconds keeps the moments where
they were drawn whatever the machine's load. The uninterrupted run is a child of the same driver, so both share
the numerics of one process image.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KILLS, SEED, STEPS = 10, 22, 8
OVERRIDES = ("stage=memory", "data.demo_num_clips=8", "logger=none", f"stage.max_steps={STEPS}", "stage.save_steps=1",
             "memory.fail_threshold=0.99", "memory.replay_frac=0.5", "data.probe_workers=1")
# (module, attribute, calls per training step): where a child may be killed; n is drawn up to 2 steps' calls.
OPERATIONS = (
    ("rova.training.trainer", "VideoGRPOTrainer.generate_rows", 1),  # mid-step: the rollout
    ("torch", "save", 4),  # training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth
    ("transformers.trainer_callback", "TrainerState.save_to_json", 1),
    ("rova.memory.replay", "ReplayMemory.save", 1),
    ("rova.utils.io", "atomic_write_bytes", 4),  # memory.json (twice), replay_choices.json, the marker
    ("rova.training.checkpoints", "mark_complete", 1),
    ("rova.training.tracking", "append_jsonl", 1),  # metrics.jsonl
    ("rova.training.trainer", "append_jsonl", 1),  # rollouts.jsonl
)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_relaunch_ends_as_an_uninterrupted_run(tmp_path, cache_dir):
    from safetensors.numpy import load_file

    report_path = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, __file__, str(tmp_path), str(cache_dir), str(report_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    attempts = report["attempts"]
    logs = "\n".join(f"{a}\n" + Path(a["log"]).read_text()[-1500:] for a in attempts if a["status"] not in (-9, 0))
    assert all(a["status"] in (-signal.SIGKILL, 0) for a in attempts), logs  # no relaunch ever failed
    assert sum(a["status"] == -signal.SIGKILL for a in attempts) == KILLS, attempts
    assert report["final"] == 0, Path(report["final_log"]).read_text()[-3000:]

    straight, killed = Path(report["straight"]), Path(report["killed"])
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["global_step"] == STEPS
    expected, got = (load_file(str(d / "model" / "model.safetensors")) for d in (straight, killed))
    assert [k for k in expected if not (expected[k] == got[k]).all()] == [], "weights differ from the straight run"
    last = Path("checkpoints") / f"checkpoint-{STEPS}"
    for memory in ("memory.json", last / "memory.json"):
        assert json.loads((killed / memory).read_text()) == json.loads((straight / memory).read_text()), memory

    def lines(run_dir, name):
        return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]

    def train_steps(run_dir):
        return [m["step"] for m in lines(run_dir, "metrics.jsonl") if "loss" in m and "train_loss" not in m]

    assert train_steps(killed) == train_steps(straight) == list(range(1, STEPS + 1))
    rollouts = [(r["step"], r["sample_id"], r["replayed"]) for r in lines(killed, "rollouts.jsonl")]
    assert rollouts == [(r["step"], r["sample_id"], r["replayed"]) for r in lines(straight, "rollouts.jsonl")]
    assert [step for step, _, _ in rollouts] == list(range(STEPS))


# ------------------------------------------------------------------------------------------------ the driver
def _kill_me() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child(argv: list[str], log: Path, moment: tuple[str, str, int, float] | None) -> None:
    """A forked attempt: launch.py's main on the run dir, SIGKILLed `delay` seconds after it enters the n-th call
    of the moment's operation (at once for 0)."""
    os.setpgid(0, 0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if moment is not None:
        import importlib
        import threading

        module_name, attribute, nth, delay = moment
        owner = importlib.import_module(module_name)
        path = attribute.split(".")
        for name in path[:-1]:
            owner = getattr(owner, name)
        original, calls = getattr(owner, path[-1]), [0]

        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] == nth:
                if delay == 0:
                    _kill_me()
                timer = threading.Timer(delay, _kill_me)
                timer.daemon = True
                timer.start()
            return original(*args, **kwargs)

        setattr(owner, path[-1], wrapper)
    from rova.cli import main

    try:
        code = main(argv)
    except BaseException:  # noqa: BLE001 - what the interpreter would do: a traceback and exit 1
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))


def _attempt(argv, log, moment=None) -> int:
    """Fork one attempt and wait for it; its exit code (-9: killed)."""
    pid = os.fork()
    if pid == 0:
        _child(argv, log, moment)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped: its process group still exists
    try:
        os.killpg(pid, signal.SIGKILL)  # anything it started goes with it
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def drive(tmp: Path, cache_dir: Path, report: Path) -> None:
    import random

    import rova.cli  # noqa: F401 - imported once here, forked into every attempt
    import rova.memory.sampler  # noqa: F401
    import rova.stages.builders  # noqa: F401
    import rova.stages.rl  # noqa: F401
    import rova.training.trainer  # noqa: F401

    base = [f"run.cache_dir={cache_dir}", f"run.output_root={tmp / 'outputs'}", *OVERRIDES]
    straight, killed = tmp / "straight", tmp / "killed"
    started = time.monotonic()
    status = _attempt([*base, f"run.dir={straight}"], tmp / "straight.log")
    duration = time.monotonic() - started
    assert status == 0, (tmp / "straight.log").read_text()[-3000:]

    rng = random.Random(SEED)
    attempts = []
    # Until KILLS attempts were killed (a moment the attempt never reaches, e.g. a relaunch of the finished run
    # that saves no checkpoint, lets it end: not counted).
    while sum(a["status"] == -signal.SIGKILL for a in attempts) < KILLS and len(attempts) < 3 * KILLS:
        log = tmp / f"attempt{len(attempts)}.log"
        module_name, attribute, per_step = rng.choice(OPERATIONS)
        moment = (module_name, attribute, rng.randint(1, 2 * per_step), rng.choice([0.0, rng.uniform(0.0, 0.02)]))
        status = _attempt([*base, f"run.dir={killed}"], log, moment)
        attempts.append({"index": len(attempts), "moment": moment, "status": status, "log": str(log)})
    final = _attempt([*base, f"run.dir={killed}"], tmp / "final.log")
    report.write_text(json.dumps({
        "straight": str(straight), "killed": str(killed), "straight_seconds": duration, "attempts": attempts,
        "final": final, "final_log": str(tmp / "final.log"), "seconds": time.monotonic() - started,
    }, indent=1))


if __name__ == "__main__":
    drive(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
