"""Sequence-parallel (SP) groups: which ranks share one sequence, and the DeepSpeed Ulysses attention behind them.

`distributed.sequence_parallel=N` splits the world's W processes into W/N groups of N consecutive ranks
(ranks 0..N-1, N..2N-1, ...). The N ranks of a group hold the same batch; the language model's sequence is cut
into N chunks, one per rank, and DeepSpeed's `UlyssesSPAttentionHF` exchanges heads for sequence around every
attention call (all-to-all). Data parallelism runs across groups: group k is data-parallel rank k of W/N.

The Ulysses attention replaces the model's attention function (transformers' ALL_ATTENTION_FUNCTIONS entry of
the text model's implementation) process-wide, as DeepSpeed's `register_with_transformers` does. Here the entry
is a switch: it runs Ulysses only inside `ulysses_active()`, which rova.models.sequence_parallel.sharding opens
around the language model of a sharded forward. Everything else (the vision tower, whose attention uses the
same implementation name; generation, which decodes one token at a time; a forward on one rank only) gets the
plain attention function, unchanged.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rova.errors import RovaError

_STATE = threading.local()
_REGISTERED: dict[str, Any] = {}  # attention implementation -> the plain function the switch falls back to
# Ulysses attention has no mask: causality comes from position order, so it cannot run an implementation that
# needs a materialised 4-D mask (DeepSpeed refuses eager for that reason).
SUPPORTED_ATTENTION = ("sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass(frozen=True)
class SequenceParallel:
    """This process's sequence-parallel group."""

    size: int
    rank: int                  # this process's place in its group (0 .. size-1)
    ranks: tuple[int, ...]     # the global ranks of the group, in order
    group: Any                 # its torch.distributed process group
    dp_rank: int               # which group this is (data-parallel rank)
    dp_size: int               # how many groups (data-parallel world size)

    @property
    def leader(self) -> int:
        """The global rank of the group's first process: it draws the data and generates for the group."""
        return self.ranks[0]

    @property
    def is_leader(self) -> bool:
        return self.rank == 0


def group_ranks(world_size: int, size: int) -> list[tuple[int, ...]]:
    """The groups of `size` consecutive ranks that cover a world of `world_size` processes."""
    if size < 1 or world_size % size:
        raise RovaError(f"sequence parallelism: {world_size} processes cannot be split into groups of {size}")
    return [tuple(range(start, start + size)) for start in range(0, world_size, size)]


def build_groups(size: int) -> SequenceParallel:
    """Create the SP process groups (every rank creates every group, in the same order, as torch requires) and
    return this rank's."""
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RovaError("sequence parallelism needs torch.distributed initialised (run with distributed=ddp/zero2/zero3)")
    world, me = dist.get_world_size(), dist.get_rank()
    mine = None
    for ranks in group_ranks(world, size):
        group = dist.new_group(list(ranks))
        if me in ranks:
            mine = SequenceParallel(size, ranks.index(me), ranks, group, me // size, world // size)
    assert mine is not None
    return mine


def install_ulysses(sp: SequenceParallel, text_config, attn_implementation: str) -> None:
    """Put the switching Ulysses attention in place of `attn_implementation` (idempotent per implementation)."""
    if attn_implementation not in SUPPORTED_ATTENTION:
        raise RovaError(f"sequence parallelism cannot run attention {attn_implementation!r} "
                        f"(Ulysses needs one of {', '.join(SUPPORTED_ATTENTION)})")
    import deepspeed
    import deepspeed.comm
    from deepspeed.runtime.sequence_parallel.ulysses_sp import UlyssesSPAttentionHF
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if not deepspeed.comm.is_initialized():  # Ulysses talks through deepspeed.comm; it adopts torch's process group
        deepspeed.init_distributed(auto_mpi_discovery=False)
    plain = _REGISTERED.get(attn_implementation) or ALL_ATTENTION_FUNCTIONS[attn_implementation]
    heads, kv_heads = text_config.num_attention_heads, text_config.num_key_value_heads
    ulysses = UlyssesSPAttentionHF(
        attn=plain, batch_size=1, attn_head_count=heads,
        attn_head_size=getattr(text_config, "head_dim", None) or text_config.hidden_size // heads,
        kv_head_count=kv_heads, num_hidden_layers=text_config.num_hidden_layers, process_group=sp.group,
        seq_length_is_variable=True,
    )
    ulysses.core_attn_implementation = attn_implementation

    def attention(module, query, key, value, attention_mask, *args, **kwargs):
        if not getattr(_STATE, "active", False):
            return plain(module, query, key, value, attention_mask, *args, **kwargs)
        # No mask: the 4-D mask transformers built is for the local chunk; causality comes from the gathered
        # positions (a sharded sequence carries no padding before its last real token).
        return ulysses(module, query, key, value, None, *args, **kwargs)

    _REGISTERED[attn_implementation] = plain
    ALL_ATTENTION_FUNCTIONS[attn_implementation] = attention


@contextmanager
def ulysses_active():
    """Run the attention calls inside the block through Ulysses (every rank of the group must enter it)."""
    previous = getattr(_STATE, "active", False)
    _STATE.active = True
    try:
        yield
    finally:
        _STATE.active = previous


def uninstall_ulysses() -> None:
    """Give the attention implementations their plain functions back (tests)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for name, plain in _REGISTERED.items():
        ALL_ATTENTION_FUNCTIONS[name] = plain
    _REGISTERED.clear()
