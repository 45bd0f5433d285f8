"""stage=memory: T-GRPO plus ROVA's difficulty-aware memory wired into the trainer.

- A replay sampler keeps TRL's RepeatSampler invariant (each prompt G times in a row, the same order on
  every rank) and swaps `replay_frac` of each generation batch's prompts for remembered hard samples,
  which carry their stored corruption seed.
- After each rollout the gathered group accuracies feed `DifficultyMemory.observe` on every rank.
- Every step, entries due for a re-check get a greedy rollout on their stored corruption; each rank
  re-checks a share and the results are gathered, so the state stays identical everywhere.
- memory.json is written atomically into the run dir and into each checkpoint, and restored on resume.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.data import Sampler

from rova.config.schema import RootConfig
from rova.memory import DifficultyMemory
from rova.rewards import accuracy_score
from rova.training.visual_inputs import encode_prompt, render_prompt

log = logging.getLogger(__name__)
MEMORY_FILE = "memory.json"


class ReplayRepeatSampler(Sampler):
    """RepeatSampler with memory replay: yields dataset indices, or (index, corruption_seed) for replays."""

    def __init__(self, trainer, dataset, mini_repeat_count: int, batch_size: int, repeat_count: int, seed: int):
        self.trainer = trainer
        self.dataset = dataset
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.generator = torch.Generator().manual_seed(seed)  # advances each epoch, like TRL's RepeatSampler
        self.index_of = {sample_id: i for i, sample_id in enumerate(dataset.sample_ids)}

    def __iter__(self):
        order = torch.randperm(len(self.dataset), generator=self.generator).tolist()
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        chunks = [chunk for chunk in chunks if len(chunk) == self.batch_size]
        for chunk in chunks:
            memory = self.trainer.memory
            step = self.trainer.state.global_step
            replay = [key for key in memory.select_replay(step, self.batch_size) if key[0] in self.index_of]
            items: list = [(self.index_of[sample_id], seed) for sample_id, seed in replay]
            items += chunk[: self.batch_size - len(items)]
            for _ in range(self.repeat_count):
                for item in items:
                    for _ in range(self.mini_repeat_count):
                        yield item

    def __len__(self) -> int:
        return (len(self.dataset) // self.batch_size) * self.batch_size * self.mini_repeat_count * self.repeat_count


class ReplayDataset:
    """Dataset view that accepts (index, corruption_seed) keys for replayed samples."""

    def __init__(self, base):
        self.base = base
        self.sample_ids = list(base["sample_id"])

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, seed = key
            row = dict(self.base[index])
            row.update(corruption_seed=int(seed), replayed=True)
            return row
        return self.base[key]


def memory_path(run_dir: Path) -> Path:
    return Path(run_dir) / MEMORY_FILE


def attach_memory(trainer, cfg: RootConfig, run_dir: Path) -> DifficultyMemory:
    state = cfg.memory
    path = memory_path(run_dir)
    memory = DifficultyMemory.load(path, state) if path.exists() else DifficultyMemory(state)
    trainer.memory = memory
    trainer.train_dataset = ReplayDataset(trainer.train_dataset)
    return memory


def restore_from_checkpoint(trainer, checkpoint: str | None) -> None:
    """On resume, the memory must match the checkpoint's step, not a later state in the run dir."""
    if checkpoint is None or trainer.memory is None:
        return
    saved = Path(checkpoint) / MEMORY_FILE
    if saved.exists():
        trainer.memory = DifficultyMemory.load(saved, trainer.memory.config)
        log.info("memory restored from %s (%d entries)", saved, len(trainer.memory))


def recheck_due(trainer, step: int) -> dict[str, int]:
    """Greedy re-check of due entries on their stored corruption; each rank takes a share, results gathered."""
    memory: DifficultyMemory = trainer.memory
    due = memory.due_for_recheck(step)
    outcomes = {"solved": 0, "strike": 0, "evicted": 0, "absent": 0}
    if not due:  # the same on every rank (identical memory), so skipping keeps the collectives in step
        return outcomes
    rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
    mine = due[rank::world]
    rows = []
    dataset = trainer.train_dataset
    index_of = {sample_id: i for i, sample_id in enumerate(dataset.sample_ids)}
    for sample_id, seed in mine:
        if sample_id in index_of:
            rows.append(dict(dataset[index_of[sample_id]], corruption_seed=int(seed), key=(sample_id, seed)))
    prompts = []
    for row in rows:
        view = trainer.clip_source.corrupted(row, step)
        text = render_prompt(trainer.processing_class, row["prompt"])
        prompts.append(encode_prompt(trainer.processing_class, text, view.frames, view.sample_fps, view.is_image))
    # Every rank enters generation exactly once, even with nothing to re-check (ZeRO-3 gathers there).
    completions = trainer._generate_rows(prompts, greedy=True)
    texts = trainer.processing_class.batch_decode(completions, skip_special_tokens=True) if completions else []
    results = [
        (row["key"][0], row["key"][1], accuracy_score(text, row["solution"], row["problem_type"]))
        for row, text in zip(rows, texts)
    ]
    for sample_id, seed, acc in sorted(gather_object(results), key=lambda r: (str(r[0]), r[1])):
        outcomes[memory.record_recheck(step, (sample_id, seed), acc)] += 1
    return outcomes


def on_rollout(trainer, step: int, observations: list[dict]) -> None:
    """Called with the gathered per-group observations of one rollout (identical on every rank)."""
    memory: DifficultyMemory = trainer.memory
    added = memory.observe(step, [(o["sample_id"], o["corruption_seed"], o["group_accuracy"]) for o in observations])
    outcomes = recheck_due(trainer, step)
    mode = "train"
    metrics = trainer._metrics[mode]
    for name, value in memory.stats().items():
        metrics[f"memory/{name}"].append(float(value))
    metrics["memory/added_this_step"].append(float(len(added)))
    metrics["memory/replayed_this_step"].append(float(sum(o["replayed"] for o in observations)))
    for name, value in outcomes.items():
        metrics[f"memory/recheck_{name}"].append(float(value))
    metrics["memory/group_accuracy_replayed"].append(
        float(np.mean([o["group_accuracy"] for o in observations if o["replayed"]]))
        if any(o["replayed"] for o in observations) else float("nan")
    )


def save_memory(trainer, checkpoint_dir: Path | None) -> None:
    if trainer.memory is None or not trainer.accelerator.is_main_process:
        return
    trainer.memory.save(memory_path(trainer.run_dir))
    if checkpoint_dir is not None:
        trainer.memory.save(Path(checkpoint_dir) / MEMORY_FILE)
