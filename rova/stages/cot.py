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
    from rova.stages.setup import array_task, launcher_rank_world, process_group, setup_logging

    rank, world = launcher_rank_world()
    setup_logging(run_dir, rank == 0)
    with process_group(world) as barrier:
        if rank == 0:
            ensure_demo_data(cfg.data)
        barrier()
        run_cot(cfg, Path(run_dir), rank, world, barrier, task=array_task())
