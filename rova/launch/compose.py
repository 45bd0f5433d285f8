"""Compose the Hydra config once and check it against the typed schema.

Every failure becomes one `ConfigError` naming the dotted key, raised before any run directory exists.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from rova.config.schema import RootConfig
from rova.errors import ConfigError

CONFIG_NAME = "config"


def conf_dir() -> Path:
    """The `conf/` tree that ships next to the `rova` package (the repository root)."""
    return Path(__file__).resolve().parents[2] / "conf"


def _suggest(key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    try:
        schema = OmegaConf.structured(RootConfig)
        node = OmegaConf.select(schema, parent) if parent else schema
        known = list(node.keys()) if isinstance(node, DictConfig) else []
    except Exception:  # suggestions are best effort; the error itself is already precise
        known = []
    close = difflib.get_close_matches(leaf, known, n=1)
    return f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""


def _schema_has(key: str) -> bool:
    try:
        return OmegaConf.select(OmegaConf.structured(RootConfig), key, throw_on_missing=False) is not None
    except Exception:  # an invalid path is simply not in the schema
        return False


def _hydra_error_to_config_error(exc: Exception) -> ConfigError:
    text = str(exc)
    match = re.search(r"Could not override '([^']+)'", text)
    if match:
        key = match.group(1)
        if "not in struct" in text or "To append to your config" in text:
            if _schema_has(key):
                return ConfigError(key, f"takes its default from the schema; set it with +{key}=...")
            return ConfigError(key, f"unknown key{_suggest(key)}")
        detail = text.splitlines()[-1].strip()
        return ConfigError(key, detail)
    match = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if match:
        group, option = match.groups()
        options = sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
        return ConfigError(group, f"no option {option!r}; available: {', '.join(options)}")
    match = re.search(r"Could not load '([^'/]+)/([^']+)'", text)
    if match:
        group, option = match.groups()
        return ConfigError(group, f"could not load option {option!r}: {text.splitlines()[-1]}")
    match = re.search(r"Error parsing override '([^']+)'", text)
    if match:
        override = match.group(1)
        return ConfigError(override.split("=")[0].lstrip("+~"), f"cannot parse override {override!r}")
    return ConfigError("overrides", " ".join(text.split()))


def compose(overrides: list[str], *, return_hydra: bool = False) -> DictConfig:
    """Hydra compose of conf/config.yaml with command-line style overrides (no output dirs, no chdir)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise _hydra_error_to_config_error(exc) from exc
    finally:
        GlobalHydra.instance().clear()


def _omegaconf_error_to_config_error(exc: OmegaConfBaseException) -> ConfigError:
    key = getattr(exc, "full_key", None) or "config"
    msg = getattr(exc, "msg", None) or str(exc)
    first = msg.strip().splitlines()[0]
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and "not in" in first.lower():
        return ConfigError(key, f"unknown key{_suggest(key)}")
    if isinstance(exc, MissingMandatoryValue):
        hint = {"data.train_file": " (a Video-R1-schema .json/.jsonl annotation file)",
                "model.path": " (a checkpoint directory or hub id)"}.get(key, "")
        return ConfigError(key, f"required value is missing{hint}: set {key}=... on the command line")
    if isinstance(exc, InterpolationResolutionError):
        return ConfigError(key, f"cannot resolve interpolation: {first}")
    if isinstance(exc, ValidationError):
        return ConfigError(key, f"wrong type: {first}")
    return ConfigError(key, first)


def validate(cfg: DictConfig) -> tuple[DictConfig, RootConfig]:
    """Merge into the structured schema (types, unknown keys) and instantiate it (ranges, cross-field rules).

    Returns the fully resolved DictConfig (what `resolved.yaml` holds) and the typed RootConfig.
    """
    try:
        schema = OmegaConf.structured(RootConfig)
        # Resolve interpolations first, then check every value against its declared type.
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        merged = OmegaConf.merge(schema, plain)
        typed = OmegaConf.to_object(merged)
    except ConfigError as exc:
        # OmegaConf wraps errors raised in __post_init__; the original (with its key) is the cause.
        cause = exc.__cause__
        raise (cause if isinstance(cause, ConfigError) else exc) from None
    except OmegaConfBaseException as exc:
        raise _omegaconf_error_to_config_error(exc) from exc
    assert isinstance(typed, RootConfig)
    resolved = OmegaConf.structured(typed)  # defaults filled in by __post_init__ appear in resolved.yaml
    return resolved, typed


def load(overrides: list[str]) -> tuple[DictConfig, RootConfig]:
    return validate(compose(overrides))


def from_resolved_file(path: str | Path) -> tuple[DictConfig, RootConfig]:
    """What workers do: read a resolved.yaml written by the launcher (never re-compose)."""
    return validate(OmegaConf.load(path))
