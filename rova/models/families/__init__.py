"""Model families: one adapter module per family (`base.ModelFamily`), chosen by `model.family`.

Adding a family means: a module here defining `FAMILY` (an instance of a ModelFamily subclass, with its tiny
offline model: `tiny_model` / `tiny_processor`, built by rova.models.tiny), its declaration in
rova/config/model.py's FAMILIES (adapter module, frame factor), and `conf/model/*.yaml` presets with
`family: <name>`. Modules are imported on first use, so choosing a family at config time costs no
transformers import.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from rova.config.model import FAMILIES, family_names
from rova.models.families.base import ClipTiming, EncodedPrompt, ModelFamily

# name -> the module of its adapter, from the one declaration of each family (rova.config.model.FAMILIES)
FAMILY_MODULES = {name: declared.adapter for name, declared in FAMILIES.items()}


@lru_cache(maxsize=None)
def get_family(name: str) -> ModelFamily:
    if name not in FAMILY_MODULES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILY_MODULES)}")
    family = importlib.import_module(FAMILY_MODULES[name]).FAMILY
    if family.name != name:
        raise RuntimeError(f"{FAMILY_MODULES[name]} defines family {family.name!r}, registered as {name!r}")
    return family


def family_of_model_type(model_type: str) -> ModelFamily | None:
    """The family that loads checkpoints of this config.json `model_type`, if any."""
    for name in FAMILY_MODULES:
        family = get_family(name)
        if model_type in family.model_types:
            return family
    return None


def family_of_model(model) -> ModelFamily:
    """The family of a loaded model (any wrapper: PEFT, DDP, DeepSpeed engine), from its config's model_type."""
    seen = model
    for _ in range(4):  # unwrap DDP / DeepSpeed (.module) and PEFT (.base_model.model)
        config = getattr(seen, "config", None)
        family = family_of_model_type(getattr(config, "model_type", "")) if config is not None else None
        if family is not None:
            return family
        seen = getattr(seen, "module", None) or getattr(getattr(seen, "base_model", None), "model", None)
        if seen is None:
            break
    raise ValueError(f"{type(model).__name__}: not a model of any known family ({', '.join(FAMILY_MODULES)})")


__all__ = ["ClipTiming", "EncodedPrompt", "ModelFamily", "family_names", "family_of_model", "family_of_model_type",
           "get_family"]
