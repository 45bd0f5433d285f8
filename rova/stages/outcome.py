"""Reading a finished run's files for its one-line outcome (each stage module's `outcome(run_dir)`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rova.utils.io import read_json  # noqa: F401  (the stages' outcome() read their files with it)


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"
    return "n/a" if value is None else str(value)


def quarter_means(run_dir: Path, key: str = "reward/mean") -> tuple[float | None, float | None]:
    """Mean of `key` over the first and the last quarter of the logged steps (None without any)."""
    from rova.training.curves import read_metrics

    values = [r[key] for r in read_metrics(Path(run_dir) / "metrics.jsonl")
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if not values:
        return None, None
    quarter = max(1, len(values) // 4)
    return sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter


def training_outcome(run_dir: Path) -> str:
    """What every training stage reports: its steps and final train loss (summary.json)."""
    summary = read_json(Path(run_dir) / "summary.json") or {}
    return f"{summary.get('global_step')} steps, train loss {fmt(summary.get('train_loss'))}"
