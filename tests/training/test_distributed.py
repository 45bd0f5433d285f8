"""Slow tier: real multi-process DeepSpeed on CPU, and a local run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rova.training.checkpoints import COMPLETE_MARKER
from rova.utils.deepspeed_shm import own_segments

from tests.support.runs import REPO, launch, only_run_dir

pytestmark = pytest.mark.slow


AUGMENT_STEPS = 6


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ZeRO-3 on the tiny Qwen2.5-VL runs in test_dynamic_sampling_rounds_agree_across_zero3_processes (tgrpo, dapo).
@pytest.mark.parametrize(("strategy", "model"), [
    ("ddp", "tiny"), ("zero2", "tiny"), ("zero3", "tiny_qwen3_vl"),
], ids=["ddp", "zero2", "zero3-qwen3_vl"])
def test_two_cpu_processes_through_launch(tmp_path, cache_dir, strategy, model):
    segments_before = own_segments()
    proc = launch(
        tmp_path, cache_dir, f"distributed={strategy}", "distributed.nproc_per_node=2", "data.demo_num_clips=8",
        "logger=none", "stage.max_steps=2", "stage.save_steps=2", f"model={model}", timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_dir = only_run_dir(tmp_path / "outputs")  # one run dir for the whole multi-process run
    steps = [m for m in metrics(run_dir) if "loss" in m and "train_loss" not in m]
    assert len(steps) == 2 and all(math.isfinite(m["loss"]) for m in steps)
    # Both ranks generated: each step holds the groups of 2 processes.
    assert all(m["branch/clean_completions"] == 8 for m in steps)
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "trainer_state.json").exists()
    if strategy != "ddp":
        assert any(p.name.startswith("global_step") for p in checkpoint.iterdir()), "no DeepSpeed engine state"
    assert "2 processes, DistributedType." in proc.stdout and "DistributedType.NO" not in proc.stdout
    # DeepSpeed's CPU all-reduce segments (66 MiB per rank in /dev/shm) are gone with the run: each rank unlinks
    # its own once all are mapped (the launcher found none left to remove).
    assert own_segments() <= segments_before, own_segments() - segments_before
    assert "shared-memory segment(s) the workers left" not in proc.stdout
    from rova.models.families import family_of_model_type

    for path in (checkpoint, run_dir / "model"):
        model_type = json.loads((path / "config.json").read_text())["model_type"]
        family = family_of_model_type(model_type)
        assert family is not None and (model == "tiny") == (family.name == "qwen2_5_vl")
        loaded = family.model_class(model_type).from_pretrained(path)
        assert sum(p.numel() for p in loaded.parameters()) > 0


def test_dynamic_sampling_rounds_agree_across_zero3_processes(tmp_path, cache_dir):
    """objective=dapo under ZeRO-3 (generation and the KL passes are collective): both processes run the same
    refill rounds, whatever each one needs, so the run neither hangs nor desynchronises (rova.training.dynamic_sampling).
    stage=tgrpo: the shuffled and corrupted branches and the KL reward's model passes run in every round."""
    proc = launch(
        tmp_path, cache_dir, "distributed=zero3", "distributed.nproc_per_node=2", "data.demo_num_clips=8",
        "logger=none", "stage=tgrpo", "stage.max_steps=2", "stage.save_steps=100", "stage.num_generations=2",
        "stage.per_device_train_batch_size=4", "stage.max_completion_length=12", "objective=dapo",
        "objective.max_sampling_rounds=3", timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = [m for m in metrics(run_dir) if "loss" in m and "train_loss" not in m]
    assert len(steps) == 2 and all(math.isfinite(m["loss"]) for m in steps)
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    for step, m in enumerate(steps):
        assert 1 <= m["dynamic_sampling/rounds"] <= 3 and m["branch/clean_completions"] == 8  # 2 x 2 groups of 2
        groups = [r for r in rollouts if r["step"] == step]
        assert sum(r["in_batch"] for r in groups) == 4
        assert m["dynamic_sampling/drawn_groups"] == sum(r["round"] > 0 for r in groups)
        # Both processes ran every round and drew the same number of prompts in it.
        per_round = [sum(r["round"] == k for r in groups) for k in range(int(m["dynamic_sampling/rounds"]))]
        assert per_round[0] == 4 and all(n > 0 and n % 2 == 0 for n in per_round), per_round


def test_difficulty_augmentation_rounds_agree_across_zero3_processes(tmp_path, cache_dir, demo_file):
    """memory.augment_hard under ZeRO-3 (generation is collective: a process that skipped the re-roll round while
    the other ran it would hang both). One prompt group per process and step; the tiny model's groups are all wrong,
    and every other record has no rationale to hint with (left as it was: hard_no_hint). So in a step where one
    process's record has a hint and the other's has not, the other pads the agreed round with a plain re-generation
    of its own group (rova.training.difficulty_augment.padding_groups), discarded and counted."""
    records = json.loads(demo_file.read_text())
    for i, record in enumerate(records):
        if i % 2:
            record.pop("process", None)
            record.pop("hint", None)
    train = demo_file.with_name("demo-8-half-hints.json")  # beside demo_file: its ./videos/ paths hold
    train.write_text(json.dumps(records))
    proc = launch(
        tmp_path, cache_dir, "distributed=zero3", "distributed.nproc_per_node=2", f"data.train_file={train}",
        "data.build_demo=false", "logger=none", "stage=memory", f"stage.max_steps={AUGMENT_STEPS}",
        "stage.save_steps=100", "stage.num_generations=2", "stage.per_device_train_batch_size=2",
        "stage.max_completion_length=12", "memory.augment_hard=true", timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = [m for m in metrics(run_dir) if "loss" in m and "train_loss" not in m]
    assert len(steps) == AUGMENT_STEPS and all(math.isfinite(m["loss"]) for m in steps)
    counts = [(m["augment/hard_rerolled"], m["augment/hard_no_hint"], m["augment/padding_groups"]) for m in steps]
    print("per step (re-rolled, no hint, padding):", counts)  # shown by pytest -rP
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    for step, (rerolled, no_hint, padding) in enumerate(counts):
        assert padding == (1 if rerolled == 1 else 0), counts  # the most any process re-rolls, minus its own
        groups = [r for r in rollouts if r["step"] == step]
        assert sum(r["in_batch"] for r in groups) == 2  # each process keeps one group: its re-roll or its original
        assert sum(r["augment"] == "hard" for r in groups) == rerolled  # padding is not logged
    assert any(padding == 1 for _, _, padding in counts), counts  # the padding path really ran


def test_ddp_on_cpu_relaunch_resumes(tmp_path, cache_dir):
    """transformers loads a multi-process run's optimizer to `cpu:<rank>`, which torch.load refuses: a DDP run
    on CPU could not resume (rova/training/loop_fixes.py)."""
    common = ("distributed=ddp", "distributed.nproc_per_node=2", "data.demo_num_clips=8", "logger=none",
              "stage.save_steps=1")
    first = launch(tmp_path, cache_dir, *common, "stage.max_steps=1", timeout=900)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    second = launch(tmp_path, cache_dir, *common, "stage.max_steps=2", f"run.dir={run_dir}", "run.extend=true",
                    timeout=900)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2 and summary["resumed_from"].endswith("checkpoint-1")
    steps = [m["step"] for m in metrics(run_dir) if "loss" in m and "train_loss" not in m]
    assert steps == [1, 2], steps


def test_sigkill_mid_training_then_relaunch_resumes(tmp_path, cache_dir):
    out = tmp_path / "outputs"
    run_dir = out / "killed"
    args = [
        sys.executable, str(REPO / "launch.py"), f"run.cache_dir={cache_dir}", f"run.output_root={out}",
        f"run.dir={run_dir}", "data.demo_num_clips=8", "logger=wandb", "stage.max_steps=8", "stage.save_steps=2",
    ]
    env = dict(os.environ, WANDB_MODE="offline")
    first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if (run_dir / "checkpoints" / "checkpoint-4" / COMPLETE_MARKER).exists():
            break
        if first.poll() is not None:
            pytest.fail(f"the first run ended (exit {first.returncode}) before it could be killed")
        time.sleep(0.2)
    else:
        pytest.fail("no checkpoint-4 within the deadline")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    wandb_id = (run_dir / "wandb_id.txt").read_text().strip()
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed"

    second = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] and summary["resumed_from"].rsplit("-", 1)[-1] in {"4", "6"}
    assert summary["global_step"] == 8
    steps = [m["step"] for m in metrics(run_dir) if "loss" in m and "train_loss" not in m]
    assert steps == list(range(1, 9)), steps  # continuous numbering, no step twice
    assert (run_dir / "wandb_id.txt").read_text().strip() == wandb_id
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) >= 2 and all(r.name.endswith(wandb_id) for r in runs)
