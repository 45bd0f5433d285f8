"""A process killed while saving memory.json leaves the old or the new file, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rova.memory import DifficultyMemory

REPO = Path(__file__).resolve().parents[2]

# Builds a memory with `n` entries whose counters say n adds, so a reader can check consistency.
PRELUDE = textwrap.dedent(
    """
    import os, sys
    from rova.config.memory import MemoryConfig
    from rova.memory import DifficultyMemory, MemoryView

    def memory_with(n):
        memory = DifficultyMemory(MemoryConfig(max_size=100_000))
        for i in range(n):
            memory.add(0, "sample-" + "x" * 200 + str(i), MemoryView.corrupted(i), 0.0)
        return memory

    path = sys.argv[1]
    """
)


def run_child(body: str, path: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body), str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def assert_consistent(path: Path) -> int:
    memory = DifficultyMemory.load(path)
    assert len(memory) == memory.stats()["adds"]
    return len(memory)


@pytest.mark.parametrize("die_in", ["fsync", "replace"])
def test_exit_in_the_middle_of_save_keeps_the_old_file(tmp_path, die_in):
    path = tmp_path / "memory.json"
    child = run_child(
        f"""
        memory_with(3).save(path)
        def die(*args, **kwargs):
            os._exit(17)
        os.{die_in} = die
        memory_with(50).save(path)
        """,
        path,
    )
    child.communicate(timeout=60)
    assert child.returncode == 17
    assert assert_consistent(path) == 3


def test_sigkill_during_repeated_saves_never_tears_the_file(tmp_path):
    path = tmp_path / "memory.json"
    seen = set()
    for delay in (0.0, 0.01, 0.05):
        child = run_child(
            """
            memory_with(1).save(path)
            print("ready", flush=True)
            n = 1
            while True:
                n += 1
                memory_with(n % 300 + 1).save(path)
            """,
            path,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        seen.add(assert_consistent(path))
    assert seen  # every kill left a loadable, self-consistent memory.json
