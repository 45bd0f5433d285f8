"""`corruption.*` config schema: the field names are the keys of conf/corruption/*.yaml.

Validation happens in `__post_init__`, i.e. when OmegaConf turns the composed config into this
dataclass (`OmegaConf.to_object`), before anything is spawned. Every error names its dotted key.
No numpy/OpenCV import here: config errors must be instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from rova.corruption.catalogue import (
    FAMILIES,
    FRAME_DROP_FILLS,
    FRAME_DROP_MODES,
    OCCLUSION_FILLS,
    SEVERITIES,
    VARIANTS_BY_FAMILY,
)
from rova.errors import ConfigError

PREFIX = "corruption"


@dataclass
class CorruptionConfig:
    # Probability that a clip gets a corruption of each family; 1 - sum is the clean remainder.
    p_photometric: float = 0.0
    p_weather: float = 0.0
    p_occlusion: float = 0.0
    p_shake: float = 0.0
    p_temporal: float = 0.0
    # [lo, hi]: severity drawn uniformly from lo..hi (both in 1..5); [3, 3] fixes it.
    severity: list[int] = field(default_factory=lambda: [1, 5])
    # Variants drawn uniformly within a family once the family is picked.
    photometric_variants: list[str] = field(default_factory=lambda: list(VARIANTS_BY_FAMILY["photometric"]))
    weather_variants: list[str] = field(default_factory=lambda: list(VARIANTS_BY_FAMILY["weather"]))
    occlusion_variants: list[str] = field(default_factory=lambda: list(VARIANTS_BY_FAMILY["occlusion"]))
    shake_variants: list[str] = field(default_factory=lambda: list(VARIANTS_BY_FAMILY["shake"]))
    temporal_variants: list[str] = field(default_factory=lambda: ["frame_drop"])
    occlusion_fill: str = "black"  # black | mean | noise | any (drawn per clip)
    frame_drop_mode: str = "random"  # random | segment | keep_k | any (drawn per clip)
    frame_drop_fill: str = "hold"  # hold (repeat the previous kept frame) | black
    shake_motion_blur: bool = True

    def __post_init__(self) -> None:
        total = 0.0
        for family in FAMILIES:
            key = f"p_{family}"
            p = getattr(self, key)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ConfigError(f"{PREFIX}.{key}", f"must be a probability in [0, 1], got {p!r}")
            total += p
        if total > 1.0 + 1e-9:
            keys = " + ".join(f"{PREFIX}.p_{f}" for f in FAMILIES)
            parts = ", ".join(f"p_{f}={getattr(self, f'p_{f}')}" for f in FAMILIES)
            raise ConfigError(
                keys,
                f"the family probabilities sum to {total:g} > 1 ({parts}); lower some of them "
                "(1 - sum is the probability of a clean clip)",
            )
        self._check_severity()
        for family in FAMILIES:
            self._check_variants(family)
        self._check_choice("occlusion_fill", OCCLUSION_FILLS)
        self._check_choice("frame_drop_mode", FRAME_DROP_MODES)
        self._check_choice("frame_drop_fill", FRAME_DROP_FILLS)
        if not isinstance(self.shake_motion_blur, bool):
            raise ConfigError(f"{PREFIX}.shake_motion_blur", f"must be true or false, got {self.shake_motion_blur!r}")

    def _check_severity(self) -> None:
        sev = list(self.severity) if isinstance(self.severity, (list, tuple)) else None
        lo_all, hi_all = SEVERITIES[0], SEVERITIES[-1]
        if (
            sev is None
            or len(sev) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in sev)
            or not lo_all <= sev[0] <= sev[1] <= hi_all
        ):
            raise ConfigError(
                f"{PREFIX}.severity",
                f"must be [lo, hi] with {lo_all} <= lo <= hi <= {hi_all} (e.g. [1, 5], or [3, 3] for a fixed level), "
                f"got {self.severity!r}",
            )

    def _check_variants(self, family: str) -> None:
        key = f"{family}_variants"
        variants = list(getattr(self, key))
        known = VARIANTS_BY_FAMILY[family]
        unknown = [v for v in variants if v not in known]
        if unknown:
            raise ConfigError(f"{PREFIX}.{key}", f"unknown variant(s) {unknown}; {family} has: {', '.join(known)}")
        if len(set(variants)) != len(variants):
            raise ConfigError(f"{PREFIX}.{key}", f"lists a variant twice: {variants}")
        if not variants and getattr(self, f"p_{family}") > 0:
            raise ConfigError(
                f"{PREFIX}.{key}", f"is empty but {PREFIX}.p_{family} > 0; list variants or set p_{family}: 0"
            )

    def _check_choice(self, key: str, choices: tuple) -> None:
        value = getattr(self, key)
        if value not in choices:
            raise ConfigError(f"{PREFIX}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")

    @property
    def p_clean(self) -> float:
        return max(0.0, 1.0 - sum(getattr(self, f"p_{f}") for f in FAMILIES))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CorruptionConfig:
        """Build from a plain mapping (e.g. `OmegaConf.to_container(cfg.corruption)`), naming any
        unknown key. Missing keys take the defaults above."""
        names = {f.name for f in fields(cls)}
        for key in values:
            if key not in names:
                raise ConfigError(f"{PREFIX}.{key}", f"unknown key; valid keys: {', '.join(sorted(names))}")
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items()})
