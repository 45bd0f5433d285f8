"""A finished run launched again (same run dir, run.resume) trains nothing: no step past max_steps.

transformers' loop checks max_steps only after a step, so a run resumed from its checkpoint at max_steps took
step max_steps + 1 (when max_steps does not end an epoch) and overwrote model/ (rova/training/loop_fixes.py).
"""

from __future__ import annotations

import json

import pytest
from safetensors.numpy import load_file

from tests.support.runs import launch, only_run_dir


def _weights(run_dir):
    return load_file(str(run_dir / "model" / "model.safetensors"))


@pytest.mark.parametrize(("stage", "distributed"), [
    ("sft", ()), ("grpo", ()),
    # DeepSpeed restores the weights from its own engine state: the same must hold through it (slow tier).
    pytest.param("grpo", ("distributed=zero2", "distributed.nproc_per_node=2"), marks=pytest.mark.slow),
], ids=["sft", "grpo", "grpo-zero2"])
def test_a_finished_run_relaunched_trains_nothing_and_keeps_its_model(cache_dir, tmp_path, stage, distributed):
    # 8 clips at 2 per step: 4 steps an epoch, so max_steps=2 stops mid-epoch (where the extra step was taken).
    overrides = (f"stage={stage}", "data.demo_num_clips=8", "stage.max_steps=2", "stage.save_steps=2", "logger=none",
                 "stage.per_device_train_batch_size=2", *(["stage.num_generations=2"] if stage == "grpo" else []),
                 *distributed)
    first = launch(tmp_path, cache_dir, *overrides)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    before = json.loads((run_dir / "summary.json").read_text())
    logged = (run_dir / "metrics.jsonl").read_text()
    weights = _weights(run_dir)
    assert before["global_step"] == 2 and before["train_loss"] is not None

    again = launch(tmp_path, cache_dir, *overrides, f"run.dir={run_dir}")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["global_step"] == 2 and after["resumed_from"].endswith("checkpoint-2")
    assert after["train_loss"] == before["train_loss"], "the finished run's loss, not a 0 from an empty launch"
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    # Issue 21, item 4: no "train_loss 0.0" / "train_samples_per_second 1706" line from the launch that trained nothing.
    assert (run_dir / "metrics.jsonl").read_text() == logged
    relaunched = _weights(run_dir)
    assert relaunched.keys() == weights.keys()
    changed = [name for name in weights if not (relaunched[name] == weights[name]).all()]
    assert not changed, f"model/ changed on a relaunch that should train nothing: {changed[:5]}"
    assert "nothing trained" in again.stdout and " in 0.0s" not in again.stdout
