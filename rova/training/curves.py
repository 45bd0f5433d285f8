"""rewards.png: every reward component of the clean branch and the totals over steps, from metrics.jsonl.

Each curve is drawn twice in one colour: the raw per-step values faint, and over them the smoothed line (a
debiased exponential moving average, the smoothing wandb and TensorBoard apply; weight SMOOTHING). Per-step
rewards of a group of a few completions are noisy; the smoothed line is the trend to read."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from rova.utils.io import atomic_write_bytes

REWARDS_PNG = "rewards.png"
SMOOTHING = 0.6  # TensorBoard's default EMA weight


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average: s_t = m_t / (1 - weight^t) with m_t = weight * m_(t-1) + (1 - weight) * x_t,
    so the first point is the first value (no pull towards 0); weight 0 returns the values."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, average = [], 0.0
    for t, value in enumerate(values, start=1):
        average = weight * average + (1.0 - weight) * value
        out.append(average / (1.0 - weight ** t))
    return out


def read_metrics(path: Path) -> list[dict]:
    rows = []
    for line in Path(path).read_text().splitlines() if Path(path).exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line torn by a kill
            continue
    return rows


def reward_series(rows: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """name -> (steps, values) for the totals and every clean-branch component of the reward registry."""
    from rova.config.branches import CLEAN
    from rova.rewards.registry import components_for

    names = {"reward (trained rows)": "reward/mean", "reward (clean)": "reward/clean/mean",
             "reward (corrupted)": "reward/corrupted/mean"}
    names.update({c.name: f"rewards/{CLEAN}/{c.name}/mean" for c in components_for(CLEAN)})
    series = {}
    for label, key in names.items():
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if points:
            series[label] = ([s for s, _ in points], [v for _, v in points])
    return series


def plot_rewards(metrics_path: Path, out_path: Path) -> Path | None:
    """Write the reward curves (None when metrics.jsonl holds no reward yet, e.g. a run of SFT)."""
    series = reward_series(read_metrics(metrics_path))
    if not series:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for label, (steps, values) in series.items():
        style = "-" if label.startswith("reward") else "--"
        (raw,) = axes.plot(steps, values, style, alpha=0.3, linewidth=1, marker="o" if len(steps) < 30 else None,
                           markersize=2, label=f"_{label} (raw)")  # a leading "_" keeps it out of the legend
        axes.plot(steps, smooth(values), style, color=raw.get_color(), linewidth=1.8, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("mean reward per completion")
    axes.set_title(f"Rewards over training (faint: per step; line: EMA smoothing {SMOOTHING})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return atomic_write_bytes(out_path, buffer.getvalue())
