"""stage=cot: a teacher (model.*) writes CoT rationales for data.train_file (see rova.annotate.runner).

Reads `model.path` and `data.train_file`; writes cot_predictions.jsonl (per record, resumable), cot.json
(Video-R1-COT schema, loadable as data.train_file from any folder) and cot_report.json. With distributed=ddp
the records are sharded over the processes and process 0 merges; cot.shards SLURM array tasks share one run dir.
"""

from __future__ import annotations

import os
from pathlib import Path


def run(cfg, run_dir: Path) -> None:
    from rova.annotate.runner import run_cot
    from rova.stages.assets import ensure_demo_data
    from rova.stages.setup import setup_logging

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    setup_logging(run_dir, rank == 0)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="gloo")
        barrier = dist.barrier
    else:
        barrier = lambda: None  # noqa: E731
    if rank == 0:
        ensure_demo_data(cfg.data)
    barrier()
    # A SLURM array task of a cot.shards job knows its index from the environment its task set (as eval's).
    task = int(os.environ.get("ROVA_EVAL_SHARD", "0"))
    run_cot(cfg, Path(run_dir), rank, world, barrier, task=task)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
