"""stage=eval: evaluate a model directory on a benchmark, clean and under every corruption x severity.

Reads `model.path` (a run's model/, a checkpoint, a released Qwen2.5-VL) and `benchmark.file`; writes
predictions.jsonl (per item, resumable), results.json, report.md, heatmap.png and families.png.
With distributed=ddp the items are sharded over the processes and process 0 merges the results.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


def run(cfg, run_dir: Path) -> None:
    from rova.eval.runner import run_eval
    from rova.eval.benchmark import ensure_benchmark_demo
    from rova.stages.setup import run_sharded

    run_sharded(run_dir, prepare=lambda: ensure_benchmark_demo(cfg.benchmark),
                work=lambda rank, world, barrier, task: run_eval(cfg, Path(run_dir), rank, world, barrier, task=task))


def outcome(run_dir: Path) -> str:
    """The recipe report's line: clean accuracy, mPC and how often the outputs held an answer (results.json), in
    percent like the report's tables."""
    from rova.stages.outcome import read_json

    def pct(value) -> str:
        return f"{100 * value:.1f} %" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"

    results = read_json(run_dir / "results.json") or {}
    clean = results.get("clean") or {}
    mpc = (results.get("robustness") or {}).get("mpc")
    words = f"clean accuracy {pct(clean.get('accuracy'))} (lenient {pct(clean.get('accuracy_lenient'))})"
    words += f", mPC {pct(mpc)}" if mpc is not None else ""
    failures = clean.get("extraction_failure_rate")
    if isinstance(failures, (int, float)):
        words += f", no `<answer>` in {pct(failures)} of clean outputs"
        corrupted = (results.get("robustness") or {}).get("mean_extraction_failure_rate")
        words += f" and {pct(corrupted)} of corrupted ones" if isinstance(corrupted, (int, float)) else ""
    return words
