"""rewards.png: every reward component of the clean branch and the totals over steps, from metrics.jsonl.

Each curve is drawn twice in one colour: the raw per-step values faint, and over them the smoothed line (a
debiased exponential moving average, the smoothing wandb and TensorBoard apply; weight SMOOTHING). Per-step
rewards of a group of a few completions are noisy; the smoothed line is the trend to read.

`python -m rova.training.curves RUN_DIR... --out runs.png` draws one metric of several runs (a sweep's jobs) on
one plot the same way (default: the clean rollouts' accuracy)."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

from rova.utils.io import atomic_write_bytes

REWARDS_PNG = "rewards.png"
SMOOTHING = 0.6  # TensorBoard's default EMA weight
COMPARE_METRIC = "rewards/clean/accuracy/mean"  # what `compare_runs` plots by default: the clean rollouts' accuracy


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
    styles = {label: "-" if label.startswith("reward") else "--" for label in series}
    return _plot(series, styles, out_path, ylabel="mean reward per completion", title="Rewards over training")


def _plot(series: dict[str, tuple[list[int], list[float]]], styles: dict[str, str], out_path: Path, *, ylabel: str,
          title: str) -> Path:
    """Each series faint per step and smoothed over it in the same colour; the PNG written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for label, (steps, values) in series.items():
        style = styles.get(label, "-")
        (raw,) = axes.plot(steps, values, style, alpha=0.3, linewidth=1, marker="o" if len(steps) < 30 else None,
                           markersize=2, label=f"_{label} (raw)")  # a leading "_" keeps it out of the legend
        axes.plot(steps, smooth(values), style, color=raw.get_color(), linewidth=1.8, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(f"{title} (faint: per step; line: EMA smoothing {SMOOTHING})", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return atomic_write_bytes(out_path, buffer.getvalue())


def metric_series(rows: list[dict], metric: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metrics.jsonl key over the training steps that logged a finite value."""
    points = [(r["step"], r[metric]) for r in rows
              if "step" in r and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    return [s for s, _ in points], [v for _, v in points]


def compare_runs(run_dirs: list[Path], names: list[str], out_path: Path, metric: str = COMPARE_METRIC) -> Path:
    """One metric of several runs (a sweep's jobs: one objective each, say) on one plot, each smoothed over its
    per-step values; a run without the metric is an error naming it, never a silently missing line."""
    if len(names) != len(run_dirs) or len(set(names)) != len(names):
        raise ValueError(f"need one unique name per run: {len(run_dirs)} runs, names {names}")
    series = {}
    for name, run_dir in zip(names, run_dirs):
        steps, values = metric_series(read_metrics(Path(run_dir) / "metrics.jsonl"), metric)
        if not steps:
            raise ValueError(f"{Path(run_dir) / 'metrics.jsonl'}: no step logged {metric!r}")
        series[name] = (steps, values)
    return _plot(series, {}, out_path, ylabel=metric, title=f"{metric} per run")


def main(argv: list[str] | None = None) -> int:
    """python -m rova.training.curves RUN_DIR... [--names a b ...] [--metric KEY] --out runs.png"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rova.training.curves", description=compare_runs.__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run dirs holding metrics.jsonl")
    parser.add_argument("--names", nargs="+", help="one label per run (default: the run dirs' names)")
    parser.add_argument("--metric", default=COMPARE_METRIC, help=f"metrics.jsonl key (default {COMPARE_METRIC})")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    try:
        path = compare_runs(args.runs, args.names or [run.name for run in args.runs], args.out, args.metric)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
