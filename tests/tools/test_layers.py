"""The import layers hold (rova.tools.layers), and the check finds a violation planted in a copy of the tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rova.tools.layers import LAYER_OF, PACKAGE_ROOT, main, units_without_layer, violations


def test_no_layer_is_crossed():
    found = violations()
    assert not found, "\n".join(map(str, found))
    assert units_without_layer() == []


def _copy_of_the_package(tmp_path: Path) -> Path:
    root = tmp_path / "rova"
    shutil.copytree(PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_planted_lazy_upward_import_is_reported(tmp_path):
    root = _copy_of_the_package(tmp_path)
    before = {str(v) for v in violations(root)}
    target = root / "config" / "schema.py"
    target.write_text(target.read_text() + "\n\ndef _planted():\n    from rova.training import trainer\n")
    planted = [v for v in violations(root) if str(v) not in before]
    assert [(v.file, v.importer, v.imported) for v in planted] == [("rova/config/schema.py", "config", "training")]
    assert "layer config imports higher layer tasks" in str(planted[0])


def test_sibling_imports_within_a_layer_are_violations(tmp_path):
    """eval, cot and the trainer share the inference layer; none imports another's package."""
    root = _copy_of_the_package(tmp_path)
    before = {str(v) for v in violations(root)}
    (root / "eval" / "planted.py").write_text("from rova.training.trainer import VideoGRPOTrainer\n")
    (root / "memory" / "planted.py").write_text("import rova.inference\nfrom rova import config\n")
    planted = sorted((v.importer, v.imported) for v in violations(root) if str(v) not in before)
    assert planted == [("eval", "training"), ("memory", "inference")]
    assert LAYER_OF["eval"] == LAYER_OF["training"]


def test_a_new_unit_must_be_placed_in_a_layer(tmp_path):
    root = _copy_of_the_package(tmp_path)
    (root / "select").mkdir(exist_ok=True)
    (root / "newthing.py").write_text("")
    assert units_without_layer(root) == ["newthing"]
    assert main([str(root)]) == 1


def test_the_command_prints_the_layers_and_exits_zero_on_this_tree():
    proc = subprocess.run([sys.executable, "-m", "rova.tools.layers"], capture_output=True, text=True,
                          cwd=PACKAGE_ROOT.parent)
    assert "0. base" in proc.stdout and "violation(s)" in proc.stdout
    assert proc.returncode == (1 if violations() else 0)
