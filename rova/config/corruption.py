"""The corruption catalogue, and the `corruption.*` settings derived from it.

`CATALOGUE` names every corruption variant with its family, its options (each one set for every clip by one
`corruption.<key>`) and whether its family's default mix draws it. The implementations live in
rova/corruption/<family>.py (one `Variant` each); rova.corruption.engine checks at import that they match the
catalogue. So adding a variant is two things: its `Variant` in its family module and its entry below. Everything
else is derived from the catalogue: the names (`FAMILIES`, `VARIANTS`, ...), the `CorruptionConfig` keys
(`p_<family>`, `<family>_variants`, one key per option), their defaults and validation, the options the engine
hands a variant, and the names `eval.corruptions` accepts.

Validation happens in `__post_init__`, i.e. when OmegaConf turns the composed config into the dataclass
(`OmegaConf.to_object`), before anything is spawned. Every error names its dotted key. No numpy/OpenCV import
here: config errors must be instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from rova.errors import ConfigError

PREFIX = "corruption"


@dataclass(frozen=True)
class Option:
    """A variant option, set for every clip by `corruption.<key>` (variants may share a key). The first value is
    the default; "any" draws one of the other values per clip (and records it)."""

    key: str
    values: tuple


@dataclass(frozen=True)
class Entry:
    """One variant: its family, its options (the name the variant reads -> Option), and whether the family's
    default `<family>_variants` list draws it."""

    family: str
    options: Mapping[str, Option] = field(default_factory=dict)
    in_default_mix: bool = True


OCCLUSION_FILL = Option("occlusion_fill", ("black", "mean", "noise", "any"))

# Variants grouped by family, families in the order of their `p_<family>` keys. Variant names are unique across
# families, so a spec needs only the variant.
CATALOGUE: dict[str, Entry] = {
    "overexposure": Entry("photometric"),
    "dusk": Entry("photometric"),
    "night": Entry("photometric"),
    "shadows": Entry("photometric"),
    "contrast": Entry("photometric"),
    "rain": Entry("weather"),
    "storm": Entry("weather"),
    "snow": Entry("weather"),
    "hail": Entry("weather"),
    "fog": Entry("weather"),
    "static_blocks": Entry("occlusion", {"fill": OCCLUSION_FILL}),
    "moving_blocks": Entry("occlusion", {"fill": OCCLUSION_FILL}),
    "camera_shake": Entry("shake", {"motion_blur": Option("shake_motion_blur", (True, False))}),
    "frame_drop": Entry(
        "temporal",
        {
            "mode": Option("frame_drop_mode", ("random", "segment", "keep_k", "any")),
            "fill": Option("frame_drop_fill", ("hold", "black")),
        },
    ),
    # Available, but it is T-GRPO's shuffled branch rather than a degradation: drawn only when listed.
    "shuffle": Entry("temporal", in_default_mix=False),
}

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# ---------------------------------------------------------------------------------------------------------------
# Derived from CATALOGUE.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(entry.family for entry in CATALOGUE.values()))
VARIANTS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    family: tuple(name for name, entry in CATALOGUE.items() if entry.family == family) for family in FAMILIES
}
# Every variant name, family by family.
VARIANTS: tuple[str, ...] = tuple(v for f in FAMILIES for v in VARIANTS_BY_FAMILY[f])
# variant -> family
FAMILY_OF: dict[str, str] = {v: f for f, vs in VARIANTS_BY_FAMILY.items() for v in vs}
# variant -> {option name -> allowed values (the first is the default)}, for the variants that take options.
OPTIONS: dict[str, dict[str, tuple]] = {
    name: {option: spec.values for option, spec in entry.options.items()}
    for name, entry in CATALOGUE.items()
    if entry.options
}


def _option_keys() -> dict[str, Option]:
    """The `corruption.*` key of every option, each once, in catalogue order."""
    keys: dict[str, Option] = {}
    for name, entry in CATALOGUE.items():
        for option in entry.options.values():
            if keys.setdefault(option.key, option) != option:
                raise ValueError(f"catalogue: {name} declares corruption.{option.key} with other values than "
                                 f"another variant ({keys[option.key].values} vs {option.values})")
    return keys


OPTION_KEYS: dict[str, Option] = _option_keys()


class CorruptionConfig:
    """The `corruption.*` settings. Its fields are declared from the catalogue (`_declare_fields` below):

    p_<family>          float, 0.0: probability that a clip gets a corruption of that family; 1 - sum is the
                        clean remainder.
    severity            [lo, hi], [1, 5]: severity drawn uniformly from lo..hi (both in 1..5); [3, 3] fixes it.
    <family>_variants   the family's variants drawn uniformly once the family is picked (default: its catalogue
                        variants with in_default_mix).
    <option key>        each Option's key (occlusion_fill, frame_drop_mode, ...), default its first value.
    """

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
        for key, option in OPTION_KEYS.items():
            self._check_option(key, option.values)

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

    def _check_option(self, key: str, choices: tuple) -> None:
        value = getattr(self, key)
        if all(isinstance(c, bool) for c in choices):
            if not isinstance(value, bool):
                raise ConfigError(f"{PREFIX}.{key}", f"must be true or false, got {value!r}")
        elif value not in choices:
            raise ConfigError(f"{PREFIX}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")

    @property
    def p_clean(self) -> float:
        return max(0.0, 1.0 - sum(getattr(self, f"p_{f}") for f in FAMILIES))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CorruptionConfig:
        """Build from a plain mapping (e.g. `OmegaConf.to_container(cfg.corruption)`), naming any
        unknown key. Missing keys take the defaults."""
        names = {f.name for f in fields(cls)}
        for key in values:
            if key not in names:
                raise ConfigError(f"{PREFIX}.{key}", f"unknown key; valid keys: {', '.join(sorted(names))}")
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items()})


def _declare_fields(cls: type) -> type:
    """Give `cls` one annotated field per key the catalogue implies (see CorruptionConfig), then make it a
    dataclass: OmegaConf and Hydra's ConfigStore see an ordinary dataclass."""
    declared: dict[str, tuple[type, Any]] = {f"p_{family}": (float, 0.0) for family in FAMILIES}
    declared["severity"] = (list[int], field(default_factory=lambda: [SEVERITIES[0], SEVERITIES[-1]]))
    for family in FAMILIES:
        mix = [v for v in VARIANTS_BY_FAMILY[family] if CATALOGUE[v].in_default_mix]
        declared[f"{family}_variants"] = (list[str], field(default_factory=lambda mix=mix: list(mix)))
    for key, option in OPTION_KEYS.items():
        if key in declared or hasattr(cls, key):
            raise ValueError(f"catalogue: option key corruption.{key} clashes with another corruption key")
        declared[key] = (bool if all(isinstance(v, bool) for v in option.values) else str, option.values[0])
    cls.__annotations__ = {key: kind for key, (kind, _) in declared.items()}
    for key, (_, default) in declared.items():
        setattr(cls, key, default)
    return dataclass(cls)


CorruptionConfig = _declare_fields(CorruptionConfig)
