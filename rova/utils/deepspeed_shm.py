"""DeepSpeed's CPU all-reduce segments in /dev/shm, which DeepSpeed itself never removes.

When every rank of a run is on one machine (the launcher's LOCAL_SIZE equals the world size), DeepSpeed's CPU
comm op (`shm_comm`, built on first use) creates one shared-memory segment per rank while the process group
starts, `/dev/shm/deepspeed_allreduce_buffer_<uid>_<MASTER_ADDR>_<MASTER_PORT>_<rank>` (66 MiB each), and maps
the segments of all other ranks. Nothing unlinks them: every CPU ZeRO run with 2 processes left 132 MiB of RAM
taken until reboot. 306 of them (20 GiB of this 24 GiB machine) made the OOM killer stop CI on 2026-12-03.

rova removes them in two places:
- each rank, once every rank has mapped every segment (`release_own_segment`, after a barrier): a mapping
  outlives its name, so the memory stays usable and is freed by the kernel when the last rank exits, also when
  the ranks are killed;
- the launcher, after the workers of a run ended (`remove_run_segments`): what a rank killed while the group
  was still starting left behind.
`orphaned_segments` lists the segments no live process maps (left by runs of older versions).
"""

from __future__ import annotations

import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SEGMENT_PREFIX = "deepspeed_allreduce_buffer"


def run_segment_prefix(master_addr: str, master_port: int | str, uid: int | None = None) -> str:
    """The name every segment of one run starts with (DeepSpeed's shm.cpp: `<prefix>_<uid>_<addr>_<port>_<rank>`)."""
    return f"{SEGMENT_PREFIX}_{os.getuid() if uid is None else uid}_{master_addr}_{master_port}_"


def release_own_segment(barrier, rank: int, shm_dir: Path = SHM_DIR) -> bool:
    """Unlink this rank's segment once all ranks passed `barrier` (by then each has mapped all the others');
    True when there was one. MASTER_ADDR / MASTER_PORT are the launcher's, as DeepSpeed read them."""
    barrier()
    prefix = run_segment_prefix(os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", ""))
    path = shm_dir / f"{prefix}{rank}"
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def remove_run_segments(master_addr: str, master_port: int | str, shm_dir: Path = SHM_DIR) -> list[str]:
    """Remove the segments one run's ranks left (call it once they all ended); the names removed."""
    removed = []
    for path in sorted(shm_dir.glob(f"{run_segment_prefix(master_addr, master_port)}*")):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def own_segments(shm_dir: Path = SHM_DIR) -> set[str]:
    """The names of this user's DeepSpeed all-reduce segments in shm_dir."""
    return {p.name for p in shm_dir.glob(f"{SEGMENT_PREFIX}_{os.getuid()}_*")}


def mapped_paths(proc: Path = Path("/proc")) -> set[str]:
    """Every file some live process maps (its /proc/<pid>/maps; processes that vanish or hide are skipped)."""
    paths: set[str] = set()
    for maps in proc.glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            fields = line.split(maxsplit=5)
            if len(fields) == 6:
                paths.add(fields[5].removesuffix(" (deleted)"))
    return paths


def orphaned_segments(shm_dir: Path = SHM_DIR, proc: Path = Path("/proc")) -> list[Path]:
    """This user's all-reduce segments that no live process maps: a finished or killed run's, safe to remove."""
    mapped = mapped_paths(proc)
    return sorted(shm_dir / name for name in own_segments(shm_dir) if str(shm_dir / name) not in mapped)


def orphans_warning(shm_dir: Path = SHM_DIR, min_bytes: int = 1 << 30) -> str | None:
    """One line for the launcher when segments no process maps hold at least min_bytes of RAM, else None."""
    sizes = []
    for path in orphaned_segments(shm_dir=shm_dir):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # removed meanwhile
            continue
    total = sum(sizes)
    if not sizes or total < min_bytes:
        return None
    return (f"{len(sizes)} DeepSpeed shared-memory segment(s) that no process uses hold {total / 2**30:.1f} GiB of "
            f"RAM in {shm_dir} (left by earlier DeepSpeed runs on CPU); `python -m rova.tools.shm --remove` frees them")
