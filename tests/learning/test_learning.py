"""Learning regression tests: training on the shapes task learns from the video, and its controls do not.

The small random-init Qwen2.5-VL (model=small) on one question kind of the shapes task, moving_color ("what colour
is the object that moves?", four options in a fixed order, chance 1/4: the clip holds two objects of different
colours and only the motion tells which one is meant). Four runs, each with the control that makes it mean something:

1. SFT on the ground-truth rationales reaches well above chance on the held-out val split;
2. the same SFT with the video blanked (data.blank_video: every frame flat grey, in training and in eval) stays
   at chance: what test 1 measures is learning from the video, not from the wording of the question;
3. GRPO from the SFT model raises the true accuracy of its rollouts over its steps;
4. the same GRPO run with the rewards shuffled across completions (reward.shuffle) does not: the rise in 3 comes
   from the reward's signal, not from the updates as such.

How long SFT takes to learn this varies from run to run: the val accuracy of three 800-step runs (seeds 0, 1 and
0 on 4x the clips), every 100 steps, was 0.25 / 0.33 / 0.43 / 0.68 / 0.70 / 0.73 / 0.78 / 0.95, 0.25 / 0.50 /
0.88 / 0.98 / 0.83 / 0.98 / 0.98 / 0.98 and 0.25 / 0.43 / 0.45 / 0.70: the model "finds" the moving object
somewhere between 200 and 400 steps. At 350 steps and a 0.6 bar the test passed in two sessions and failed
(0.325) in a third; it now trains 500 steps against a 0.55 bar (lowest measured at 400-500 steps: 0.675).

Tests 3 and 4 carry the `rl_learning` mark and CI leaves them out (`-m "slow and not rl_learning"`): they take
about 10 minutes together. GRPO starts from the 500-step SFT model. Its rollouts (temperature 1) are right
far less often than its greedy answers (about 0.45 vs 0.7-0.9: the colour token stays close to uniform), and
rollout accuracy moves slowly: with 8 prompts per step no learning rate from 5e-5 to 1e-3 raised it over 60-80
steps (the same flat curve with 8 fixed prompts: an overfitting check), and 1e-3 collapsed. What learns is
more prompts per step: 32 prompts x G=4, lr 3e-4 (measured in the README, "Learning regression tests").

Each fails on a planted defect (frames zeroed before the model: 1; advantages zeroed: 3; blanking made a no-op:
2; shuffling made a no-op: 4); the closing notes of the sessions that wrote them show the runs. Every run is
seeded, but the same settings started another way (launch.py vs this process) differ in the last float bits
and so in their samples; test 3 compares means over 20 steps of 128 rollouts each. No timed asserts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.runs import launch

pytestmark = pytest.mark.slow

KIND = "moving_color"
CHANCE = 0.25
SFT_MIN_ACCURACY = 0.55    # test 1: val accuracy after SFT_STEPS (measured 0.70 and 0.83 at 500 steps)
BLANK_MAX_ACCURACY = 0.4   # test 2: the blanked control (any constant answer scores 0.25)
RL_MIN_GAP_CLOSED = 0.10   # test 3: share of the first RL_WINDOW steps' error (1 - accuracy) gone in the last
                           # RL_WINDOW steps (measured 0.14, 0.16, 0.55 from SFT models at 0.43, 0.65, 0.95)
SHUFFLED_MAX_GAP_CLOSED = 0.0  # test 4 (measured -0.98: the shuffled run unlearns, its accuracy falls to 0)
RL_WINDOW = 20

SFT_STEPS = 500
RL_STEPS = 60
VAL_CLIPS = 240            # 40 moving_color questions (every sixth clip)

DATA = ["model=small", "data=shapes", "data.demo_num_clips=1200", f"+data.keep={{shapes.kind: [{KIND}]}}",
        "logger=none"]
SFT = ["stage=sft", f"stage.max_steps={SFT_STEPS}", "stage.learning_rate=1e-3", "stage.warmup_steps=10",
       "stage.per_device_train_batch_size=16", "stage.save_steps=1000", "stage.logging_steps=10"]
EVAL = ["stage=eval", "benchmark=shapes", "benchmark.demo_split=val", f"benchmark.demo_num_clips={VAL_CLIPS}",
        "eval.max_new_tokens=40", "eval.batch_size=40", "model.build_tiny=false"]
GRPO = ["stage=grpo", f"stage.max_steps={RL_STEPS}", "stage.learning_rate=3e-4", "stage.warmup_steps=10",
        "stage.num_generations=4", "stage.per_device_train_batch_size=128", "stage.max_completion_length=40",
        "stage.save_steps=1000", "model.build_tiny=false"]


def _run(root: Path, cache_dir: Path, name: str, *overrides: str) -> Path:
    run_dir = root / name
    result = launch(root, cache_dir, *DATA, *overrides, f"run.dir={run_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir


def _val_accuracy(root: Path, cache_dir: Path, model_dir: Path, name: str, *overrides: str) -> float:
    run_dir = _run(root, cache_dir, name, *EVAL, f"model.path={model_dir}", *overrides)
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    scores = [p["score"] for p in predictions if p["shapes.kind"] == KIND]
    assert len(predictions) == VAL_CLIPS and len(scores) == VAL_CLIPS // 6
    return float(np.mean(scores))


def _rollout_accuracy(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["accuracy/clean"] for r in rows if "accuracy/clean" in r]
    assert len(accuracy) == RL_STEPS
    return accuracy


def _gap_closed(accuracy: list[float]) -> float:
    """The share of the first window's error that is gone in the last window: (last - first) / (1 - first).

    A plain difference cannot serve every start: an SFT model right 95 % of the time has 5 points left to gain,
    one right 45 % of the time has 55 (where SFT ends varies from run to run; module docstring)."""
    first, last = float(np.mean(accuracy[:RL_WINDOW])), float(np.mean(accuracy[-RL_WINDOW:]))
    return (last - first) / max(1.0 - first, 1e-9)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("learning")


@pytest.fixture(scope="module")
def sft(root, cache_dir) -> Path:
    return _run(root, cache_dir, "sft", *SFT)


def test_sft_learns_the_task_from_the_video(root, cache_dir, sft):
    accuracy = _val_accuracy(root, cache_dir, sft / "model", "eval_sft")
    print(f"SFT: val accuracy {accuracy:.3f}")  # shown by `pytest -rP`
    assert accuracy >= SFT_MIN_ACCURACY, f"val accuracy {accuracy:.3f} after {SFT_STEPS} SFT steps (chance {CHANCE})"


def test_sft_on_blanked_video_stays_at_chance(root, cache_dir):
    blank = _run(root, cache_dir, "sft_blank", *SFT, "data.blank_video=true")
    accuracy = _val_accuracy(root, cache_dir, blank / "model", "eval_blank", "data.blank_video=true")
    print(f"blanked SFT: val accuracy {accuracy:.3f}")
    assert accuracy <= BLANK_MAX_ACCURACY, f"val accuracy {accuracy:.3f} with the video blanked (chance {CHANCE})"


@pytest.mark.rl_learning
def test_rl_raises_the_accuracy_of_its_rollouts(root, cache_dir, sft):
    start = sft / "model"
    accuracy = _rollout_accuracy(_run(root, cache_dir, "grpo", *GRPO, f"model.path={start}"))
    closed = _gap_closed(accuracy)
    print(f"GRPO: share of the rollout error gone {closed:+.3f}: {np.round(accuracy, 2).tolist()}")
    assert closed >= RL_MIN_GAP_CLOSED, (
        f"rollout accuracy {np.round(accuracy, 2).tolist()}: {closed:+.3f} of its error gone over {RL_STEPS} steps")


@pytest.mark.rl_learning
def test_rl_with_shuffled_rewards_does_not(root, cache_dir, sft):
    start = sft / "model"
    accuracy = _rollout_accuracy(_run(root, cache_dir, "grpo_shuffled", *GRPO, f"model.path={start}",
                                      "reward.shuffle=true"))
    closed = _gap_closed(accuracy)
    print(f"GRPO, shuffled rewards: share of the rollout error gone {closed:+.3f}: {np.round(accuracy, 2).tolist()}")
    assert closed <= SHUFFLED_MAX_GAP_CLOSED, f"shuffled rewards: {closed:+.3f} of the rollout error gone"
