"""stage=eval: evaluate a model directory on a benchmark, clean and under every corruption x severity.

Reads `model.path` (a run's model/, a checkpoint, a released Qwen2.5-VL) and `benchmark.file`; writes
predictions.jsonl (per item, resumable), results.json, report.md, heatmap.png and families.png.
With distributed=ddp the items are sharded over the processes and process 0 merges the results.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def run(cfg, run_dir: Path) -> None:
    from rova.eval.runner import run_eval
    from rova.eval.benchmark import ensure_benchmark_demo
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
        ensure_benchmark_demo(cfg.benchmark)
    barrier()
    # A SLURM array task of an eval.shards job knows its index from the environment its task set.
    task = int(os.environ.get("ROVA_EVAL_SHARD", "0"))
    run_eval(cfg, Path(run_dir), rank, world, barrier, task=task)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
