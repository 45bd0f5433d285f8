"""Which settings shape a run's results, and the one relaunch check every run dir passes (single stages and
the steps of a recipe alike).

The rule: every key of the resolved config shapes the results of the stage it runs, except
  1. `RELAUNCH_FREE`: where and how a run is placed, logged and scheduled (`run.*`, `logger.*`, `cluster.*`,
     `recipe.*`: a step's recipe keys are emptied) and knobs that change speed only (`distributed.master_port`,
     `data.probe_workers`);
  2. the stage's own `StageSpec.free` (rova/config/stage.py): groups the stage never reads (a training stage
     reads no `eval.*`) and its throughput knobs (eval: `eval.batch_size`, `eval.shards`, the process count).
A key is free when it equals an entry or lies under one (`cluster` covers `cluster.partition`). `stage.name`
always shapes. `distributed.*` shapes a training stage's results (the global batch is the per-device batch
times the processes) and cot's (its sampling is seeded per generate call, whose items the sharding picks).
Anything not declared free shapes the results: a new key is checked until someone frees it.
A key absent from an older run dir's record (added to the schema since) matches when the new value is its
schema default.

A relaunch into a run dir whose record differs in a key that shapes the results is refused, naming the first
such key (config order) with the old and the new value. The one exception is the stage's `extend_key`
(`stage.max_steps` for the training stages): with `run.extend=true` it may grow, and the launcher records the
extension in the run dir's launches.jsonl.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rova.config.stage import StageSpec, get_spec
from rova.errors import ConfigError
from rova.utils.mapping import flatten

RELAUNCH_FREE = ("run", "logger", "cluster", "recipe", "distributed.master_port", "data.probe_workers")
ALWAYS_SHAPES = ("stage.name",)
ABSENT = "<absent>"


def _under(key: str, entries: tuple[str, ...]) -> bool:
    return any(key == entry or key.startswith(entry + ".") for entry in entries)


def shapes_results(key: str, spec: StageSpec) -> bool:
    """Whether `key` (dotted) shapes the results of `spec`'s stage (the rule in this module's docstring)."""
    if key in ALWAYS_SHAPES:
        return True
    return not _under(key, RELAUNCH_FREE + tuple(spec.free))


def result_settings(resolved: Mapping) -> dict[str, Any]:
    """The flat `key -> value` settings that shape the results of the stage `resolved` runs (config order)."""
    flat = flatten(resolved)
    spec = get_spec(str(flat.get("stage.name")))
    return {key: value for key, value in flat.items() if shapes_results(key, spec)}


def fingerprint(resolved: Mapping) -> str:
    """A short hash of result_settings: equal for two configs exactly when a relaunch between them is accepted
    without run.extend."""
    text = json.dumps(result_settings(resolved), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=1)
def _schema_defaults() -> dict[str, Any]:
    from omegaconf import OmegaConf

    from rova.config.schema import RootConfig

    return flatten(OmegaConf.to_container(OmegaConf.structured(RootConfig()), resolve=True))


def check_relaunch(old: Mapping, new: Mapping, *, extend: bool, where: str, key_prefix: str = "") -> dict[str, list]:
    """Refuse (ConfigError naming the first differing key, old and new value) a launch whose settings `new`
    differ from the run dir's record `old` in a key that shapes the results; both are resolved configs as
    plain mappings. Returns the keys extended with run.extend: {key: [old, new]} (empty when nothing grew)."""
    old_flat, new_flat = flatten(old), flatten(new)
    name = str(new_flat.get("stage.name"))
    spec = get_spec(name)
    if extend and spec.extend_key is None:
        raise ConfigError(f"{key_prefix}run.extend", f"stage {name!r} has nothing to extend (run.extend grows a "
                          "training stage's stage.max_steps); drop run.extend")
    defaults = _schema_defaults()
    extended: dict[str, list] = {}
    for key, now in new_flat.items():  # a key only the old record has left the schema: it shapes nothing now
        if not shapes_results(key, spec):
            continue
        was = old_flat[key] if key in old_flat else defaults.get(key, ABSENT)
        if was == now:
            continue
        label = f"{key_prefix}{key}"
        if extend and key == spec.extend_key and isinstance(was, int) and isinstance(now, int):
            if now < was:
                raise ConfigError(label, f"{where} was made with {key}={was!r}; run.extend=true only lets it grow, "
                                  f"this launch gives {now!r}")
            extended[key] = [was, now]
            continue
        hint = " (to train further, add run.extend=true)" if key == spec.extend_key else ""
        raise ConfigError(label, f"{where} was made with {key}={was!r}, this launch gives {now!r}: relaunch with "
                          f"the same settings{hint}, or use a new run dir")
    return extended
