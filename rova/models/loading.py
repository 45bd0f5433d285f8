"""Load a Qwen2.5-VL model and processor from `model.path` (the tiny model goes through the same path)."""

from __future__ import annotations

import logging
from pathlib import Path

from rova.config.schema import ModelConfig
from rova.errors import RovaError
from rova.utils.locking import file_lock

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


def ensure_model_files(cfg: ModelConfig) -> str:
    """Build the tiny model on first use (one process builds, the others wait); check local paths exist."""
    if cfg.build_tiny:
        from rova.models.tiny import ensure_tiny_model

        with file_lock(Path(cfg.path).with_name(Path(cfg.path).name + ".lock")):
            ensure_tiny_model(cfg.path)
        return cfg.path
    path = Path(cfg.path)
    if path.is_absolute() and not path.exists():
        raise RovaError(
            f"model.path: {cfg.path} does not exist. Download the checkpoint first, e.g. "
            f"`huggingface-cli download Qwen/Qwen2.5-VL-7B-Instruct --local-dir {cfg.path}`"
        )
    return cfg.path


def load_model_and_processor(cfg: ModelConfig):
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from rova.models.lora import adapter_base, load_adapter
    from rova.models.qwen2_5_vl import install_mrope_time_fix

    # Class-level, before any model exists: the policy, TRL's reference model and generate all share it.
    install_mrope_time_fix()
    path, adapter = adapter_base(ensure_model_files(cfg))  # a LoRA adapter dir loads its base + the adapter
    dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        path, dtype=dtype, attn_implementation=cfg.attn_implementation
    )
    model = load_adapter(model, adapter)
    processor = AutoProcessor.from_pretrained(path)
    return model, processor
