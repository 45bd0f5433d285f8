"""The RL stage (stage=grpo | tgrpo | memory): GRPO-family training on video with the tiny or a real Qwen2.5-VL.

What runs is switched by config only: `tgrpo.branches` (shuffled / corrupted branches), `reward.*` weights
(the reward registry), `memory.enabled` (difficulty-aware memory with replay and re-checks).
"""

from __future__ import annotations

from pathlib import Path

from rova.config.schema import RootConfig
from rova.utils.io import atomic_write_json


def rollout_scored_by_rova(*args, **kwargs):
    """Handed to TRL as its reward function, which must never be called: rova's rollout scores completions itself
    through the reward registry (rova.rewards.registry). Reaching this means a TRL code path bypassed it."""
    raise RuntimeError(
        "TRL called its own reward path; rova scores rollouts in VideoGRPOTrainer._generate_and_score_completions "
        "(rova.rewards.registry). This TRL code path is not supported."
    )


def build_trainer(cfg: RootConfig, run_dir: Path, dist=None, resume_from: str | None = None):
    """Data, model, tracking and the VideoGRPOTrainer for a validated config (shared by the stage and tests).

    `resume_from`: the checkpoint being resumed; the difficulty memory is restored from it (only from it).
    """
    from rova.models.families import get_family
    from rova.models.loading import load_model_and_processor
    from rova.models.lora import log_parameter_counts, prepare_trainable
    from rova.stages.assets import ensure_demo_data
    from rova.stages.setup import DistState
    from rova.training.args import video_grpo_config
    from rova.training.clips import ClipSource
    from rova.training.dataset import check_media_mix_for_zero3, load_training_data
    from transformers import PrinterCallback

    from rova.training.tracking import ConsoleCallback, MetricsJsonlCallback, PreemptionCallback
    from rova.training.trainer import VideoGRPOTrainer

    dist = dist or DistState()
    ensure_demo_data(cfg.data)
    model, processor = load_model_and_processor(cfg.model)
    model, peft_config = prepare_trainable(model, cfg.model)  # model.freeze_vision; model.lora -> TRL's peft_config
    prompts_per_generation = (
        cfg.stage.per_device_train_batch_size * cfg.stage.generation_steps * dist.world_size // cfg.stage.num_generations
    )
    data = load_training_data(
        cfg.data, cfg.model.image_factor, cfg.run.cache_dir, min_prompts=prompts_per_generation,
        processor=processor, max_prompt_length=cfg.stage.max_prompt_length, family=get_family(cfg.model.family),
    )
    check_media_mix_for_zero3(cfg, set(data.dataset.unique("data_type")))
    if dist.is_main:
        atomic_write_json(run_dir / "data_report.json", {
            "train_file": cfg.data.train_file, "records": data.total, "kept": len(data.dataset),
            "skipped": len(data.skipped), "too_long": data.too_long,
            "skipped_media": [{"path": p, "reason": r} for p, r in data.skipped],
        })
    memory = None
    if cfg.memory.enabled:
        from rova.memory import ReplayMemory

        memory = ReplayMemory.restore(cfg.memory, resume_from)
    report_to = ["wandb"] if cfg.logger.name == "wandb" else []
    args = video_grpo_config(cfg, run_dir, report_to=report_to, extra=dist.trainer_kwargs)
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=[rollout_scored_by_rova],
        args=args,
        train_dataset=data.dataset,
        processing_class=processor,
        callbacks=[MetricsJsonlCallback(run_dir), PreemptionCallback(run_dir), ConsoleCallback()],
        clip_source=ClipSource(
            cfg.data.frame_sampling(cfg.model.image_factor), cfg.data.backend, args.corruption, args.seed,
            shuffle_mode=args.shuffle,
        ),
        run_dir=run_dir,
        memory=memory,
        peft_config=peft_config,
    )
    log_parameter_counts(trainer.model)
    trainer.remove_callback(PrinterCallback)  # raw log dicts; ConsoleCallback prints one line per step
    if memory is not None:
        from rova.memory import ReplayDataset

        # Set after construction: TRL inspects the dataset it is given; replay rows come through this view.
        trainer.train_dataset = ReplayDataset(data.dataset, memory)
    return trainer, processor


def run(cfg: RootConfig, run_dir: Path) -> None:
    from rova.stages.finish import finish_training_run
    from rova.stages.setup import start_training_run

    dist, wandb_run, resume = start_training_run(cfg, run_dir)
    trainer, processor = build_trainer(cfg, run_dir, dist, resume_from=resume)
    state = trainer.accelerator.state
    if dist.world_size > 1:
        print(f"[rova] rank {dist.rank}: {state.num_processes} processes, {state.distributed_type}, device {state.device}",
              flush=True)
    result = trainer.train(resume_from_checkpoint=resume)
    finish_training_run(cfg, run_dir, trainer, processor, result, dist=dist, wandb_run=wandb_run, resume=resume,
                        entries={"rollouts": str(run_dir / "rollouts.jsonl")}, shown=("rollouts",),
                        late_entries=lambda: _reward_curves(run_dir))


def _reward_curves(run_dir: Path) -> dict:
    """summary.json's rewards_png: the reward curves of metrics.jsonl (None when there is nothing to plot)."""
    from rova.training.curves import REWARDS_PNG, plot_rewards

    curves = plot_rewards(run_dir / "metrics.jsonl", run_dir / REWARDS_PNG)
    return {"rewards_png": str(curves) if curves else None}


def outcome(run_dir: Path) -> str:
    """The recipe report's line: steps, train loss, and the mean reward of the first and last quarter of steps."""
    from rova.stages.outcome import fmt, quarter_means, training_outcome

    words = training_outcome(run_dir)
    first, last = quarter_means(run_dir)
    if first is not None:
        words += f", reward {fmt(first)} -> {fmt(last)} (first -> last quarter)"
    return words
