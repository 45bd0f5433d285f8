"""Three defects of transformers 5.17's Trainer that rova's trainers (SFT and RL) correct, as mixins.

1. `StopAtMaxSteps`: the loop checks `max_steps` only after a step. Resumed from the checkpoint at max_steps
   (a finished run launched again with run.resume, a requeued SLURM array task that had finished, the recipe
   re-running a step whose summary was lost), it skips the batches already trained and, unless max_steps ends
   an epoch, trains step max_steps + 1, saves checkpoint-(max_steps + 1) and overwrites model/ with weights
   nobody asked for. Here the loop ends before it fetches a batch once the resumed state has reached max_steps.

2. `CpuDistributedResume`: with more than one process the optimizer state is loaded with
   `map_location=args.device`; on CPU that device is `cpu:<rank>`, which torch.load refuses ("don't know how
   to restore data location ... tagged with cpu:0"), so no DDP run on CPU could resume. Here that load maps
   to plain "cpu" (the same memory: a CPU device index means nothing to storage).

3. `CheckpointWeightsResume`: resuming loads a checkpoint's weights with a plain non-strict
   `model.load_state_dict`, but save_pretrained wrote them under the checkpoint format's names (Qwen2.5-VL:
   `model.layers.*`, `visual.*`), not the live model's (`model.language_model.layers.*`, `model.visual.*`).
   No key matched, nothing was loaded and nothing was said: every resumed Qwen2.5-VL run (a relaunch, a SLURM
   requeue, the recipe) went on from the base weights with the trained optimizer state. Here the saved names
   are mapped back to the live ones by the same conversion save_pretrained applied, and a checkpoint that
   does not cover every weight is an error.

docs/upstream_fixes.md has all three; tests/stages/test_relaunch_finished.py, tests/models/test_checkpoint_resume.py and
tests/training/test_distributed.py cover them.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StopAtMaxSteps:
    """No step is taken once `state.global_step >= state.max_steps`; `steps_this_launch` counts what this process
    trained (0 after a relaunch of a finished run)."""

    _start_step: int | None = None

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        state = self.state
        if self._start_step is None:
            self._start_step = state.global_step
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            log.warning("the run already reached max_steps=%d (resumed at step %d): nothing to train",
                        state.max_steps, state.global_step)
            self.control.should_training_stop = True
            return [], None
        return super().get_batch_samples(epoch_iterator, num_batches, device)

    @property
    def steps_this_launch(self) -> int:
        start = self.state.global_step if self._start_step is None else self._start_step
        return self.state.global_step - start


@contextmanager
def _cpu_storage_map_location():
    """While active, torch.load maps a `cpu:<n>` map_location to "cpu" (everything else passes through)."""
    import torch

    original = torch.load

    def load(*args, **kwargs):
        where = kwargs.get("map_location")
        if where is not None and not callable(where) and not isinstance(where, dict) and torch.device(where).type == "cpu":
            kwargs["map_location"] = "cpu"
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


class CpuDistributedResume:
    """A multi-process run on CPU resumes: the optimizer state is loaded to "cpu", not to `cpu:<rank>`."""

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is None or self.args.device.type != "cpu" or self.args.world_size <= 1:
            return super()._load_optimizer_and_scheduler(checkpoint)
        with _cpu_storage_map_location():
            return super()._load_optimizer_and_scheduler(checkpoint)


class CheckpointWeightsResume:
    """A resumed run gets the checkpoint's full weights whatever names save_pretrained gave them.

    Only the plain case is taken over (full weights as model.safetensors or its shards, no DeepSpeed / FSDP,
    which restore from their own state, and no PEFT adapter, which PEFT names and loads itself).
    """

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from rova.models.checkpoint_weights import full_weight_files, load_saved_weights

        target = self.model if model is None else model
        files = full_weight_files(resume_from_checkpoint)
        if files is None or self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        log.info("loading the model weights of %s", resume_from_checkpoint)
        load_saved_weights(target, files)


class LoopFixes(StopAtMaxSteps, CpuDistributedResume, CheckpointWeightsResume):
    """All three corrections; list it before the transformers / TRL trainer class in the bases."""
