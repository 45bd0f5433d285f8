"""Register the schema with Hydra's ConfigStore, so that conf/*.yaml are deltas over the dataclasses.

conf/config.yaml lists `schema` first in its defaults: the composed config starts as `RootConfig` with
every default, typed and in struct mode. Group options then only state what differs, a typo in a YAML
file or on the command line is an unknown key, and every schema key (`data.prompt.system`, ...) can be
set without `+`.
"""

from __future__ import annotations

SCHEMA_NAME = "schema"


def register_schema() -> None:
    """Idempotent: storing the same node under the same name again replaces it."""
    from hydra.core.config_store import ConfigStore

    from rova.config.schema import RootConfig

    ConfigStore.instance().store(name=SCHEMA_NAME, node=RootConfig)
