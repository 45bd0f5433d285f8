"""What trains (`model.freeze_vision`, `model.lora`), and LoRA adapter directories on disk.

* `prepare_trainable(model, model_cfg)` freezes the vision tower when asked and returns PEFT's LoRA config
  when `model.lora.enabled`. The trainer is handed that config (TRL's `peft_config`) rather than a model we
  wrapped: for a pre-wrapped PeftModel with `objective.beta > 0` TRL 1.16 adds a frozen copy of the adapter named
  "ref" (saved with every checkpoint and the final model as `ref/`), while with `peft_config` the reference is
  the base model with the adapter disabled, which for a fresh LoRA (B = 0) is the same thing. TRL also keeps
  the adapter in the base dtype under ZeRO-3 on that path (mixed bf16 / fp32 parameters break ZeRO-3).
* LoRA targets are module names of the language model only: the vision tower (the inner model's `.visual`;
  its MLP has gate_proj / up_proj / down_proj too) is excluded by its dotted prefix, PEFT's `exclude_modules`.
* A LoRA run saves the adapter (adapter_config.json + adapter_model.safetensors) in run_dir/model;
  `load_adapter` puts base + adapter back together for `model.path=<that dir>`, and `save_merged` writes the
  merged model (`model.lora.save_merged`) as a plain from_pretrained checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from rova.errors import ConfigError, RovaError

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
MERGED_DIR = "merged"


def vision_tower(model):
    """(dotted name, module) of the vision tower: the `visual` of the first module that has one; None without."""
    for module in model.modules():
        tower = getattr(module, "visual", None)
        if tower is not None:
            name = next(name for name, m in model.named_modules() if m is tower)
            return name, tower
    return None


def freeze_vision_tower(model) -> int:
    """requires_grad=False on every vision-tower parameter; returns how many parameters (elements) that froze."""
    found = vision_tower(model)
    if found is None:
        raise RovaError(f"model.freeze_vision: {type(model).__name__} has no vision tower (no module with `.visual`)")
    _, tower = found
    tower.requires_grad_(False)
    return sum(p.numel() for p in tower.parameters())


def lora_config(model, lora_cfg):
    """PEFT's LoraConfig for `model.lora` on this model: its language-model modules named in target_modules."""
    from peft import LoraConfig, TaskType

    found = vision_tower(model)
    exclude = rf"{re.escape(found[0])}\..*" if found is not None else None
    targets = [str(name).strip(". ") for name in lora_cfg.target_modules]
    matched = [
        name for name, _ in model.named_modules()
        if not (exclude and re.fullmatch(exclude, name)) and any(name == t or name.endswith(f".{t}") for t in targets)
    ]
    if not matched:
        raise ConfigError(
            "model.lora.target_modules",
            f"{targets} match no module of the language model of {type(model).__name__} "
            "(names are matched against the end of a module's dotted name; the vision tower is excluded)",
        )
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora_cfg.rank,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=targets,
        exclude_modules=exclude,
    )


def prepare_trainable(model, model_cfg):
    """(model, PEFT LoraConfig or None). Freezes the vision tower with `model.freeze_vision`; with
    `model.lora.enabled` returns the LoRA config the trainer wraps the model with (its `peft_config`)."""
    if model_cfg.freeze_vision:
        frozen = freeze_vision_tower(model)
        log.info("model.freeze_vision: %s vision-tower parameters frozen", f"{frozen:,}")
    peft_config = lora_config(model, model_cfg.lora) if model_cfg.lora.enabled else None
    return model, peft_config


def log_parameter_counts(model) -> tuple[int, int]:
    """Log and return (trainable, total) parameter counts (ZeRO-3 partitioned parameters count their full size)."""
    def size(p) -> int:
        return int(getattr(p, "ds_numel", 0) or p.numel())

    params = list(model.parameters())
    trainable = sum(size(p) for p in params if p.requires_grad)
    total = sum(size(p) for p in params)
    share = 100.0 * trainable / max(total, 1)
    log.info("trainable parameters: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", share)
    return trainable, total


# --------------------------------------------------------------------------------------------- on disk
def adapter_base(path: str) -> tuple[str, str | None]:
    """(base model path, adapter dir) for `model.path`: (path, None) unless it holds an adapter_config.json, whose
    `base_model_name_or_path` is then the base."""
    config = Path(path) / ADAPTER_CONFIG
    if not config.is_file():
        return path, None
    base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise RovaError(f"model.path: {config} names no base_model_name_or_path; set it to the base checkpoint")
    if base.startswith((".", "/", "~")) and not Path(base).expanduser().is_dir():
        raise RovaError(f"model.path: the base model of {config}, {base}, does not exist; "
                        "edit base_model_name_or_path there to where the base checkpoint is now")
    return base, path


def load_adapter(model, adapter_dir: str | None):
    """`model` with the LoRA adapter of `adapter_dir` merged into its weights (a plain model again, so every
    consumer -- eval, generation, another training stage -- sees an ordinary checkpoint); `model` when None."""
    if adapter_dir is None:
        return model
    from peft import PeftModel

    log.info("loading the LoRA adapter %s onto its base model (merged)", adapter_dir)
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()


def save_merged(adapter_dir: Path, model_cfg) -> Path:
    """Write base + adapter merged to adapter_dir/merged with the processor (one process; the folder appears
    whole: it is written beside it and renamed into place)."""
    from rova.models.loading import load_model_and_processor

    adapter_dir = Path(adapter_dir)
    model, processor = load_model_and_processor(replace(model_cfg, path=str(adapter_dir), build_tiny=False))
    target = adapter_dir / MERGED_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{MERGED_DIR}.", dir=adapter_dir))
    try:
        model.save_pretrained(str(staging))
        processor.save_pretrained(str(staging))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
