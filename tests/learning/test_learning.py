"""Learning regression tests: training on the shapes task learns from the video, and its controls do not.

Four runs of the small model (model=small) on one question kind of the shapes task (flash_count: "how many
times does the light flash?", answers 1-3, chance 1/3), each checked against its control:

1. a short SFT run reaches well above chance on the val split;
2. the same run with the video blanked (data.blank_video: every frame flat grey, in training and eval) stays at
   chance: what test 1 measures is learning from the video, not from the text;
3. GRPO from a partly trained SFT model raises the true accuracy of its rollouts over its steps;
4. the same GRPO run with rewards shuffled across completions (reward.shuffle) does not.

A planted defect fails each: frames dropped before the model fails 1 and 3, advantages zeroed fails 3 (the
closing note of the session that wrote these shows the runs). No timed asserts; margins are stated here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.runs import launch

pytestmark = pytest.mark.slow

KIND = "flash_count"
CHANCE = 1 / 3                 # answers 1, 2, 3 in equal shares
SFT_MIN_ACCURACY = 0.75        # test 1: val accuracy after SFT_STEPS
BLANK_MAX_ACCURACY = 0.5       # test 2: the blanked control (a constant answer scores 1/3)
RL_MIN_GAIN = 0.10             # test 3: last RL_WINDOW steps' rollout accuracy minus the first RL_WINDOW steps'
SHUFFLED_MAX_GAIN = 0.05       # test 4
RL_WINDOW = 4

SFT_STEPS = 80
PARTIAL_SFT_STEPS = 40         # the RL runs start from a model that is right part of the time
RL_STEPS = 24

DATA = ["model=small", "data=shapes", "data.demo_num_clips=600", f"+data.keep={{shapes.kind: [{KIND}]}}",
        "logger=none"]
SFT = ["stage=sft", "stage.learning_rate=1e-3", "stage.warmup_steps=10", "stage.per_device_train_batch_size=16",
       "stage.save_steps=1000", "stage.logging_steps=10"]
EVAL = ["stage=eval", "benchmark=shapes", "benchmark.demo_split=val", "benchmark.demo_num_clips=60",
        "eval.max_new_tokens=40", "eval.batch_size=30"]
GRPO = ["stage=grpo", f"stage.max_steps={RL_STEPS}", "stage.learning_rate=1e-4", "stage.num_generations=8",
        "stage.per_device_train_batch_size=32", "stage.max_completion_length=40", "stage.save_steps=1000",
        "model.build_tiny=false"]


def _run(tmp_path: Path, cache_dir: Path, name: str, *overrides: str) -> Path:
    run_dir = tmp_path / name
    result = launch(tmp_path, cache_dir, *DATA, *overrides, f"run.dir={run_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir


def _val_accuracy(tmp_path: Path, cache_dir: Path, model_dir: Path, name: str, *overrides: str) -> float:
    run_dir = _run(tmp_path, cache_dir, name, *EVAL, f"model.path={model_dir}", "model.build_tiny=false", *overrides)
    clean = json.loads((run_dir / "results.json").read_text())["clean"]
    kinds = {json.loads(line)["shapes.kind"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()}
    assert kinds == {KIND} and clean["n"] == 10  # the val split's flash_count items (every 6th clip of 60)
    return clean["accuracy"]


def _rollout_gain(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["accuracy/clean"] for r in rows if "accuracy/clean" in r]
    assert len(accuracy) == RL_STEPS
    return float(np.mean(accuracy[-RL_WINDOW:]) - np.mean(accuracy[:RL_WINDOW]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir):
    return tmp_path_factory.mktemp("learning"), cache_dir


def test_sft_learns_the_task_from_the_video(runs):
    tmp, cache = runs
    sft = _run(tmp, cache, "sft", *SFT, f"stage.max_steps={SFT_STEPS}")
    accuracy = _val_accuracy(tmp, cache, sft / "model", "eval_sft")
    assert accuracy >= SFT_MIN_ACCURACY, f"val accuracy {accuracy:.2f} after {SFT_STEPS} SFT steps (chance {CHANCE:.2f})"


def test_sft_on_blanked_video_stays_at_chance(runs):
    tmp, cache = runs
    sft = _run(tmp, cache, "sft_blank", *SFT, f"stage.max_steps={SFT_STEPS}", "data.blank_video=true")
    accuracy = _val_accuracy(tmp, cache, sft / "model", "eval_blank", "data.blank_video=true")
    assert accuracy <= BLANK_MAX_ACCURACY, f"val accuracy {accuracy:.2f} with the video blanked (chance {CHANCE:.2f})"


@pytest.fixture(scope="module")
def partial_sft(runs) -> Path:
    tmp, cache = runs
    return _run(tmp, cache, "sft_partial", *SFT, f"stage.max_steps={PARTIAL_SFT_STEPS}") / "model"


def test_rl_raises_the_accuracy_of_its_rollouts(runs, partial_sft):
    tmp, cache = runs
    gain = _rollout_gain(_run(tmp, cache, "grpo", *GRPO, f"model.path={partial_sft}"))
    assert gain >= RL_MIN_GAIN, f"rollout accuracy rose by {gain:+.2f} over {RL_STEPS} GRPO steps"


def test_rl_with_shuffled_rewards_does_not(runs, partial_sft):
    tmp, cache = runs
    gain = _rollout_gain(_run(tmp, cache, "grpo_shuffled", *GRPO, f"model.path={partial_sft}", "reward.shuffle=true"))
    assert gain <= SHUFFLED_MAX_GAIN, f"rollout accuracy rose by {gain:+.2f} with shuffled rewards"
