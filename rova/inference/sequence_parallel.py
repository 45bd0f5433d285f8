"""Generation by a sequence-parallel group (`distributed.sequence_parallel=N`; rova.models.sequence_parallel).

Decoding goes token by token, which Ulysses cannot split, so one rank of the group generates. What the group shares
is the clip: every rank encodes a share of the batch's frames (MR-SP), the encodings are gathered, and the first
rank generates from them (its vision tower replays the group's encodings instead of encoding); the completions
then go to every rank of the group, which all continue with the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rova.inference.hf_generation import HFGenerator
from rova.models.families import EncodedPrompt
from rova.models.sequence_parallel import SequenceParallel
from rova.models.sequence_parallel.vision import VisionCache, encode_for_replay, replay_vision_tower


def inner_model(model, family) -> torch.nn.Module:
    """The VL model inside `model` (through DDP / DeepSpeed / PEFT wrappers): the module holding `visual`."""
    classes = family.inner_model_classes()
    return next(m for m in model.modules() if isinstance(m, classes))


def broadcast_from_leader(value, sp: SequenceParallel):
    """The group's first rank's `value`, on every rank of the group."""
    import torch.distributed as dist

    box = [value if sp.is_leader else None]
    dist.broadcast_object_list(box, src=sp.leader, group=sp.group)
    return box[0]


@dataclass
class SequenceParallelGenerator:
    """An HFGenerator run by an SP group: clips encoded MR-SP by the group, completions by its first rank."""

    base: HFGenerator
    sp: SequenceParallel

    def __post_init__(self) -> None:
        self.inner = inner_model(self.base.model, self.base.family)
        self.cache = VisionCache()  # counts the patches this rank encoded

    def encode(self, *args, **kwargs) -> EncodedPrompt:
        return self.base.encode(*args, **kwargs)

    def decode(self, completions: list[list[int]]) -> list[str]:
        return self.base.decode(completions)

    @torch.no_grad()
    def generate(self, prompts: list[EncodedPrompt]) -> list[str]:
        if not prompts:  # the same on every rank of the group: they run the same loop over the same items
            return []
        inputs = self.base.inputs(prompts)
        encodings = encode_for_replay(self.inner, self.sp, inputs, self.cache)
        texts = None
        if self.sp.is_leader:
            with replay_vision_tower(self.inner.visual, encodings):
                texts = self.base.generate_from(inputs)
        return broadcast_from_leader(texts, self.sp)
