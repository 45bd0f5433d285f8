"""DeepSpeed all-reduce segments in /dev/shm that no live process maps, and their removal.

rova's own runs remove theirs (rova.utils.deepspeed_shm); segments left by runs of older rova versions, or by
other DeepSpeed CPU jobs of this user, keep 66 MiB of RAM per rank taken until reboot. This lists them and,
with --remove, deletes them (a segment some process still maps is never touched):

    uv run python -m rova.tools.shm            # list
    uv run python -m rova.tools.shm --remove   # delete
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rova.utils.deepspeed_shm import SHM_DIR, orphaned_segments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rova.tools.shm", description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="delete them (default: only list them)")
    parser.add_argument("--shm-dir", type=Path, default=SHM_DIR, help=f"where the segments are ({SHM_DIR})")
    args = parser.parse_args(argv)
    orphans = orphaned_segments(shm_dir=args.shm_dir)
    total = 0
    for path in orphans:
        try:
            size = path.stat().st_size
            if args.remove:
                path.unlink()
        except FileNotFoundError:  # removed meanwhile (its run's launcher cleaned up)
            continue
        total += size
        print(path)
    verb = "removed" if args.remove else "left by ended runs (--remove deletes them)"
    print(f"{len(orphans)} DeepSpeed shared-memory segment(s), {total / 2**20:.0f} MiB, {verb}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
