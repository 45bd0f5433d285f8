"""The corruption contract: spec + seed in, corrupted clip + replayable record out.

    out, record = corrupt(clip, CorruptionSpec("rain", 3), seed=7)
    assert np.array_equal(replay(clip, record), out)

`corrupt` is a pure function of (clip, spec, seed): all randomness comes from a Generator seeded by
`seed`, and the input clip is never modified. The record carries every drawn parameter (plain JSON),
and `replay` recomputes the output from the record's parameters alone.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from rova.config.corruption import CATALOGUE, FAMILIES, FAMILY_OF, VARIANTS_BY_FAMILY
from rova.corruption.base import Variant, check_clip, resolve_choice

if TYPE_CHECKING:
    from rova.config.corruption import CorruptionConfig


def _registry() -> dict[str, Variant]:
    """Every catalogued variant's implementation, in catalogue order: module rova.corruption.<family> lists the
    `VARIANTS` of its family, exactly those the catalogue (rova/config/corruption.py) names for it."""
    registry: dict[str, Variant] = {}
    for family in FAMILIES:
        module = f"rova.corruption.{family}"
        implemented = [v.name for v in importlib.import_module(module).VARIANTS]
        if sorted(implemented) != sorted(VARIANTS_BY_FAMILY[family]):
            raise RuntimeError(
                f"{module}.VARIANTS implements {implemented}, but the catalogue (rova/config/corruption.py) lists "
                f"{list(VARIANTS_BY_FAMILY[family])} for {family}: add the missing entry or implementation"
            )
        by_name = {v.name: v for v in importlib.import_module(module).VARIANTS}
        registry.update((name, by_name[name]) for name in VARIANTS_BY_FAMILY[family])
    return registry


REGISTRY: dict[str, Variant] = _registry()


@dataclass(frozen=True)
class CorruptionSpec:
    """What to apply: a variant (names in VARIANTS), a severity 1-5, and variant options.

    Options (name -> allowed values) are those of the variant's catalogue entry, rova/config/corruption.py
    (e.g. frame_drop {"mode": random|segment|keep_k|any, "fill": hold|black}). Missing options take their
    default (the first value listed); "any" is drawn per clip.
    """

    variant: str
    severity: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILY_OF[self.variant]


@dataclass
class CorruptionRecord:
    """Everything needed to reproduce one corrupted clip; JSON-serialisable via to_dict()."""

    family: str
    variant: str
    severity: int
    seed: int
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "variant": self.variant,
            "severity": self.severity,
            "seed": self.seed,
            "params": copy.deepcopy(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorruptionRecord:
        expected = {"family", "variant", "severity", "seed", "params"}
        if set(data) != expected:
            raise ValueError(
                f"corruption record must have exactly the keys {sorted(expected)}, got {sorted(data)}"
            )
        variant = data["variant"]
        if variant not in REGISTRY:
            raise ValueError(f"corruption record names unknown variant {variant!r}; known: {', '.join(REGISTRY)}")
        if data["family"] != FAMILY_OF[variant]:
            raise ValueError(
                f"corruption record: variant {variant!r} belongs to {FAMILY_OF[variant]!r}, "
                f"not {data['family']!r}"
            )
        return cls(
            family=str(data["family"]),
            variant=str(variant),
            severity=int(data["severity"]),
            seed=int(data["seed"]),
            params=copy.deepcopy(dict(data["params"])),
        )

    @property
    def spec(self) -> CorruptionSpec:
        options = {k: self.params[k] for k in REGISTRY[self.variant].options if k in self.params}
        return CorruptionSpec(self.variant, self.severity, options)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _resolve_options(spec: CorruptionSpec, seed: int) -> dict[str, Any]:
    variant = REGISTRY[spec.variant]
    unknown = set(spec.options) - set(variant.options)
    if unknown:
        allowed = ", ".join(variant.options) or "none"
        raise ValueError(f"variant {spec.variant!r} has no option(s) {sorted(unknown)}; it takes: {allowed}")
    options = {}
    for name, choices in variant.options.items():
        value = spec.options.get(name, choices[0])
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise ValueError(f"{spec.variant} option {name}={value!r} is not one of {list(choices)}")
        options[name] = value
    if any(v == "any" for v in options.values()):
        # A stream of its own, so that the concrete choice (kept in the record) replays the same
        # draws: corrupt(clip, record.spec, record.seed) == out.
        choice_rng = np.random.default_rng([seed, 2])
        options = {
            k: resolve_choice(choice_rng, v, variant.options[k]) if v == "any" else v for k, v in options.items()
        }
    return options


def _check_spec(spec: CorruptionSpec) -> None:
    if not isinstance(spec, CorruptionSpec):
        raise TypeError(f"spec must be a CorruptionSpec, got {type(spec).__name__}")
    if spec.variant not in REGISTRY:
        raise ValueError(f"unknown corruption variant {spec.variant!r}; known: {', '.join(REGISTRY)}")
    severity = spec.severity
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer 1-5, got {spec.severity!r}")


def _to_json_value(value: Any) -> Any:
    """numpy scalars/arrays -> plain Python, so records survive json round trips unchanged."""
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_json_value(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def corrupt(clip: np.ndarray, spec: CorruptionSpec, seed: int) -> tuple[np.ndarray, CorruptionRecord]:
    """Apply one corruption to a uint8 [T, H, W, 3] clip; returns a new array of the same shape and
    dtype and the record of every drawn parameter. Pure: same (clip, spec, seed) -> same bytes."""
    clip = check_clip(clip)
    _check_spec(spec)
    seed = _check_seed(seed)
    variant = REGISTRY[spec.variant]
    rng = np.random.default_rng(seed)
    params = _to_json_value(variant.draw(rng, int(spec.severity), clip, _resolve_options(spec, seed)))
    record = CorruptionRecord(variant.family, variant.name, int(spec.severity), seed, params)
    return _apply(clip, variant, params), record


def replay(clip: np.ndarray, record: CorruptionRecord | Mapping[str, Any]) -> np.ndarray:
    """Recompute a corrupted clip from its record (or the record's dict): identical bytes."""
    if not isinstance(record, CorruptionRecord):
        record = CorruptionRecord.from_dict(record)
    clip = check_clip(clip)
    if record.variant not in REGISTRY:
        raise ValueError(f"record names unknown variant {record.variant!r}; known: {', '.join(REGISTRY)}")
    try:
        return _apply(clip, REGISTRY[record.variant], record.params)
    except KeyError as missing:
        raise ValueError(f"{record.variant} record lacks parameter {missing}; was it edited by hand?") from None


def _apply(clip: np.ndarray, variant: Variant, params: dict[str, Any]) -> np.ndarray:
    out = variant.apply(clip, params)
    assert out.shape == clip.shape and out.dtype == np.uint8, (variant.name, out.shape, out.dtype)
    return out


def draw_corruption(cfg: CorruptionConfig, rng: np.random.Generator) -> CorruptionSpec | None:
    """One draw per clip: pick a family with the config's probabilities (None = the clean
    remainder), then a variant uniformly from that family's list and a severity uniformly from the
    configured range."""
    u = rng.random()
    cumulative = 0.0
    for family in FAMILIES:
        cumulative += getattr(cfg, f"p_{family}")
        if u < cumulative:
            variants = getattr(cfg, f"{family}_variants")
            variant = variants[int(rng.integers(len(variants)))]
            lo, hi = cfg.severity
            severity = int(rng.integers(lo, hi + 1))
            return CorruptionSpec(variant, severity, options_for(cfg, variant))
    return None


def options_for(cfg: CorruptionConfig, variant: str) -> dict[str, Any]:
    """The config's options for one variant, as CorruptionSpec.options: each option's `corruption.<key>`."""
    return {name: getattr(cfg, option.key) for name, option in CATALOGUE[variant].options.items()}


def apply_random_corruption(
    clip: np.ndarray, cfg: CorruptionConfig, seed: int
) -> tuple[np.ndarray, CorruptionRecord | None]:
    """Draw a corruption from the config and apply it, one draw per clip. On the clean remainder the
    input itself comes back (no copy; made C-contiguous if it was not) with record None."""
    seed = _check_seed(seed)
    # The draw uses its own stream ([seed, 1]) so that `corrupt(clip, record.spec, record.seed)`
    # reproduces the output from the logged seed alone.
    spec = draw_corruption(cfg, np.random.default_rng([seed, 1]))
    if spec is None:
        return check_clip(clip), None
    return corrupt(clip, spec, seed)
