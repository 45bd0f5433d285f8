"""stage=select: Temporal-R1's offline variance-aware data selection by repeated inference (rova.select.runner)."""
