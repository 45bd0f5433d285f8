"""A stand-in for `rova.worker` in launcher tests: prints the rank environment the launcher gave this process.

Used by tests that run the launcher part of a command rova builds (torchrun, the DeepSpeed launcher) exactly as
built, with only the module it starts swapped for this one, to see which rank, world size and rendezvous a
worker would get without paying for a training run.
"""

import json
import os

if __name__ == "__main__":
    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    print("RANK_ENV " + json.dumps({k: os.environ.get(k) for k in keys}), flush=True)
