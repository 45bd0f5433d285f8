"""stage=select: Temporal-R1's variance-aware data selection (see rova.select.runner).

Reads `model.path` and `data.train_file`; writes select_predictions.jsonl (per record, resumable), select.json
(the kept records, Video-R1 schema, loadable as data.train_file from any folder: what a recipe step's `data_from`
reads), select_report.json, select_report.md and select_hist.png. With distributed=ddp the records are sharded over
the processes and process 0 merges; select.shards SLURM array tasks share one run dir.
"""

from __future__ import annotations

from pathlib import Path


def run(cfg, run_dir: Path) -> None:
    from rova.select.runner import run_select
    from rova.stages.assets import ensure_demo_data
    from rova.stages.setup import run_sharded

    run_sharded(run_dir, prepare=lambda: ensure_demo_data(cfg.data),
                work=lambda rank, world, barrier, task: run_select(cfg, Path(run_dir), rank, world, barrier, task=task))


def outcome(run_dir: Path) -> str:
    """The recipe report's line: records kept and why the others were dropped (select_report.json)."""
    from rova.stages.outcome import read_json

    report = read_json(run_dir / "select_report.json") or {}
    return (f"kept {report.get('kept')} of {report.get('records')} records (dropped {report.get('too_easy')} too "
            f"easy, {report.get('too_hard')} too hard, {report.get('no_variance')} without variance; "
            f"{report.get('skipped')} unreadable)")
