"""How a training stage (sft; grpo / tgrpo / memory) ends its run, the same way for every stage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from rova.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def finish_training_run(cfg, run_dir: Path, trainer, processor, result, *, dist, wandb_run, resume: str | None,
                        done_suffix: str = "", entries: dict[str, Any] | None = None, shown: Sequence[str] = (),
                        late_entries: Callable[[], dict[str, Any]] | None = None) -> None:
    """Stop for requeue when preempted; otherwise save the model, write summary.json and say where things are.

    Preempted (a callback set `preempted`; its checkpoint is saved): log it, close wandb and the process group,
    and return. Otherwise every process saves the model to run_dir/model (ZeRO-3 gathers it), and the main
    process saves the processor beside it and writes summary.json: stage, global_step, train_loss,
    resumed_from, model_dir (with model.lora: the adapter; with model.lora.save_merged also merged_model_dir,
    base + adapter merged in model_dir/merged), metrics, the stage's `entries`, wandb, then what
    `late_entries()` returns (computed after the model is saved, e.g. a plot of the metrics). It prints
    `[rova] done: <stage>, <steps> steps<done_suffix>`, then one line for each of model_dir, metrics, the
    `shown` entries, wandb and the late entries that is set, in that order (the late ones last).
    """
    preempted = any(getattr(cb, "preempted", False) for cb in trainer.callback_handler.callbacks)
    if preempted:
        log.warning("preempted at step %d: checkpoint saved, stopping for requeue", trainer.state.global_step)
        if wandb_run is not None:
            wandb_run.finish()
        dist.finish()
        return

    model_dir = run_dir / "model"
    trainer.save_model(str(model_dir))  # with model.lora: the adapter only (rova.models.lora)
    if dist.is_main:
        processor.save_pretrained(str(model_dir))
        merged = None
        if cfg.model.lora.enabled and cfg.model.lora.save_merged:
            from rova.models.lora import save_merged

            merged = save_merged(model_dir, cfg.model)
        trained = trainer.steps_this_launch  # 0: relaunched after it finished (rova.training.loop_fixes)
        summary = {
            "stage": cfg.stage.name,
            "global_step": trainer.state.global_step,
            "train_loss": result.training_loss if trained else _earlier_train_loss(run_dir, trainer.state.global_step),
            "resumed_from": resume,
            "model_dir": str(model_dir),
            **({"merged_model_dir": str(merged)} if merged is not None else {}),
            "metrics": str(run_dir / "metrics.jsonl"),
            **(entries or {}),
            "wandb": str(Path(wandb_run.dir).parent) if wandb_run is not None else None,
        }
        late = late_entries() if late_entries is not None else {}
        summary.update(late)
        atomic_write_json(run_dir / "summary.json", summary)
        if not trained:
            done_suffix += f" (already finished at {resume}: nothing trained)"
        print(f"[rova] done: {cfg.stage.name}, {trainer.state.global_step} steps{done_suffix}")
        printed = ("model_dir", "merged_model_dir", "metrics", *shown, "wandb", *late)
        width = max(len(key) for key in printed if key in summary)
        for key in printed:
            if summary.get(key):
                print(f"[rova]   {key:<{width}} {summary[key]}")
    if wandb_run is not None:
        wandb_run.finish()
    dist.finish()


def _earlier_train_loss(run_dir: Path, global_step: int) -> float | None:
    """train_loss of the summary.json the finished run wrote, if it is that run's (same global_step); else None."""
    import json

    try:
        earlier = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return earlier.get("train_loss") if earlier.get("global_step") == global_step else None
