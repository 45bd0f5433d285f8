"""Sequence parallelism for long videos (`distributed.sequence_parallel`): DeepSpeed Ulysses attention over SP
groups built by rova (groups), a language-model pass sharded along the sequence (sharding, logps), and each clip
encoded once per group with its frames split over the ranks (vision, MR-SP)."""

from rova.models.sequence_parallel.groups import (SequenceParallel, build_groups, group_ranks, install_ulysses,
                                                  ulysses_active, uninstall_ulysses)

__all__ = ["SequenceParallel", "build_groups", "group_ranks", "install_ulysses", "ulysses_active",
           "uninstall_ulysses"]
