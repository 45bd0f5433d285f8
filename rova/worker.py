"""Worker entry point: `python -m rova.worker RUN_DIR` runs the stage described by RUN_DIR/resolved.yaml.

Started by torchrun, the DeepSpeed launcher or a SLURM task. It never re-composes the config and ignores
launcher-added arguments (e.g. `--local_rank`): rank information comes from the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    positional = [a for a in argv if not a.startswith("--")]
    if len(positional) != 1:
        print("usage: python -m rova.worker RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(positional[0]).resolve()
    _forward_preemption_signal(run_dir)

    from rova.config.compose import from_resolved_file
    from rova.errors import RovaError, exit_status
    from rova.launch.rundir import RESOLVED
    from rova.stages import run_stage

    _, cfg = from_resolved_file(run_dir / RESOLVED)
    try:
        run_stage(cfg, run_dir)
    except RovaError as exc:  # one line, as the launcher prints it (e.g. a full disk on this worker)
        return exit_status(exc)
    return 0


def _forward_preemption_signal(run_dir: Path) -> None:
    """SLURM's timeout signal (USR2 by submitit's default) asks the trainer to checkpoint and stop."""
    import signal

    def handler(signum, frame):
        (run_dir / "PREEMPT").write_text("signal\n")

    signal.signal(signal.SIGUSR2, handler)


if __name__ == "__main__":
    sys.exit(main())
