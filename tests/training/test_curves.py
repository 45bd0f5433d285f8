"""rewards.png: the series come from metrics.jsonl and the reward registry."""

from __future__ import annotations

import json

from PIL import Image

from rova.rewards.registry import components_for
from rova.training.curves import plot_rewards, reward_series


def test_series_follow_the_registry_and_skip_missing_or_nan(tmp_path):
    rows = [
        {"step": 1, "reward/mean": 0.5, "rewards/clean/accuracy/mean": 0.25, "rewards/clean/kl/mean": float("nan")},
        {"step": 2, "reward/mean": 1.0, "rewards/clean/accuracy/mean": 0.5, "loss": 0.1},
    ]
    series = reward_series(rows)
    assert series["reward (trained rows)"] == ([1, 2], [0.5, 1.0])
    assert series["accuracy"] == ([1, 2], [0.25, 0.5])
    assert "kl" not in series  # only NaN values
    assert set(series) <= {"reward (trained rows)", "reward (clean)", "reward (corrupted)",
                           *(c.name for c in components_for("clean"))}


def test_plot_writes_a_png_and_nothing_without_rewards(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "reward/mean": s / 10}) + "\n" for s in range(1, 6)) + '{"step": 6, "rew')
    out = plot_rewards(metrics, tmp_path / "rewards.png")
    with Image.open(out) as image:
        assert image.size[0] > 300 and image.size[1] > 200
    sft_metrics = tmp_path / "sft.jsonl"
    sft_metrics.write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    assert plot_rewards(sft_metrics, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
