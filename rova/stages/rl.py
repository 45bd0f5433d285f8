"""The RL stage (stage=grpo | tgrpo | memory): GRPO-family training on video with the tiny or a real Qwen2.5-VL.

What runs is switched by config only: `tgrpo.branches` (shuffled / corrupted branches), `reward.*` weights
(the reward registry), `memory.enabled` (difficulty-aware memory with replay and re-checks).
"""

from __future__ import annotations

from pathlib import Path

from rova.config.schema import RootConfig


def run(cfg: RootConfig, run_dir: Path) -> None:
    from rova.stages.builders import build_rl_trainer
    from rova.stages.finish import finish_training_run
    from rova.stages.setup import start_training_run

    dist, wandb_run, resume = start_training_run(cfg, run_dir)
    trainer, processor = build_rl_trainer(cfg, run_dir, dist, resume_from=resume)
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
