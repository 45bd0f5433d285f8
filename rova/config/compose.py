"""Compose the Hydra config once and check it against the typed schema.

Every failure becomes one `ConfigError` naming the dotted key, raised before any run directory exists.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
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

from rova.config.checks import _finite, finite_float_fields
from rova.config.schema import RootConfig
from rova.errors import ConfigError

CONFIG_NAME = "config"
# Keys that moved to another home: the old key is refused with the new one named (never silently dropped).
MOVED_KEYS = {
    f"stage.{key}": f"objective.{key}"
    for key in ("loss_type", "beta", "epsilon", "scale_rewards", "mask_truncated_completions")
}


def conf_dir() -> Path:
    """The `conf/` tree that ships next to the `rova` package (the repository root)."""
    return Path(__file__).resolve().parents[2] / "conf"


@functools.lru_cache(maxsize=1)
def _schema() -> DictConfig:
    """The structured RootConfig, built once per process (a third of a validation's time); `OmegaConf.merge` copies
    its first argument, so this one is never changed."""
    return OmegaConf.structured(RootConfig)


def _suggest(key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    try:
        schema = _schema()
        node = OmegaConf.select(schema, parent) if parent else schema
        known = list(node.keys()) if isinstance(node, DictConfig) else []
    except Exception:  # suggestions are best effort; the error itself is already precise
        known = []
    close = difflib.get_close_matches(leaf, known, n=1)
    return f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""


def _unknown_key(key: str) -> ConfigError:
    if key in MOVED_KEYS:
        return ConfigError(key, f"moved to {MOVED_KEYS[key]} (the policy loss is the `objective` group: "
                                f"objective=grpo|dapo|dr_grpo|gspo|cispo|tw_grpo|reg_grpo); set {MOVED_KEYS[key]}=... instead")
    return ConfigError(key, f"unknown key{_suggest(key)}")


def _schema_node(key: str):
    try:
        return OmegaConf.select(_schema(), key, throw_on_missing=False)
    except Exception:  # an invalid path is simply not in the schema
        return None


def _is_open_dict(key: str) -> bool:
    """A `dict[str, ...]` field (cluster.additional_parameters, data.prompt.type_templates): new keys take `+`."""
    parent = _schema_node(key.rpartition(".")[0]) if "." in key else None
    return isinstance(parent, DictConfig) and OmegaConf.get_type(parent) is dict


def _bad_override(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar rejects (its parser names no override)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except Exception:
            return override
    return None


def _hydra_error_to_config_error(exc: Exception, overrides: list[str] = ()) -> ConfigError:
    """Hydra's multi-line messages, rewritten to one line naming the key."""
    text = str(exc)
    match = re.search(r"Could not override '([^']+)'", text)
    if match:
        key = match.group(1)
        if "not in struct" in text or "To append to your config" in text:
            if _is_open_dict(key):
                return ConfigError(key, f"new entry in a dict: add it with +{key}=...")
            return _unknown_key(key)
        detail = text.splitlines()[-1].strip()
        return ConfigError(key, detail)
    match = re.search(r"An item is already at '([^']+)'", text)
    if match:
        key = match.group(1)
        return ConfigError(key, f"is a schema key: set it without '+' ({key}=...)")
    match = re.search(r"Error merging override (\S+)", text)
    if match:
        override = match.group(1)
        cause = exc.__cause__
        key = getattr(cause, "full_key", None) or override.partition("=")[0].lstrip("+~")
        first = (getattr(cause, "msg", None) or str(cause or text)).strip().splitlines()[0]
        if isinstance(cause, ValidationError):
            return ConfigError(key, f"wrong type: {first}")
        return ConfigError(key, first)
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
    override = match.group(1) if match else None
    if override is None and "override_grammar" in text:
        override = _bad_override(list(overrides))
    if override is not None:
        first = text.strip().splitlines()[0]
        return ConfigError(
            override.split("=")[0].lstrip("+~"),
            f"cannot parse override {override!r} ({first}); quote values with spaces or braces: key='...'",
        )
    if isinstance(exc, OmegaConfBaseException) and getattr(exc, "full_key", None):
        return _omegaconf_error_to_config_error(exc)
    return ConfigError("overrides", " ".join(text.split()))


# (conf dir, Hydra object) that `_hydra_on_conf_dir` initialised; compose reuses it while both still hold.
_initialised_hydra: tuple[str, int] | None = None


def _hydra_on_conf_dir() -> None:
    """Initialise Hydra on conf/ once per process, not once per compose (that was 40 % of a compose's time).

    Re-initialised when conf_dir() changes or someone else cleared or replaced Hydra's global instance. Hydra
    reads the YAML files afresh on every compose, so a file edited between two composes is seen.
    """
    global _initialised_hydra
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rova.config.store import register_schema

    directory = str(conf_dir())
    hydra = GlobalHydra.instance()
    if hydra.is_initialized() and _initialised_hydra == (directory, id(hydra.hydra)):
        return
    register_schema()
    hydra.clear()
    initialize_config_dir(config_dir=directory, version_base="1.3")  # initialises the global instance
    _initialised_hydra = (directory, id(GlobalHydra.instance().hydra))


def compose(overrides: list[str], *, return_hydra: bool = False) -> DictConfig:
    """Hydra compose of conf/config.yaml with command-line style overrides (no output dirs, no chdir)."""
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException

    try:
        _hydra_on_conf_dir()
        return hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise _hydra_error_to_config_error(exc, list(overrides)) from exc


def _omegaconf_error_to_config_error(exc: OmegaConfBaseException) -> ConfigError:
    key = getattr(exc, "full_key", None) or "config"
    msg = getattr(exc, "msg", None) or str(exc)
    first = msg.strip().splitlines()[0]
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and "not in" in first.lower():
        return _unknown_key(key)
    if isinstance(exc, MissingMandatoryValue):
        hint = {"data.train_file": " (a Video-R1-schema .json/.jsonl annotation file)",
                "model.path": " (a checkpoint directory or hub id)"}.get(key, "")
        return ConfigError(key, f"required value is missing{hint}: set {key}=... on the command line")
    if isinstance(exc, InterpolationResolutionError):
        return ConfigError(key, f"cannot resolve interpolation: {first}")
    if isinstance(exc, ValidationError):
        return ConfigError(key, f"wrong type: {first}")
    return ConfigError(key, first)


def check_finite(node: DictConfig, prefix: str = "") -> None:
    """Every float key of the merged config (every group, every nested section) holds a finite number.

    Checked on the whole tree before any group's own checks run: NaN passes every range comparison and inf every
    lower bound, so without this `objective.beta=nan` trained and saved a NaN model with exit 0. A field may opt
    out with `field(metadata={"finite": False})` (rova.config.checks.finite_float_fields).
    """
    kind = OmegaConf.get_type(node)
    floats = finite_float_fields(kind) if dataclasses.is_dataclass(kind) else ()
    for key in node.keys():
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            check_finite(value, f"{prefix}{key}.")
        elif key in floats:
            _finite(f"{prefix}{key}", value)


def validate_typed(cfg: DictConfig) -> RootConfig:
    """Merge into the structured schema (types, unknown keys) and instantiate it (ranges, cross-field rules)."""
    try:
        schema = _schema()
        # Resolve interpolations first, then check every value against its declared type.
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        merged = OmegaConf.merge(schema, plain)
        check_finite(merged)
        typed = OmegaConf.to_object(merged)
    except ConfigError as exc:
        # OmegaConf wraps errors raised in __post_init__; the original (with its key) is the cause.
        cause = exc.__cause__
        raise (cause if isinstance(cause, ConfigError) else exc) from None
    except OmegaConfBaseException as exc:
        raise _omegaconf_error_to_config_error(exc) from exc
    assert isinstance(typed, RootConfig)
    return typed


def validate(cfg: DictConfig) -> tuple[DictConfig, RootConfig]:
    """validate_typed, plus the fully resolved DictConfig (what `resolved.yaml` holds: defaults filled in by
    __post_init__ included). Building that DictConfig is half of validate's time: callers that need only the
    typed config use validate_typed / load_typed."""
    typed = validate_typed(cfg)
    return OmegaConf.structured(typed), typed


def load(overrides: list[str]) -> tuple[DictConfig, RootConfig]:
    return validate(compose(overrides))


def load_typed(overrides: list[str]) -> RootConfig:
    """The typed config of these overrides (compose + validate_typed)."""
    return validate_typed(compose(overrides))


def from_resolved_file(path: str | Path) -> tuple[DictConfig, RootConfig]:
    """What workers do: read a resolved.yaml written by the launcher (never re-compose)."""
    return validate(OmegaConf.load(path))
