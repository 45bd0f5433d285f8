"""The launcher: compose + validate once, create the run dir, dispatch (in process, workers, or SLURM)."""
