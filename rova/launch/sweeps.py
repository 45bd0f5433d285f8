"""Multirun expansion: `-m a=1,2 b=x,y` and ready-made sweep files (`+sweep=NAME` -> sweeps/NAME.yaml)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rova.errors import ConfigError


def sweeps_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "sweeps"


def available_sweeps() -> list[str]:
    return sorted(p.stem for p in sweeps_dir().glob("*.yaml"))


def load_sweep(name: str) -> list[str]:
    """A sweep file holds `fixed:` overrides (applied to every job) and `params:` (key: comma-separated values)."""
    path = sweeps_dir() / f"{name}.yaml"
    if not path.exists():
        raise ConfigError("sweep", f"no sweep {name!r}; available: {', '.join(available_sweeps())}")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - {"description", "fixed", "params"}
    if unknown:
        raise ConfigError("sweep", f"{path.name}: unknown section(s) {sorted(unknown)}; allowed: description, fixed, params")
    overrides = [f"{k}={_as_override(v)}" for k, v in (spec.get("fixed") or {}).items()]
    overrides += [f"{k}={_as_override(v)}" for k, v in (spec.get("params") or {}).items()]
    return overrides


def _as_override(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def extract_sweep_files(overrides: list[str]) -> list[str]:
    """Replace `+sweep=NAME` (or `sweep=NAME`) with the sweep's overrides; explicit overrides win (they come last)."""
    expanded: list[str] = []
    explicit: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+") == "sweep":
            for name in value.split(","):
                expanded += load_sweep(name.strip())
        else:
            explicit.append(item)
    explicit_keys = {o.partition("=")[0].lstrip("+~") for o in explicit}
    expanded = [o for o in expanded if o.partition("=")[0].lstrip("+~") not in explicit_keys]
    return expanded + explicit


def expand(overrides: list[str]) -> list[list[str]]:
    """The cartesian product of every swept override, as Hydra's basic sweeper orders it."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides=[_encode_step(o) for o in overrides])
        batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except HydraException as exc:
        raise ConfigError("overrides", " ".join(str(exc).split())) from exc
    return [[_decode_step(o) for o in job] for batch in batches for job in batch]


# A recipe's per-step override, `STEP:key=value` (rova.recipe.plan applies it to that step only).
STEP_OVERRIDE = re.compile(r"^([a-z][a-z0-9_]*):(.+)$")

# A recipe's `STEP:key=value` override is not Hydra syntax: swept under a key Hydra parses, then restored.
_STEP_PREFIX = "__rova_step__"


def _encode_step(override: str) -> str:
    match = STEP_OVERRIDE.match(override)
    if match and "=" not in match.group(1):
        return f"{_STEP_PREFIX}{match.group(1)}.{match.group(2)}"
    return override


def _decode_step(override: str) -> str:
    if override.startswith(_STEP_PREFIX):
        step, _, rest = override[len(_STEP_PREFIX):].partition(".")
        return f"{step}:{rest}"
    return override
