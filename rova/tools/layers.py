"""The import layers of rova, and the imports that break them: `python -m rova.tools.layers [ROOT]`.

rova is built in layers; a module may import its own unit (top-level package or module of rova) and any
unit of a LOWER layer, never one of its own layer or a higher one. Every import counts, also those inside
functions and under TYPE_CHECKING: a lazy import is still a dependency. The order, from the ground up:
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

# (layer name, the units in it): a unit is a top-level package or module of rova.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("errors", "utils")),
    ("config", ("config",)),
    ("data", ("data",)),
    ("domain", ("corruption", "rewards", "models")),
    ("inference", ("inference", "memory")),
    ("tasks", ("training", "eval", "annotate", "select")),
    ("stages", ("stages",)),
    ("launch", ("launch",)),
    ("recipe", ("recipe",)),
    ("entry", ("cli", "worker", "bench", "tools")),
)
LAYER_OF: dict[str, int] = {unit: index for index, (_, units) in enumerate(LAYERS) for unit in units}
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

__doc__ += "\n".join(f"    {i}. {name}: {', '.join(units)}" for i, (name, units) in enumerate(LAYERS)) + "\n"


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        a, b = LAYER_OF.get(self.importer), LAYER_OF.get(self.imported)
        why = "unit in no layer" if a is None or b is None else (
            f"layer {LAYERS[a][0]} imports {'its own layer' if a == b else 'higher layer ' + LAYERS[b][0]}")
        return f"{self.file}:{self.line}: rova.{self.importer} imports rova.{self.imported} ({why})"


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_modules(node: ast.AST, module: list[str], is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module if is_package else module[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if prefix == "rova":  # `from rova import errors`: the names are the units
        return [f"rova.{alias.name}" for alias in node.names]
    return [prefix]


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, unit) for every rova import of the file at path, the file's own unit excluded."""
    module = _module_name(path, root)
    own = module[1] if len(module) > 1 else None
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        for name in _imported_modules(node, module, path.name == "__init__.py"):
            parts = name.split(".")
            if parts[0] == "rova" and len(parts) > 1 and parts[1] != own:
                found.append((node.lineno, parts[1]))
    return found


def unit_of(path: Path, root: Path) -> str | None:
    module = _module_name(path, root)
    return module[1] if len(module) > 1 else None


def violations(root: Path = PACKAGE_ROOT) -> list[Violation]:
    """Every import in the package at root that a lower (or the same) layer makes of a higher (or its own) one."""
    out = []
    for path in sorted(root.rglob("*.py")):
        importer = unit_of(path, root)
        if importer is None:
            continue
        for line, imported in imports_of(path, root):
            low, high = LAYER_OF.get(importer), LAYER_OF.get(imported)
            if low is None or high is None or high >= low:
                out.append(Violation(str(path.relative_to(root.parent)), line, importer, imported))
    return out


def units_without_layer(root: Path = PACKAGE_ROOT) -> list[str]:
    units = {unit_of(p, root) for p in root.rglob("*.py")} - {None}
    return sorted(units - set(LAYER_OF))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]).resolve() if argv else PACKAGE_ROOT
    print("rova import layers (a unit imports only units of lower layers):")
    for index, (name, units) in enumerate(LAYERS):
        print(f"  {index}. {name:<10} {', '.join(units)}")
    found = violations(root)
    for unit in units_without_layer(root):
        print(f"unit rova.{unit} is in no layer: add it to LAYERS in rova/tools/layers.py")
    print(f"{len(found)} violation(s)" + (":" if found else ""))
    for violation in found:
        print(f"  {violation}")
    return 1 if found or units_without_layer(root) else 0


if __name__ == "__main__":
    sys.exit(main())
