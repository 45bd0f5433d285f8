"""The generator of stage=eval for `rollout.name`: rova.inference's HF or vLLM generator, decoding by eval.decoding."""

from __future__ import annotations

from rova.errors import RovaError
from rova.inference.hf_generation import HFGenerator
from rova.inference.vllm_generation import VLLMGenerator


def make_generator(cfg, model, processor, enforce_eager: bool = False) -> HFGenerator | VLLMGenerator:
    """The eval generator for `cfg.rollout.name`: HF generate on `model`, or a vLLM engine on `cfg.model.path`
    (`model` may then be None: vLLM loads the checkpoint itself)."""
    from rova.models.families import get_family

    family = get_family(cfg.model.family)
    if cfg.rollout.name == "hf":
        return HFGenerator(model, processor, cfg.eval.decoding, cfg.eval.max_new_tokens,
                           share_vision_encoding=cfg.model.share_vision_encoding, family=family)
    if cfg.rollout.name != "vllm":
        raise RovaError(f"rollout.name: got {cfg.rollout.name!r}; stage=eval supports hf and vllm")
    from rova.models.loading import ensure_model_files

    return VLLMGenerator(
        model=None, processor=processor, decoding=cfg.eval.decoding, max_new_tokens=cfg.eval.max_new_tokens,
        family=family,
        model_dir=ensure_model_files(cfg.model), dtype=cfg.model.dtype,
        gpu_memory_utilization=cfg.rollout.vllm_gpu_memory_utilization,
        max_model_len=cfg.rollout.vllm_max_model_length, seed=cfg.eval.seed, enforce_eager=enforce_eager,
    )
