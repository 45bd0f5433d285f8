"""Tracking: wandb (rank 0, resolved config, stable run id for resume) and metrics.jsonl in the run dir."""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

from transformers import TrainerCallback

from rova.config.logger import LoggerConfig
from rova.utils.io import append_jsonl, atomic_write_text

WANDB_ID_FILE = "wandb_id.txt"


def wandb_run_id(run_dir: Path) -> str:
    """One id per run dir, created once: a requeued or relaunched run continues the same wandb run."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.exists():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id)
    return run_id


def init_wandb(cfg: LoggerConfig, run_dir: Path, config: dict, is_main: bool, tag: str | None = None):
    """Start (or resume) the wandb run on the main process; returns the run or None."""
    if cfg.name != "wandb" or not is_main:
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group,
        tags=(list(cfg.tags) + ([tag] if tag else [])) or None,
        id=wandb_run_id(run_dir),
        name=f"{Path(run_dir).parent.name}/{Path(run_dir).name}",
        resume="allow",
        dir=str(run_dir),
        config=config,
        mode=cfg.mode,
    )


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# The per-step logs of a training run dir, each with the offset of its "step" field to the step it belongs to:
# a metrics line is written after its step (step = global_step), a rollout line during it (step = global_step - 1).
STEP_LOGS = {"metrics.jsonl": 0, "rollouts.jsonl": 1}


def cut_step_logs(run_dir: Path, global_step: int) -> None:
    """Cut every per-step log of `run_dir` back to `global_step`, the step training starts from: a resumed run
    trains the steps after its checkpoint again, and a fresh start (0) empties them. Torn lines (a kill) go too."""
    for name, offset in STEP_LOGS.items():
        path = Path(run_dir) / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] + offset <= global_step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):  # a line torn by a kill
                continue
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class MetricsJsonlCallback(TrainerCallback):
    """Append every logged dict (train metrics, rewards, timing) as one JSON line to metrics.jsonl; at the start
    of training, cut every per-step log back to the step it starts from (cut_step_logs)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_step = state.global_step
        if state.is_world_process_zero:
            cut_step_logs(self.run_dir, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and not trained_nothing(self, state, logs):
            append_jsonl(self.path, {"step": state.global_step, **{k: _clean(v) for k, v in logs.items()}})


def trained_nothing(callback, state, logs: dict) -> bool:
    """The end-of-training summary (train_loss, train_runtime) of a launch that took no step: a finished run
    relaunched. Its figures describe nothing (train_loss 0.0, thousands of samples per second) and are dropped."""
    return "train_runtime" in logs and state.global_step == getattr(callback, "start_step", None)


class PreemptionCallback(TrainerCallback):
    """Save a checkpoint and stop cleanly when the run dir holds the PREEMPT flag (SLURM timeout/preemption)."""

    def __init__(self, run_dir: Path):
        self.flag = Path(run_dir) / "PREEMPT"
        self.preempted = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.flag.exists():
            self.preempted = True
            control.should_save = True
            control.should_training_stop = True
        return control


def console_keys() -> tuple[tuple[str, str], ...]:
    """(metric, label) pairs of the console line: loss, reward, every clean-branch reward component, memory, length."""
    from rova.config.branches import CLEAN
    from rova.rewards.registry import components_for

    components = tuple((f"rewards/{CLEAN}/{c.name}/mean", c.name[:4]) for c in components_for(CLEAN))
    return (
        ("loss", "loss"), ("reward/mean", "reward"), *components, ("accuracy/corrupted", "acc_corr"),
        ("memory/size", "mem"), ("completions/mean_length", "len"), ("step_time", "s/step"),
    )


class ConsoleCallback(TrainerCallback):
    """One compact line per logged step (the full dict goes to metrics.jsonl and wandb)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or trained_nothing(self, state, logs):
            return
        if "train_runtime" in logs:
            print(f"[rova] trained {state.global_step} steps in {logs['train_runtime']:.1f}s", flush=True)
            return
        print(console_line(state.global_step, state.max_steps, logs), flush=True)


def console_line(step: int, max_steps: int, logs: dict) -> str:
    """`[rova] step N/M loss=.. reward=.. <every clean reward component> ..`: the reward components every step, in
    one order, `-` for one the step has no value for (a batch without grounding questions has no iou), so the
    columns do not shift from line to line; the other entries only when logged (memory, corrupted accuracy)."""
    from rova.config.branches import CLEAN

    component = f"rewards/{CLEAN}/"
    parts = [f"step {step}/{max_steps}"]
    for key, label in console_keys():
        value = logs.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            parts.append(f"{label}={value:.4g}")
        elif key.startswith(component):
            parts.append(f"{label}=-")
    return "[rova] " + " ".join(parts)
