"""The `model.*` settings: a checkpoint of a model family, and its LoRA adapters (`model.lora.*`).

Every model family is declared here, once (`FAMILIES`): its name, the module of its adapter (rova.models.families
imports it on first use) and its frame-size factor, which compose-time validation needs without importing the
adapter. A test checks each adapter agrees with its declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from rova.config.checks import _choice, _positive
from rova.errors import ConfigError

class FamilyDeclaration(NamedTuple):
    adapter: str        # the module defining FAMILY, its ModelFamily (rova/models/families/<name>.py)
    frame_factor: int   # patch size x merge size: frame sides are multiples of it


FAMILIES: dict[str, FamilyDeclaration] = {
    "qwen2_5_vl": FamilyDeclaration("rova.models.families.qwen2_5_vl", 14 * 2),
    "qwen3_vl": FamilyDeclaration("rova.models.families.qwen3_vl", 16 * 2),
}


# The random-init architectures model.build_tiny builds (rova.models.tiny.SPECS holds their sizes).
BUILD_SPECS = ("tiny", "small")


def family_names() -> tuple[str, ...]:
    return tuple(FAMILIES)


# The language model's attention and MLP projections. PEFT matches each name against the end of a module's
# dotted name; the vision tower (whose MLP also has gate_proj / up_proj / down_proj) is always excluded by
# rova.models.lora, which hands PEFT the tower's prefix as `exclude_modules`.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraConfig:
    """LoRA adapters through PEFT (rova/models/lora.py): only the adapters train; the base weights stay as loaded."""

    enabled: bool = False
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    # Module names (or dotted suffixes, e.g. "self_attn.q_proj") of the language model; never the vision tower.
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGET_MODULES))
    save_merged: bool = False  # also write run_dir/model/merged: base + adapter as one from_pretrained checkpoint

    def __post_init__(self) -> None:
        _positive("model.lora.rank", self.rank)
        _positive("model.lora.alpha", self.alpha)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.lora.dropout", f"got {self.dropout!r}; must be in [0, 1)")
        if not self.target_modules:
            raise ConfigError("model.lora.target_modules", "empty: name at least one module (e.g. q_proj)")
        blank = [name for name in self.target_modules if not str(name).strip(". ")]
        if blank:
            raise ConfigError("model.lora.target_modules", f"got {list(self.target_modules)}; a name is blank")


@dataclass
class ModelConfig:
    """A checkpoint of a model family (rova/models/families): a local directory or a hub id (hub ids need network
    at run time). The family decides the frame-size factor, the video metadata and the vision tokens.

    `path` may also be a LoRA adapter directory (a LoRA run's model/, or one of its checkpoints): its base model
    is loaded and the adapter merged in (rova.models.lora.load_adapter).
    """

    name: str = "tiny"
    family: str = "???"                # a declared family: FAMILIES above
    path: str = "???"
    build_tiny: bool = False            # build a random-init model of `build_spec`'s sizes into `path` on first use
    build_spec: str = "tiny"            # tiny (2 layers: fast tests) or small (learns the shapes task on a CPU)
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    share_vision_encoding: bool = True  # one vision-tower run per distinct clip per pass (False: one per completion)
    freeze_vision: bool = False  # the vision tower's parameters get requires_grad=False (with or without LoRA)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        # "???" (MISSING) is reported by OmegaConf when the config is instantiated; only reject empty values.
        if not self.path:
            raise ConfigError("model.path", "required: a checkpoint directory or hub id")
        _choice("model.build_spec", self.build_spec, BUILD_SPECS)
        _choice("model.dtype", self.dtype, ("float32", "bfloat16", "float16", "auto"))
        _choice("model.attn_implementation", self.attn_implementation, ("sdpa", "eager", "flash_attention_2"))
        if self.family != "???":  # MISSING until a model preset (conf/model/*.yaml) sets it
            _choice("model.family", self.family, family_names())

    @property
    def image_factor(self) -> int:
        """Frame sides are multiples of this (the family's patch size x merge size)."""
        return FAMILIES[self.family].frame_factor
