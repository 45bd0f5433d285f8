"""Load a model of `model.family` and its processor from `model.path` (the tiny model goes through the same path)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rova.config.model import ModelConfig
from rova.errors import ConfigError, RovaError
from rova.models.families import family_of_model_type, get_family
from rova.utils.locking import file_lock

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


def ensure_model_files(cfg: ModelConfig) -> str:
    """Build the tiny model on first use (one process builds, the others wait); check local paths exist."""
    if cfg.build_tiny:
        from rova.models.tiny import SPECS, ensure_tiny_model

        with file_lock(Path(cfg.path).with_name(Path(cfg.path).name + ".lock")):
            ensure_tiny_model(cfg.path, cfg.family, SPECS[cfg.build_spec])
        return cfg.path
    path = Path(cfg.path)
    if path.is_absolute() and not path.exists():
        raise RovaError(
            f"model.path: {cfg.path} does not exist. Download the checkpoint first, e.g. "
            f"`huggingface-cli download <hub id> --local-dir {cfg.path}` (conf/model/*.yaml lists the hub ids)"
        )
    return cfg.path


def checkpoint_model_type(path: str) -> str | None:
    """config.json's model_type of a local checkpoint (None for a hub id: checked by from_pretrained)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise RovaError(f"model.path: cannot read {config}: {exc}") from exc


def check_family(cfg: ModelConfig, model_type: str | None) -> None:
    """A checkpoint of another family than model.family is refused (its frames, tokens and metadata differ)."""
    family = get_family(cfg.family)
    if model_type is None or model_type in family.model_types:
        return
    actual = family_of_model_type(model_type)
    hint = f"set model.family={actual.name}" if actual else "no rova family loads it"
    raise ConfigError("model.family", f"{cfg.family!r}, but {cfg.path} is a {model_type!r} checkpoint ({hint})")


def load_model_and_processor(cfg: ModelConfig):
    import torch
    from transformers import AutoConfig, AutoProcessor

    from rova.models.lora import adapter_base, load_adapter

    family = get_family(cfg.family)
    # Class-level, before any model exists: the policy, TRL's reference model and generate all share it.
    family.install_fixes()
    path, adapter = adapter_base(ensure_model_files(cfg))  # a LoRA adapter dir loads its base + the adapter
    model_type = checkpoint_model_type(path) or AutoConfig.from_pretrained(path).model_type
    check_family(cfg, model_type)
    dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
    model = family.model_class(model_type).from_pretrained(
        path, dtype=dtype, attn_implementation=cfg.attn_implementation
    )
    model = load_adapter(model, adapter)
    processor = AutoProcessor.from_pretrained(path)
    return model, processor
