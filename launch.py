#!/usr/bin/env python
"""The one entry point: compose the config once, validate it, create the run dir, dispatch the stage.

    python launch.py                                      # CPU demo (GRPO, tiny Qwen2.5-VL, demo videos)
    python launch.py stage=tgrpo corruption=weather reward.kl_alpha=2
    python launch.py -m cluster=slurm +sweep=kl_alpha      # one SLURM job array
    python launch.py --help                               # config groups, options, sweeps
"""

import sys

from rova.cli import main

if __name__ == "__main__":
    sys.exit(main())
