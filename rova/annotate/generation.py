"""The teacher's generators for stage=cot: rova.inference's sampling generators (HF or vLLM) at cot.temperature/top_p.

The classes live in rova.inference.sampling (stage=select samples with them too); they are imported here under
their old names.
"""

from __future__ import annotations

from rova.inference.hf_generation import HFGenerator
from rova.inference.sampling import SamplingGenerator, SamplingVLLMGenerator, make_sampling_generator

__all__ = ["SamplingGenerator", "SamplingVLLMGenerator", "make_cot_generator"]


def make_cot_generator(cfg, model, processor, enforce_eager: bool = False) -> HFGenerator:
    """The teacher for `cfg.rollout.name`: HF generate on `model`, or a vLLM engine on `cfg.model.path`."""
    cot = cfg.cot
    return make_sampling_generator(cfg, model, processor, max_new_tokens=cot.max_new_tokens,
                                   temperature=cot.temperature, top_p=cot.top_p, stage="cot",
                                   enforce_eager=enforce_eager)
