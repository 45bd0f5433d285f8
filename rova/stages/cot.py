"""stage=cot: a teacher (model.*) writes CoT rationales for data.train_file (see rova.annotate.runner).

Reads `model.path` and `data.train_file`; writes cot_predictions.jsonl (per record, resumable), cot.json
(Video-R1-COT schema, loadable as data.train_file from any folder) and cot_report.json. With distributed=ddp
the records are sharded over the processes and process 0 merges; cot.shards SLURM array tasks share one run dir.
"""

from __future__ import annotations

from pathlib import Path


def run(cfg, run_dir: Path) -> None:
    from rova.annotate.runner import run_cot
    from rova.stages.assets import ensure_demo_data
    from rova.stages.setup import run_sharded

    run_sharded(run_dir, prepare=lambda: ensure_demo_data(cfg.data),
                work=lambda rank, world, barrier, task: run_cot(cfg, Path(run_dir), rank, world, barrier, task=task))


def outcome(run_dir: Path) -> str:
    """The recipe report's line: records kept (cot_report.json)."""
    from rova.stages.outcome import read_json

    report = read_json(run_dir / "cot_report.json") or {}
    return f"kept {report.get('kept')} of {report.get('records')} records ({report.get('skipped')} unreadable)"
