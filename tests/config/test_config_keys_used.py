"""Every config key does something: its field name is read somewhere in rova/ outside the schema.

A key nobody reads is a silent lie (setting it changes nothing). The check reads the code (ast, so comments and
docstrings do not count): the field name must appear as an attribute access (`.kl_alpha`) or a string
constant (`"kl_alpha"`, e.g. in getattr) in a module other than
rova/config/schema.py, with the bodies of the schema dataclasses (their validation in `__post_init__`, in their
rova/config/<group>.py) left out; `deepspeed_config` in rova/config/distributed.py counts, as it consumes
`distributed.*`. Keys that code reads generically (a name built at run time) are listed below, each with where
and how it is read.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from rova.config.corruption import FAMILIES as CORRUPTION_FAMILIES
from rova.config.corruption import OPTION_KEYS
from rova.config.schema import RootConfig

ROVA = Path(__file__).resolve().parents[2] / "rova"

ALLOWED_UNREAD = {
    # Read as getattr(cfg, f"p_{family}") / getattr(cfg, f"{family}_variants") by the corruption engine.
    **{f"corruption.p_{f}": "corruption engine, getattr(cfg, f'p_{family}')" for f in CORRUPTION_FAMILIES},
    **{f"corruption.{f}_variants": "corruption engine, getattr(cfg, f'{family}_variants')" for f in CORRUPTION_FAMILIES},
    # Each catalogue option's key, read by the corruption engine's options_for as getattr(cfg, option.key).
    **{f"corruption.{key}": "corruption engine, options_for: getattr(cfg, option.key)" for key in OPTION_KEYS},
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


def _names_read(tree: ast.AST, skip_classes: set[str]) -> set[str]:
    """Attribute names (`x.kl_alpha`) and identifier-like string constants (`"kl_alpha"`) in the code,
    outside the bodies of the schema classes. Comments and docstrings do not count."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef) and node.name in skip_classes:
            continue
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            found.add(node.value)
        stack.extend(ast.iter_child_nodes(node))
    return found


def consumer_names() -> set[str]:
    schema_classes = {cls.__name__ for _, cls in schema_leaves()} | {"RootConfig"}
    names: set[str] = set()
    for path in sorted(ROVA.rglob("*.py")):
        if path != ROVA / "config" / "schema.py":
            names |= _names_read(ast.parse(path.read_text()), schema_classes)
    return names


NAMES_READ = consumer_names()


@pytest.mark.parametrize("key", [key for key, _ in schema_leaves()])
def test_every_schema_key_is_read_outside_the_schema(key):
    if key in ALLOWED_UNREAD:
        pytest.skip(f"read generically: {ALLOWED_UNREAD[key]}")
    name = key.rpartition(".")[2]
    assert name in NAMES_READ, f"{key} is never read in rova/ outside the schema: remove it or wire it"


def test_the_allow_list_names_real_keys():
    keys = {key for key, _ in schema_leaves()}
    assert set(ALLOWED_UNREAD) <= keys, set(ALLOWED_UNREAD) - keys
