"""Slow tier: stage=sft on 2 CPU processes through the launcher, with DDP and DeepSpeed ZeRO-2/3."""

from __future__ import annotations

import json
import math

import pytest

from tests.support.runs import launch, only_run_dir

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strategy", ["ddp", "zero2", "zero3"])
def test_sft_on_two_cpu_processes(tmp_path, cache_dir, strategy):
    proc = launch(tmp_path, cache_dir, "stage=sft", f"distributed={strategy}", "distributed.nproc_per_node=2",
                  "data.demo_num_clips=8", "logger=none", "stage.max_steps=2", "stage.save_steps=2",
                  "stage.per_device_train_batch_size=2", timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in steps if "loss" in m and "train_loss" not in m]
    assert [m["step"] for m in steps] == [1, 2] and all(math.isfinite(m["loss"]) for m in steps)
    # Two processes share the data: one step consumes 2 x 2 of the 8 records, half an epoch (one process: a quarter).
    assert steps[0]["epoch"] == pytest.approx(0.5)
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "trainer_state.json").exists()
    if strategy != "ddp":
        assert any(p.name.startswith("global_step") for p in checkpoint.iterdir()), "no DeepSpeed engine state"
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(run_dir / "model")
    assert sum(p.numel() for p in model.parameters()) > 0
