"""Every config key does something: its field name is read somewhere in rova/ outside the schema.

A key nobody reads is a silent lie (setting it changes nothing). The check is textual: the field name must
appear as an attribute access (`.kl_alpha`) or a string (`"kl_alpha"`) in a module other than
rova/config/schema.py, with the bodies of the schema dataclasses (their validation in `__post_init__`, wherever
they are defined) left out; rova/config/deepspeed.py counts, as it consumes `distributed.*`. Keys that code reads
generically (a name built at run time) are listed below, each with where and how it is read.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

import pytest

from rova.config.schema import RootConfig

ROVA = Path(__file__).resolve().parents[1] / "rova"

ALLOWED_UNREAD = {
    # Read as getattr(cfg, f"p_{family}") / getattr(cfg, f"{family}_variants") by the corruption engine.
    **{f"corruption.p_{f}": "corruption engine, getattr(cfg, f'p_{family}')"
       for f in ("photometric", "weather", "occlusion", "shake", "temporal")},
    **{f"corruption.{f}_variants": "corruption engine, getattr(cfg, f'{family}_variants')"
       for f in ("photometric", "weather", "occlusion", "shake", "temporal")},
    # Wired in rova/training/args.py (TRL GRPOConfig keyword arguments): remove once args.py reads them.
    "rollout.vllm_importance_sampling_correction": "wired in rova/training/args.py",
    "rollout.vllm_importance_sampling_mode": "wired in rova/training/args.py",
    "rollout.vllm_importance_sampling_clip_max": "wired in rova/training/args.py",
    "rollout.vllm_importance_sampling_clip_min": "wired in rova/training/args.py",
}


def _dataclass_of(owner: type, field: dataclasses.Field):
    hints = typing.get_type_hints(owner)
    kind = hints[field.name]
    return kind if dataclasses.is_dataclass(kind) else None


def schema_leaves(cls: type = RootConfig, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted key, the dataclass that declares it) for every leaf key of the schema."""
    leaves = []
    for field in dataclasses.fields(cls):
        nested = _dataclass_of(cls, field)
        if nested is not None:
            leaves += schema_leaves(nested, f"{prefix}{field.name}.")
        else:
            leaves.append((f"{prefix}{field.name}", cls))
    return leaves


def _source_without(path: Path, class_names: set[str]) -> str:
    """The module's text with the bodies of the given (schema) classes blanked out."""
    text = path.read_text()
    classes = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ClassDef) and node.name in class_names]
    if not classes:
        return text
    lines = text.splitlines()
    for node in classes:
        for index in range(node.lineno - 1, node.end_lineno):
            lines[index] = ""
    return "\n".join(lines)


def consumer_sources() -> str:
    schema_classes = {cls.__name__ for _, cls in schema_leaves()} | {"RootConfig"}
    return "\n".join(
        _source_without(path, schema_classes)
        for path in sorted(ROVA.rglob("*.py"))
        if path != ROVA / "config" / "schema.py"
    )


SOURCES = consumer_sources()


@pytest.mark.parametrize("key", [key for key, _ in schema_leaves()])
def test_every_schema_key_is_read_outside_the_schema(key):
    name = key.rpartition(".")[2]
    pattern = rf"\.{name}\b|[\"']{name}[\"']"
    if key in ALLOWED_UNREAD:
        pytest.skip(f"read generically: {ALLOWED_UNREAD[key]}")
    assert re.search(pattern, SOURCES), f"{key} is never read in rova/ outside rova/config/: remove it or wire it"


def test_the_allow_list_names_real_keys():
    keys = {key for key, _ in schema_leaves()}
    assert set(ALLOWED_UNREAD) <= keys, set(ALLOWED_UNREAD) - keys
