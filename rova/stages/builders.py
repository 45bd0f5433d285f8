"""The two trainer builders, in one home: data, model, tracking callbacks and the trainer for a validated config.

`build_rl_trainer` (stage=grpo | tgrpo | memory: rova.training.VideoGRPOTrainer with its VideoGRPOConfig) and
`build_sft_trainer` (stage=sft). Shared by the stage modules and the tests; each returns a trainer that has not
started training.
"""

from __future__ import annotations

from pathlib import Path

from rova.config.schema import RootConfig
from rova.stages.assets import ensure_demo_data
from rova.stages.setup import DistState
from rova.utils.io import atomic_write_json


def rollout_scored_by_rova(*args, **kwargs):
    """Handed to TRL as its reward function, which must never be called: rova's rollout scores completions itself
    through the reward registry (rova.rewards.registry). Reaching this means a TRL code path bypassed it."""
    raise RuntimeError(
        "TRL called its own reward path; rova scores rollouts in VideoGRPOTrainer._generate_and_score_completions "
        "(rova.rewards.registry). This TRL code path is not supported."
    )


def build_rl_trainer(cfg: RootConfig, run_dir: Path, dist=None, resume_from: str | None = None):
    """Data, model, tracking and the VideoGRPOTrainer for a validated config (shared by the stage and tests).

    `resume_from`: the checkpoint being resumed; the difficulty memory is restored from it (only from it).
    """
    from rova.models.families import get_family
    from rova.models.loading import load_model_and_processor
    from rova.models.lora import log_parameter_counts, prepare_trainable
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
        seed=cfg.stage.seed, hints=cfg.memory.augment_hard,
    )
    check_media_mix_for_zero3(cfg, set(data.dataset.unique("data_type")))
    mixing = {"mode": cfg.data.task_mixing}
    if cfg.data.task_mixing == "per_batch":
        from rova.rewards import canonical_problem_type
        from rova.training.task_mixing import task_mixing_report

        # One kind per process's generation batch; with the memory, per whole generation batch (its replay sampler).
        groups = 1 if cfg.memory.enabled else dist.world_size
        mixing = task_mixing_report([canonical_problem_type(t) for t in data.dataset["problem_type"]],
                                    prompts_per_generation // groups, groups, source=cfg.data.train_file)
    if dist.is_main:
        atomic_write_json(run_dir / "data_report.json", {
            "train_file": cfg.data.train_file, "records": data.total, "kept": len(data.dataset),
            "skipped": len(data.skipped), "too_long": data.too_long,
            "skipped_media": [{"path": p, "reason": r} for p, r in data.skipped],
            "bad_records": data.bad_records,
            "invert_questions": data.inversion.to_dict() if data.inversion is not None else None,
            "task_mixing": mixing,
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
            shuffle_mode=args.shuffle, blank_video=cfg.data.blank_video,
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


def build_sft_trainer(cfg: RootConfig, run_dir: Path, dist=None):
    """(trainer, processor, data) for a validated stage=sft config (shared by the stage and the tests).

    transformers' Trainer, not TRL 1.16's SFTTrainer: SFTTrainer detects vision data only by image keys, and its
    loss path calls the model with TRL's `fused_lm_head=True` hook; with our own collator and pre-encoded rows it
    would add nothing but those. Trainer's loss is the model's own cross-entropy over labels != -100, normalised
    by the batch's label tokens across gradient accumulation (num_items_in_batch).
    """
    from transformers import PrinterCallback, Trainer

    from rova.models.loading import load_model_and_processor
    from rova.training.args import sft_config
    from rova.models.families import get_family
    from rova.training.sft import VideoSFTCollator, load_sft_data
    from rova.training.clips import ClipSource
    from rova.training.checkpoints import CompleteCheckpoints
    from rova.training.loop_fixes import LoopFixes
    from rova.training.tracking import ConsoleCallback, MetricsJsonlCallback, PreemptionCallback

    from rova.training.sequence_parallel import SequenceParallelSFT

    class VideoSFTTrainer(CompleteCheckpoints, LoopFixes, SequenceParallelSFT, Trainer):
        """transformers' Trainer with rova's loop fixes (rova/training/loop_fixes.py), complete checkpoints and
        sequence parallelism (distributed.sequence_parallel)."""

    dist = dist or DistState()
    ensure_demo_data(cfg.data)
    model, processor = load_model_and_processor(cfg.model)
    data = load_sft_data(cfg, processor)
    report_to = ["wandb"] if cfg.logger.name == "wandb" else []
    clip_source = ClipSource(cfg.data.frame_sampling(cfg.model.image_factor), cfg.data.backend, cfg.corruption,
                             cfg.stage.seed, blank_video=cfg.data.blank_video)
    trainer = VideoSFTTrainer(
        model=model,
        args=sft_config(cfg, run_dir, report_to=report_to, extra=dist.trainer_kwargs),
        train_dataset=data.dataset,
        data_collator=VideoSFTCollator(processor, clip_source, get_family(cfg.model.family)),
        processing_class=processor,
        callbacks=[MetricsJsonlCallback(run_dir), PreemptionCallback(run_dir), ConsoleCallback()],
    )
    trainer.remove_callback(PrinterCallback)  # raw log dicts; ConsoleCallback prints one line per step
    trainer.setup_sequence_parallel(cfg.distributed.sequence_parallel, get_family(cfg.model.family))
    return trainer, processor, data
