"""DeepSpeed's /dev/shm all-reduce segments are removed (rova.utils.deepspeed_shm); the real multi-process runs
that check nothing is left: tests/training/test_distributed.py and tests/launch/test_multinode.py (slow tier)."""

from __future__ import annotations

import mmap
import os

from rova.utils.deepspeed_shm import (
    SEGMENT_PREFIX,
    orphaned_segments,
    own_segments,
    release_own_segment,
    remove_run_segments,
    run_segment_prefix,
)


def make_segments(shm_dir, addr, port, ranks):
    paths = [shm_dir / f"{run_segment_prefix(addr, port)}{rank}" for rank in ranks]
    for path in paths:
        path.write_bytes(b"\0" * 4096)
    return paths


def test_the_names_are_deepspeeds():
    # shm.cpp: snprintf("%s_%d_%s_%s", SHM_BUFFER_NAME, getuid(), addr, port), then "%s_%d" with the rank
    assert run_segment_prefix("127.0.0.1", 29500, uid=0) + "1" == "deepspeed_allreduce_buffer_0_127.0.0.1_29500_1"
    assert SEGMENT_PREFIX == "deepspeed_allreduce_buffer"


def test_a_rank_unlinks_its_own_segment_only_after_the_barrier(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29511")
    mine, theirs = make_segments(tmp_path, "127.0.0.1", 29511, [1, 0])
    seen = []

    def barrier():  # the other ranks may still be opening this rank's segment until here
        seen.append(mine.exists())

    assert release_own_segment(barrier, rank=1, shm_dir=tmp_path)
    assert seen == [True] and not mine.exists() and theirs.exists()
    assert not release_own_segment(lambda: None, rank=1, shm_dir=tmp_path)  # none left: nothing to do


def test_the_launcher_removes_only_its_runs_segments(tmp_path):
    ours = make_segments(tmp_path, "127.0.0.1", 29512, [0, 1])
    other_port = make_segments(tmp_path, "127.0.0.1", 2951, [0])  # a prefix of our port: another run
    other_host = make_segments(tmp_path, "10.0.0.7", 29512, [0])
    removed = remove_run_segments("127.0.0.1", 29512, shm_dir=tmp_path)
    assert removed == sorted(p.name for p in ours)
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in other_port + other_host)


def test_a_segment_a_live_process_maps_is_not_orphaned(tmp_path):
    mapped, left = make_segments(tmp_path, "127.0.0.1", 29513, [0, 1])
    (tmp_path / "unrelated").write_bytes(b"x")
    assert own_segments(tmp_path) == {mapped.name, left.name}
    with open(mapped, "r+b") as handle, mmap.mmap(handle.fileno(), 0):
        assert orphaned_segments(shm_dir=tmp_path) == [left]
        os.unlink(mapped)  # a released segment is still mapped, as "(deleted)"; it is gone from the directory
        assert orphaned_segments(shm_dir=tmp_path) == [left]
    assert orphaned_segments(shm_dir=tmp_path) == [left]


def test_the_tool_lists_then_removes_what_no_process_maps(tmp_path, capsys):
    from rova.tools.shm import main

    kept, orphan = make_segments(tmp_path, "127.0.0.1", 29514, [0, 1])
    with open(kept, "r+b") as handle, mmap.mmap(handle.fileno(), 0):
        assert main(["--shm-dir", str(tmp_path)]) == 0
        assert orphan.exists() and str(orphan) in capsys.readouterr().out
        assert main(["--shm-dir", str(tmp_path), "--remove"]) == 0
        out = capsys.readouterr().out
        assert not orphan.exists() and kept.exists()
        assert "1 DeepSpeed shared-memory segment(s), 0 MiB, removed" in out and str(kept) not in out


def test_the_launcher_warns_when_orphans_hold_much_memory(tmp_path):
    from rova.utils.deepspeed_shm import orphans_warning

    kept, orphan = make_segments(tmp_path, "127.0.0.1", 29515, [0, 1])
    with open(kept, "r+b") as handle, mmap.mmap(handle.fileno(), 0):
        assert orphans_warning(shm_dir=tmp_path, min_bytes=4097) is None  # the mapped one does not count
        warning = orphans_warning(shm_dir=tmp_path, min_bytes=4096)
    assert warning.startswith("1 DeepSpeed shared-memory segment(s) that no process uses hold 0.0 GiB")
    assert "python -m rova.tools.shm --remove" in warning
    orphan.unlink()
    assert orphans_warning(shm_dir=tmp_path, min_bytes=0) is not None  # the other one is orphaned now too
    kept.unlink()
    assert orphans_warning(shm_dir=tmp_path, min_bytes=0) is None  # nothing left: nothing to say
