"""The RL trainer under sequence parallelism (`distributed.sequence_parallel=N`; rova.models.sequence_parallel).

TRL 1.16's GRPOConfig refuses sequence parallelism and DeepSpeed's Ulysses dataloader adapter does not fit GRPO
(it shards each batch's sequences itself, while GRPO's rollout needs whole rows), so the trainer does it here:
  * groups: rova builds the SP groups (N consecutive ranks); group k is data-parallel rank k of W/N.
  * data: `SequenceParallelSampler` hands the N ranks of a group the same rows. The sampler underneath is built
    for the W/N data-parallel ranks, so a group sees exactly what one process of a W/N-process run would see.
  * rollout: every rank of a group runs the same rollout (views, scoring and advantages are deterministic), but
    only the group's first rank generates; it broadcasts the completions to the others (`share_generation`).
  * passes: the old-policy, reference and policy log-probs and the KL-consistency logits are computed one row at
    a time with the sequence split over the group (rova.models.sequence_parallel.logps), each clip encoded once per
    group with its frames split over the ranks (MR-SP), reused by later passes of the step when the vision tower
    does not train.
  * counting: a group holds one copy of its rows, so only its first rank contributes to the gathered metrics,
    token counts, rollouts.jsonl and the difficulty memory (`reports`); losses are the same on every rank and
    their gradients are exact (rova.models.sequence_parallel.sharding says why nothing is counted N times).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Iterator

import torch
from torch.utils.data import Sampler

from rova.models.sequence_parallel import SequenceParallel, build_groups, install_ulysses
from rova.models.sequence_parallel.vision import VisionCache


def _rng_states() -> dict:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["cpu"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"])


class SequenceParallelSampler(Sampler):
    """Each block of `block` indices of `inner` (one data-parallel rank's dataloader batch) `copies` times in a
    row, so the `copies` consecutive ranks of an SP group get the same batch from accelerate's sharding."""

    def __init__(self, inner: Sampler, block: int, copies: int):
        self.inner, self.block, self.copies = inner, block, copies

    def __iter__(self) -> Iterator[int]:
        chunk: list[int] = []
        for index in self.inner:
            chunk.append(index)
            if len(chunk) == self.block:
                for _ in range(self.copies):
                    yield from chunk
                chunk = []
        for _ in range(self.copies if chunk else 0):
            yield from chunk

    def __len__(self) -> int:
        return len(self.inner) * self.copies  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:  # accelerate re-seeds the sampler every epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)


class SequenceParallelPasses:
    """Mixin of VideoGRPOTrainer: the SP group, its data split and its sharded passes (no-ops when N = 1)."""

    sp: SequenceParallel | None = None

    def _setup_sequence_parallel(self, size: int) -> None:
        self.sp = None
        self._sp_cache = VisionCache()
        self._sp_inner: dict[int, torch.nn.Module] = {}
        if size <= 1:
            return
        self.sp = build_groups(size)
        config = self.accelerator.unwrap_model(self.model).config
        install_ulysses(self.sp, config.get_text_config(), config._attn_implementation)
        if self.accelerator.is_main_process:
            print(f"[rova] sequence parallel: {self.sp.dp_size} group(s) of {size} ranks (Ulysses over "
                  f"{config._attn_implementation}; MR-SP vision encoding)", flush=True)

    # ------------------------------------------------------------------ who counts, which data
    @property
    def reports(self) -> bool:
        """Whether this rank's rows count in gathered metrics, logs and the memory (one rank per SP group)."""
        return self.sp is None or self.sp.is_leader

    @property
    def data_rank(self) -> int:
        return self.accelerator.process_index if self.sp is None else self.sp.dp_rank

    @property
    def data_world(self) -> int:
        return self.accelerator.num_processes if self.sp is None else self.sp.dp_size

    def _prompts_per_generation(self) -> int:
        """Prompts one generation draws over the data-parallel ranks (GRPOConfig counts every process)."""
        size = 1 if self.sp is None else self.sp.size
        return self.args.generation_batch_size // self.num_generations // size

    def _shared_by_group(self, sampler: Sampler) -> Sampler:
        if self.sp is None:
            return sampler
        block = self.args.per_device_train_batch_size * self.args.steps_per_generation
        return SequenceParallelSampler(sampler, block, self.sp.size)

    # ------------------------------------------------------------------ generation, once per group
    def share_generation(self, generation):
        """The group's first rank's generation, on every rank of the group, with its random state: sampling drew
        from the first rank's generator only, and what follows (TRL shuffles the rollout rows before cutting the
        micro-batches) must draw the same on every rank of the group."""
        if self.sp is None:
            return generation
        import torch.distributed as dist

        box = [(generation, _rng_states()) if self.sp.is_leader else None]
        dist.broadcast_object_list(box, src=self.sp.leader, group=self.sp.group)
        generation, states = box[0]
        if not self.sp.is_leader:
            _set_rng_states(states)
        return generation

    def _generates_here(self) -> bool:
        return self.sp is None or self.sp.is_leader

    def _encode_for_generation(self, model, inputs: dict) -> dict | None:
        """Every rank of the group encodes its share of the generation batch's frames (MR-SP; None without SP)."""
        if self.sp is None:
            return None
        from rova.models.sequence_parallel.vision import encode_for_replay

        return encode_for_replay(self._inner_model(model), self.sp, inputs, self._sp_cache)

    def _replaying_vision(self, model, encodings: dict | None):
        """The first rank generates from the group's encodings (its vision tower does not encode again)."""
        if encodings is None:
            return nullcontext()
        from rova.models.sequence_parallel.vision import replay_vision_tower

        return replay_vision_tower(self._inner_model(model).visual, encodings)

    # ------------------------------------------------------------------ sharded passes
    def _inner_model(self, model) -> torch.nn.Module:
        """The VL model inside `model` (through DDP / DeepSpeed / PEFT wrappers): the module holding `visual`."""
        from rova.inference.sequence_parallel import inner_model

        key = id(model)
        if key not in self._sp_inner:
            self._sp_inner[key] = inner_model(model, self.family)
        return self._sp_inner[key]

    def _row_inputs(self, tokens: torch.Tensor, visual_row: dict) -> dict:
        return self._model_inputs(tokens, torch.ones_like(tokens), [visual_row])

    def _sharded_logps(self, model, ids, mask, completion_length, rows, compute_entropy):
        from rova.models.sequence_parallel.logps import sharded_completion_logps

        with self.accelerator.autocast():
            return sharded_completion_logps(model, self._inner_model(model), self.sp, ids, mask, completion_length,
                                            rows, self._row_inputs, compute_entropy, step_cache=self._sp_cache)

    def _sharded_logits(self, model, ids, mask, rows, completion_length):
        from rova.models.sequence_parallel.logps import sharded_completion_logits

        return sharded_completion_logits(model, self._inner_model(model), self.sp, ids, mask, completion_length,
                                         rows, self._row_inputs, step_cache=self._sp_cache)


class SequenceParallelSFT:
    """Mixin of the SFT trainer (stage=sft) under sequence parallelism: the N ranks of a group take the same rows
    (the seeded sampler of a W/N-process run, each batch N times), and the completion-only loss is computed one row
    at a time with its sequence split over the group. The loss is the model's own (the summed cross-entropy of the
    label tokens over the batch's label count, num_items_in_batch) and is scaled as transformers' Trainer scales it."""

    sp: SequenceParallel | None = None

    def setup_sequence_parallel(self, size: int, family) -> None:
        self.sp = None
        if size <= 1:
            return
        from trl.trainer.utils import add_fused_lm_head

        self.family = family
        self.sp = build_groups(size)
        config = self.model.config
        install_ulysses(self.sp, config.get_text_config(), config._attn_implementation)
        add_fused_lm_head(self.model)  # per-token log-probs of pre-shifted labels, chunk by chunk
        from rova.inference.sequence_parallel import inner_model

        self._sp_inner = inner_model(self.model, family)
        self.data_collator.per_row_visual = True
        if self.accelerator.is_main_process:
            print(f"[rova] sequence parallel: {self.sp.dp_size} group(s) of {size} ranks (Ulysses over "
                  f"{config._attn_implementation})", flush=True)

    # Override: with SP, the seeded sampler of a W/N-process run (as accelerate seeds it), each batch N times.
    def _get_train_sampler(self, train_dataset=None):
        if self.sp is None:
            return super()._get_train_sampler(train_dataset)
        from accelerate.data_loader import SeedableRandomSampler

        dataset = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else torch.random.initial_seed()
        return SequenceParallelSampler(SeedableRandomSampler(dataset, data_seed=seed),
                                       self.args.per_device_train_batch_size, self.sp.size)

    # Override: with SP, the label tokens' log-probs summed over the group's chunks of each row.
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.sp is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        from rova.models.sequence_parallel.logps import sharded_label_logp_sum

        rows = inputs.pop("visual_rows")
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        total = sum(sharded_label_logp_sum(model, self._sp_inner, self.sp, ids[i][mask[i].bool()],
                                           labels[i][mask[i].bool()], rows[i], self._sft_row_inputs)
                    for i in range(ids.size(0)))
        count = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
        loss = -total / count
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer.compute_loss (DDP averages the gradients)
        return (loss, None) if return_outputs else loss

    def _sft_row_inputs(self, tokens: torch.Tensor, visual_row: dict) -> dict:
        from rova.inference.visual import model_inputs

        ids = self.family.token_ids(self.processing_class.tokenizer)
        return model_inputs(tokens, torch.ones_like(tokens), [visual_row], image_token=ids["image_pad"],
                            video_token=ids["video_pad"], share_vision_encoding=False)
