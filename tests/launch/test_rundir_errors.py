"""A run dir that cannot be made is one line at launch, naming the key to change, before anything runs."""

from __future__ import annotations

import os

import pytest

from tests.support.runs import launch


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_a_300_character_tag_is_one_line_naming_run_tag(tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, "logger=none", f"run.tag={'t' * 300}")
    line = one_error_line(proc)
    assert line.startswith("config error: run.tag:") and "too long" in line, line
    assert not list((tmp_path / "outputs").rglob("resolved.yaml"))


@pytest.mark.parametrize("how", ["a_file", "read_only"])
def test_an_unwritable_output_root_is_one_line_naming_it(tmp_path, cache_dir, how):
    root = tmp_path / "root"
    if how == "a_file":  # unwritable for root too
        root.write_text("not a directory\n")
    else:
        if os.geteuid() == 0:
            pytest.skip("running as root: a read-only directory is still writable")
        root.mkdir()
        root.chmod(0o555)
    proc = launch(tmp_path, cache_dir, "logger=none", f"run.output_root={root}")
    line = one_error_line(proc)
    assert line.startswith("config error: run.output_root:") and str(root) in line, line
