"""Each paper's experiment preset (issue 20) composes with its values and trains 2 steps on the tiny model.

The 7B presets name GPU settings (Qwen2.5-VL-7B, vLLM, ZeRO-3 on 8 GPUs); the tiny run keeps everything else the
preset sets (stage, objective, reward, data options) and swaps only the model, the rollout engine, the
distribution and the sizes. temporal_r1_3b is a recipe (select -> grpo): its plan is checked, then each step runs
on the tiny model with the step's own overrides as the recipe launches it (the tiny random model answers nothing
right, so a real select keeps no record: the grpo step trains on the demo data instead of select.json).
"""

from __future__ import annotations

import json
import math

import pytest

from rova.config.compose import load_typed
from tests.support.runs import launch, only_run_dir

DATA = ["data.train_file=/data/Video-R1-260k.json"]
TINY = ("model=tiny", "rollout=hf", "distributed=none", "data=demo", "data.demo_num_clips=8", "logger=none",
        "stage.max_steps=2", "stage.num_generations=2", "stage.per_device_train_batch_size=2",
        "stage.max_completion_length=12", "stage.save_steps=100", "model.freeze_vision=false")

# preset -> (what the composed preset must hold, extra tiny overrides)
PRESETS = {
    "videochat_r1_7b": ({"stage.name": "grpo", "reward.name": "videochat_r1", "reward.format_rule": "per_task",
                         "objective.beta": 0.04, "stage.num_generations": 8, "stage.max_completion_length": 1024,
                         "data.task_mixing": "per_batch"}, ()),
    "tw_grpo_7b": ({"objective.name": "tw_grpo", "objective.token_weight_alpha": 1.7, "reward.multi_answer": "soft",
                    "data.invert_questions.p": 0.5, "stage.max_grad_norm": 20.0, "stage.max_completion_length": 4096,
                    "model.freeze_vision": True}, ()),
    "deepvideo_r1_7b": ({"objective.name": "reg_grpo", "objective.advantage_regression": True, "objective.beta": 1.0,
                         "stage.steps_per_generation": 1, "memory.augment_easy": True, "memory.augment_hard": True},
                        ()),
    "dapo_7b": ({"objective.name": "dapo", "objective.dynamic_sampling": True, "objective.epsilon_high": 0.28,
                 "objective.beta": 0.0, "stage.num_generations": 16, "reward.w_overlong": 1.0,
                 "reward.overlong_max_length": 1024, "reward.overlong_buffer": 204},
                ("objective.max_sampling_rounds=2",)),
}


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _trained_two_steps(run_dir) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [row for row in rows if "loss" in row and "train_runtime" not in row]
    assert len(steps) == 2 and all(math.isfinite(row["loss"]) for row in steps), steps
    return steps


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_method_preset_holds_its_values_and_trains_two_tiny_steps(preset, tmp_path, cache_dir):
    expected, extra = PRESETS[preset]
    cfg = load_typed([f"experiment={preset}", *DATA])
    assert {key: _get(cfg, key) for key in expected} == expected
    proc = launch(tmp_path, cache_dir, f"experiment={preset}", *TINY, *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = _trained_two_steps(run_dir)
    resolved = (run_dir / "resolved.yaml").read_text()
    assert f"name: {cfg.objective.name}" in resolved and f"name: {cfg.reward.name}" in resolved
    if cfg.reward.w_overlong:  # DAPO's soft overlong punishment followed the tiny budget (12 tokens, a fifth = 2)
        assert "overlong_max_length: 12" in resolved and "overlong_buffer: 2" in resolved
        assert all(-1.0 <= row["rewards/clean/overlong/mean"] <= 0.0 for row in steps), steps


def test_the_temporal_r1_recipe_plans_select_then_grpo_and_each_step_runs_tiny(tmp_path, cache_dir):
    cfg = load_typed(["experiment=temporal_r1_3b", *DATA])
    steps = cfg.recipe.steps
    assert list(steps) == ["select", "grpo"] and steps["grpo"].data_from == "select"
    assert cfg.reward.name == "temporal_r1" and cfg.select.num_samples == 8 and cfg.select.min_std == 0.1
    grpo = [o for o in steps["grpo"].overrides if not o.startswith("distributed")]
    assert {"objective.beta=0.01", "objective.entropy_coef=0.001", "stage.max_completion_length=2048"} <= set(grpo)

    # A recipe sets each step's stage, so the steps run as the recipe would launch them: the preset's groups and
    # step overrides, the tiny sizes.
    groups = (f"reward={cfg.reward.name}", f"select.min_std={cfg.select.min_std}",
              f"select.temperature={cfg.select.temperature}")
    proc = launch(tmp_path / "select", cache_dir, "stage=select", *groups, *TINY[:6], "select.num_samples=2",
                  "select.max_new_tokens=8")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((only_run_dir(tmp_path / "select" / "outputs") / "select_report.json").read_text())
    assert report["records"] == 8, report

    sizes = ("stage.max_steps=2", "stage.num_generations=2", "stage.per_device_train_batch_size=2",
             "stage.max_completion_length=12")
    proc = launch(tmp_path / "grpo", cache_dir, "stage=grpo", *groups[:1], *grpo, *TINY, *sizes)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = _trained_two_steps(only_run_dir(tmp_path / "grpo" / "outputs"))
    assert all(row.get("entropy_coef") == 0.001 for row in steps), steps[0]
