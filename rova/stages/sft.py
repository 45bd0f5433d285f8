"""The SFT stage (stage=sft): video SFT on a Video-R1-COT file, loss on the assistant completion only.

Same launcher path as RL (distributed_setup's trainer kwargs for DDP / DeepSpeed), checkpoints in
run_dir/checkpoints resumed from the latest, and model/ + processor saved so `stage=grpo model.path=<run>/model`
starts from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rova.config.schema import RootConfig

log = logging.getLogger(__name__)


def run(cfg: RootConfig, run_dir: Path) -> None:
    from rova.stages.finish import finish_training_run
    from rova.stages.setup import start_training_run
    from rova.stages.builders import build_sft_trainer

    dist, wandb_run, resume = start_training_run(cfg, run_dir)
    trainer, processor, data = build_sft_trainer(cfg, run_dir, dist)
    report = data.report()
    log.info("sft data: %d of %d records kept (%d bad, %d without process, %d too long, %d unreadable media)",
             report["kept"], report["records"], len(report["bad_records"]), report["no_process"], report["too_long"],
             report["skipped_media"])
    result = trainer.train(resume_from_checkpoint=resume)
    finish_training_run(cfg, run_dir, trainer, processor, result, dist=dist, wandb_run=wandb_run, resume=resume,
                        done_suffix=f", {report['kept']}/{report['records']} records", entries={"data": report})


def outcome(run_dir: Path) -> str:
    """The recipe report's line: steps, train loss and the records trained on (summary.json)."""
    from rova.stages.outcome import read_json, training_outcome

    words = training_outcome(run_dir)
    summary = read_json(run_dir / "summary.json") or {}
    if isinstance(summary.get("data"), dict):
        words += f", {summary['data'].get('kept')} records"
    return words
