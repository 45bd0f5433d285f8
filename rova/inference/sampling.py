"""Sampling generators: rova.inference's HF and vLLM generators drawing k different samples per prompt.

The inference generators decode by a named preset (greedy by default). stage=cot (k teacher samples per record)
and stage=select (N samples per record, to measure how the reward varies) need sampling at (temperature, top_p);
these subclasses replace the preset's decoding by that and change nothing else (eos ids, banned vision
placeholders, prompt encoding and decoding stay the inference generators').

`sample_records` is both stages' loop: k samples of every record of a shard that the prediction store does not
hold yet, one generate call (and one store write) at a time, each line judged by the stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from rova.errors import RovaError
from rova.inference.hf_generation import HFGenerator
from rova.inference.vllm_generation import VLLMGenerator

log = logging.getLogger(__name__)


@dataclass
class SamplingGenerator(HFGenerator):
    """HF batched generate, sampling at (temperature, top_p)."""

    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.generation_config.do_sample = True
        self.generation_config.temperature = self.temperature
        self.generation_config.top_p = self.top_p
        # HF's default top_k=50 would cut what top_p keeps; vLLM (the other path) applies no top-k either.
        self.generation_config.top_k = 0


@dataclass
class SamplingVLLMGenerator(VLLMGenerator):
    """vLLM generate, sampling at (temperature, top_p) (the engine is seeded with `seed`)."""

    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sampling_params = self.make_sampling_params(self.temperature, self.top_p)


def load_generation_model(cfg):
    """(model, processor) of `cfg.model` for generating with `cfg.rollout.name`: the HF model in eval mode, or
    None with vLLM (the engine loads the weights itself; only the processor is needed here)."""
    if cfg.rollout.name == "vllm":
        from transformers import AutoProcessor

        from rova.models.loading import ensure_model_files

        return None, AutoProcessor.from_pretrained(ensure_model_files(cfg.model))
    from rova.models.loading import load_model_and_processor

    model, processor = load_model_and_processor(cfg.model)
    model.eval()
    return model, processor


def make_sampling_generator(cfg, model, processor, *, max_new_tokens: int, temperature: float, top_p: float,
                            stage: str, enforce_eager: bool = False) -> HFGenerator:
    """The sampling generator for `cfg.rollout.name`: HF generate on `model`, or a vLLM engine on `cfg.model.path`
    (seeded with stage.seed). `stage` names the stage in the error for another rollout."""
    from rova.models.families import get_family

    family = get_family(cfg.model.family)
    if cfg.rollout.name == "hf":
        # The k samples of a record are the same prompt object k times: with sharing, one vision-tower run.
        return SamplingGenerator(model, processor, max_new_tokens=max_new_tokens, temperature=temperature,
                                 top_p=top_p, share_vision_encoding=cfg.model.share_vision_encoding, family=family)
    if cfg.rollout.name != "vllm":
        raise RovaError(f"rollout.name: got {cfg.rollout.name!r}; stage={stage} supports hf and vllm")
    from rova.models.loading import ensure_model_files

    return SamplingVLLMGenerator(
        model=None, processor=processor, max_new_tokens=max_new_tokens, family=family,
        model_dir=ensure_model_files(cfg.model), dtype=cfg.model.dtype,
        gpu_memory_utilization=cfg.rollout.vllm_gpu_memory_utilization,
        max_model_len=cfg.rollout.vllm_max_model_length, seed=cfg.stage.seed, enforce_eager=enforce_eager,
        temperature=temperature, top_p=top_p,
    )


def sample_records(mine: list, store, read_clip, generator, render_text, progress, skipped: dict[str, str], *,
                   cell: str, num_samples: int, batch_size: int, seed: int,
                   skip_line: Callable[[Any, str], dict], judge: Callable[[Any, list[str]], dict]) -> None:
    """Sample `num_samples` completions of every record of `mine` not in `store` yet and store `judge(item,
    completions)`; `skipped` (item_id -> reason: media that failed the probe) and a decode failure here store
    `skip_line(item, reason)`, never a replacement.

    `batch_size` counts prompts (a record is num_samples prompts); each generate call is seeded from its first
    record and its lines are written at once (one fsync), so a resumed run starts at a call boundary and samples
    what the uninterrupted run would have.
    """
    import torch

    from rova.errors import VideoDecodeError
    from rova.inference.seeding import stable_seed

    per_call = max(1, batch_size // num_samples)
    pending = [item for item in mine if not store.done(cell, item.item_id)]
    unreadable = [i for i in pending if i.item_id in skipped]
    store.extend([skip_line(item, skipped[item.item_id]) for item in unreadable])
    pending = [i for i in pending if i.item_id not in skipped]
    progress.begin(len(mine) - len(pending))  # in the store (the media that failed the probe too): not in the rate
    for start in range(0, len(pending), per_call):
        batch = pending[start : start + per_call]
        prompts, ready, lines = [], [], []
        for item in batch:
            try:
                frames, timing, is_image = read_clip(item)
            except VideoDecodeError as exc:
                log.warning("skipping undecodable media: %s", exc)
                lines.append(skip_line(item, str(exc)))
                continue
            prompts += [generator.encode(render_text(item), frames, timing, is_image)] * num_samples
            ready.append(item)
        if ready:
            torch.manual_seed(stable_seed(seed, cell, ready[0].item_id))
            completions = generator.generate(prompts)
            lines += [judge(item, completions[j * num_samples : (j + 1) * num_samples]) for j, item in enumerate(ready)]
        store.extend(lines)
        progress.advance(len(batch), cell)
    progress.finish()
