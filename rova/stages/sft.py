"""The SFT stage (stage=sft): video SFT on a Video-R1-COT file, loss on the assistant completion only.

Same launcher path as RL (distributed_setup's trainer kwargs for DDP / DeepSpeed), checkpoints in
run_dir/checkpoints resumed from the latest, and model/ + processor saved so `stage=grpo model.path=<run>/model`
starts from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import OmegaConf

from rova.config.schema import RootConfig
from rova.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def run(cfg: RootConfig, run_dir: Path) -> None:
    from rova.stages.rl import latest_checkpoint
    from rova.stages.setup import distributed_setup, setup_logging
    from rova.training.args import CHECKPOINTS
    from rova.training.sft import build_sft_trainer
    from rova.training.tracking import init_wandb

    dist = distributed_setup(cfg)
    setup_logging(run_dir, dist.is_main)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    wandb_run = init_wandb(cfg.logger, run_dir, resolved, dist.is_main, cfg.run.tag)
    resume = latest_checkpoint(run_dir / CHECKPOINTS) if cfg.run.resume else None
    if resume:
        log.info("resuming from %s", resume)
    trainer, processor, data = build_sft_trainer(cfg, run_dir, dist)
    report = data.report()
    log.info("sft data: %d of %d records kept (%d without process, %d too long, %d unreadable media)",
             report["kept"], report["records"], report["no_process"], report["too_long"], report["skipped_media"])
    result = trainer.train(resume_from_checkpoint=resume)
    preempted = any(getattr(cb, "preempted", False) for cb in trainer.callback_handler.callbacks)
    if preempted:
        log.warning("preempted at step %d: checkpoint saved, stopping for requeue", trainer.state.global_step)
        if wandb_run is not None:
            wandb_run.finish()
        dist.finish()
        return

    model_dir = run_dir / "model"
    trainer.save_model(str(model_dir))
    if dist.is_main:
        processor.save_pretrained(str(model_dir))
        summary = {
            "stage": cfg.stage.name,
            "global_step": trainer.state.global_step,
            "train_loss": result.training_loss,
            "resumed_from": resume,
            "model_dir": str(model_dir),
            "metrics": str(run_dir / "metrics.jsonl"),
            "data": report,
            "wandb": str(Path(wandb_run.dir).parent) if wandb_run is not None else None,
        }
        atomic_write_json(run_dir / "summary.json", summary)
        print(f"[rova] done: {cfg.stage.name}, {trainer.state.global_step} steps, "
              f"{report['kept']}/{report['records']} records")
        for key in ("model_dir", "metrics", "wandb"):
            if summary[key]:
                print(f"[rova]   {key:<9} {summary[key]}")
    if wandb_run is not None:
        wandb_run.finish()
    dist.finish()
