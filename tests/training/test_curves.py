"""rewards.png: the series come from metrics.jsonl and the reward registry."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rova.rewards.registry import components_for
from rova.training.curves import plot_rewards, reward_series, smooth


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


def test_each_curve_has_its_raw_values_and_a_smoothed_line(tmp_path, monkeypatch):
    """Issue 21 (8): the raw per-step rewards faint, the smoothed line over them in the same colour."""
    from matplotlib.figure import Figure

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: drawn.append(self) or a[0].write(b"png"))
    noisy = [0.0, 1.0] * 10
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s + 1, "reward/mean": v}) + "\n" for s, v in enumerate(noisy)))
    plot_rewards(metrics, tmp_path / "rewards.png")
    lines = drawn[0].axes[0].get_lines()
    raw = next(line for line in lines if line.get_label() == "_reward (trained rows) (raw)")
    smoothed = next(line for line in lines if line.get_label() == "reward (trained rows)")
    assert list(raw.get_ydata()) == noisy and raw.get_color() == smoothed.get_color()
    assert list(smoothed.get_ydata()) == smooth(noisy) and max(smoothed.get_ydata()[5:]) < 0.8


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=50), st.floats(0, 0.99))
def test_smoothing_stays_within_the_values_and_keeps_a_constant(values, weight):
    out = smooth(values, weight)
    assert len(out) == len(values) and out[0] == pytest.approx(values[0])
    assert all(min(values) - 1e-9 <= v <= max(values) + 1e-9 for v in out)
    assert smooth([values[0]] * 5, weight) == pytest.approx([values[0]] * 5)
    assert smooth(values, 0.0) == pytest.approx(values)


def test_runs_compare_on_one_plot_and_a_run_without_the_metric_is_named(tmp_path, capsys):
    from rova.training.curves import COMPARE_METRIC, main

    runs = []
    for name, level in (("grpo", 0.5), ("dapo", 0.7)):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, COMPARE_METRIC: level + s / 100}) + "\n"
                                                   for s in range(1, 11)))
        runs.append(run)
    assert main([*map(str, runs), "--out", str(tmp_path / "runs.png")]) == 0
    with Image.open(tmp_path / "runs.png") as image:
        assert image.size[0] > 300
    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    assert main([str(runs[0]), str(sft), "--out", str(tmp_path / "bad.png")]) == 2
    assert f"{sft / 'metrics.jsonl'}: no step logged {COMPARE_METRIC!r}" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()
