"""Slow tier: a real 2-process T-GRPO run with distributed.sequence_parallel=2 under ZeRO-2 against one process.

With the sequence split over a group of 2 (rova.training.sequence_parallel), the two processes form ONE
data-parallel rank: they must train exactly as one process with the same batch does. Every logged number of both
steps (rewards of every branch, the KL-consistency reward, entropy, loss, grad norm, token counts) must agree; the
second step's rollout comes from the updated weights, so it checks the first update too.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.support.runs import launch, only_run_dir

pytestmark = pytest.mark.slow

COMMON = ("stage=tgrpo", "data.demo_num_clips=8", "logger=none", "stage.max_steps=2", "stage.save_steps=100",
          "stage.num_generations=2", "stage.per_device_train_batch_size=4", "stage.max_completion_length=12")
TIMING = ("step_time", "perf/", "train_runtime", "train_samples_per_second", "train_steps_per_second")


def _steps(root):
    path = only_run_dir(root) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tgrpo_with_sequence_parallel_2_under_zero2_equals_one_process(tmp_path, cache_dir):
    for name in ("sp", "one"):
        (tmp_path / name).mkdir()
    sharded = launch(tmp_path / "sp", cache_dir, *COMMON, "distributed=zero2", "distributed.nproc_per_node=2",
                     "distributed.sequence_parallel=2", timeout=900)
    assert sharded.returncode == 0, sharded.stdout[-4000:] + sharded.stderr[-4000:]
    assert "sequence parallel: 1 group(s) of 2 ranks" in sharded.stdout
    single = launch(tmp_path / "one", cache_dir, *COMMON, timeout=900)
    assert single.returncode == 0, single.stdout[-4000:] + single.stderr[-4000:]
    a, b = _steps(tmp_path / "one" / "outputs"), _steps(tmp_path / "sp" / "outputs")
    assert len(a) == len(b) == 3  # two steps and the run summary
    assert any(m.get("grad_norm", 0) > 0 for m in a), "no step trained: the comparison would not see the update"
    compared = 0
    for one, sp in zip(a, b):
        assert one.keys() == sp.keys()
        for key, value in one.items():
            if key.startswith(TIMING) or not isinstance(value, (int, float)):
                continue
            other = sp[key]
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(other), key
                continue
            assert other == pytest.approx(value, rel=1e-5, abs=1e-7), (key, value, other)
            compared += 1
    assert compared > 60


def test_sft_with_sequence_parallel_2_under_ddp_equals_one_process(tmp_path, cache_dir):
    """stage=sft: the group's 2 ranks take the same rows (the seeded sampler of a 1-process run) and split each
    row's sequence; losses and gradient norms of both steps equal one process's, and an epoch is counted once."""
    common = ("stage=sft", "data.demo_num_clips=8", "logger=none", "stage.max_steps=2", "stage.save_steps=100",
              "stage.per_device_train_batch_size=2")
    for name in ("sp", "one"):
        (tmp_path / name).mkdir()
    sharded = launch(tmp_path / "sp", cache_dir, *common, "distributed=ddp", "distributed.nproc_per_node=2",
                     "distributed.sequence_parallel=2", timeout=900)
    assert sharded.returncode == 0, sharded.stdout[-4000:] + sharded.stderr[-4000:]
    assert "sequence parallel: 1 group(s) of 2 ranks" in sharded.stdout
    single = launch(tmp_path / "one", cache_dir, *common, timeout=900)
    assert single.returncode == 0, single.stdout[-4000:] + single.stderr[-4000:]
    a, b = _steps(tmp_path / "one" / "outputs"), _steps(tmp_path / "sp" / "outputs")
    a, b = [m for m in a if "loss" in m], [m for m in b if "loss" in m]
    assert [m["step"] for m in a] == [m["step"] for m in b] == [1, 2]
    for one, sp in zip(a, b):
        assert sp["epoch"] == one["epoch"]
        assert sp["loss"] == pytest.approx(one["loss"], rel=1e-5)
        assert sp["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5) and one["grad_norm"] > 0
