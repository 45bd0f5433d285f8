"""stage=eval: evaluate a model directory on a benchmark, clean and under every corruption x severity.

Reads `model.path` (a run's model/, a checkpoint, a released Qwen2.5-VL) and `benchmark.file`; writes
predictions.jsonl (per item, resumable), results.json, report.md, heatmap.png and families.png.
With distributed=ddp the items are sharded over the processes and process 0 merges the results.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(cfg, run_dir: Path) -> None:
    from rova.eval.runner import run_eval
    from rova.eval.benchmark import ensure_benchmark_demo
    from rova.stages.setup import run_sharded

    run_sharded(run_dir, prepare=lambda: ensure_benchmark_demo(cfg.benchmark),
                work=lambda rank, world, barrier, task: run_eval(cfg, Path(run_dir), rank, world, barrier, task=task))


def outcome(run_dir: Path) -> str:
    """The recipe report's line: clean accuracy, mPC and how often the outputs held an answer (results.json)."""
    from rova.stages.outcome import fmt, read_json

    results = read_json(run_dir / "results.json") or {}
    clean = results.get("clean") or {}
    mpc = (results.get("robustness") or {}).get("mpc")
    words = f"clean accuracy {fmt(clean.get('accuracy'))} (lenient {fmt(clean.get('accuracy_lenient'))})"
    words += f", mPC {fmt(mpc)}" if mpc is not None else ""
    failures = clean.get("extraction_failure_rate")
    if isinstance(failures, (int, float)):
        words += f", `<answer>` in {100 * (1 - failures):.0f}% of clean outputs"
    return words
