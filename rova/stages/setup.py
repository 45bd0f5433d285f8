"""Per-process setup shared by stages: logging, the distributed state for DDP / ZeRO workers, and the process
group of the sharded stages (eval, cot, select)."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from rova.config.schema import RootConfig

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class DistState:
    rank: int = 0
    world_size: int = 1
    trainer_kwargs: dict = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def finish(self) -> None:
        import torch.distributed as torch_dist

        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.barrier()
            torch_dist.destroy_process_group()


def distributed_setup(cfg: RootConfig) -> DistState:
    """Read rank/world size from the launcher's environment and prepare the trainer's distributed arguments."""
    if cfg.distributed.name == "none":
        return DistState()
    import torch

    rank, world = launcher_rank_world()
    cuda = torch.cuda.is_available()
    backend = cfg.distributed.backend if cfg.distributed.backend != "auto" else ("nccl" if cuda else "gloo")
    kwargs: dict = {"ddp_backend": backend}
    if cfg.distributed.name in ("zero2", "zero3"):
        from rova.config.distributed import deepspeed_config

        kwargs["deepspeed"] = deepspeed_config(cfg.distributed)
        if not cuda:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    if not cuda:
        # On CPU, transformers builds accelerate's state without a usable backend: DeepSpeed then counts one
        # process, and DDP ends up with 2 processes but DistributedType.NO (no sharding, no gradient sync).
        # Creating the state ourselves with gloo first gives every rank the real distributed setup.
        from accelerate import PartialState

        if cfg.distributed.name == "ddp":
            PartialState(cpu=True, backend="gloo")  # accelerate picks MULTI_CPU only when told cpu=True
            kwargs["use_cpu"] = True
        else:
            PartialState(backend="gloo")  # DeepSpeed's process group; on CPU with its /dev/shm all-reduce segments
            release_deepspeed_segment()
        kwargs["accelerator_config"] = {"use_configured_state": True}
    return DistState(rank=rank, world_size=world, trainer_kwargs=kwargs)


def release_deepspeed_segment() -> None:
    """Unlink this rank's DeepSpeed all-reduce segment once every rank mapped it (rova.utils.deepspeed_shm):
    DeepSpeed never does, and each CPU run would keep 66 MiB of RAM per rank taken until reboot."""
    import torch.distributed as torch_dist

    from rova.utils.deepspeed_shm import release_own_segment

    if torch_dist.is_available() and torch_dist.is_initialized():
        release_own_segment(torch_dist.barrier, torch_dist.get_rank())


def latest_checkpoint(checkpoints: Path) -> str | None:
    """The newest complete checkpoint (its marker, written last, is there and parses: rova.training.checkpoints);
    each newer, incomplete one is skipped with a warning naming it."""
    from rova.training.checkpoints import latest_complete_checkpoint

    latest = latest_complete_checkpoint(checkpoints)
    return str(latest) if latest is not None else None


def start_training_run(cfg: RootConfig, run_dir: Path):
    """How a training stage (sft; grpo / tgrpo / memory) starts its run: (DistState, wandb run or None, resume).

    Distributed state and logging are set up, wandb is started on the main process (logger=wandb) with the
    resolved config, and with run.resume the newest complete checkpoint of run_dir/checkpoints is found.
    """
    from omegaconf import OmegaConf

    from rova.training.args import CHECKPOINTS
    from rova.training.tracking import init_wandb

    dist = distributed_setup(cfg)
    setup_logging(run_dir, dist.is_main)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    wandb_run = init_wandb(cfg.logger, run_dir, resolved, dist.is_main, cfg.run.tag)
    resume = latest_checkpoint(run_dir / CHECKPOINTS) if cfg.run.resume else None
    if resume:
        log.info("resuming from %s", resume)
    return dist, wandb_run, resume


def launcher_rank_world() -> tuple[int, int]:
    """(rank, world size) of this process as the launcher's environment gives them (RANK, WORLD_SIZE; 0, 1)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(world: int) -> Iterator[Callable[[], None]]:
    """The gloo process group of the sharded stages (eval, cot, select), yielding its barrier.

    With world > 1 the group is created unless it exists, and on a normal exit every process meets at a last
    barrier before it is destroyed; a single process gets a barrier that does nothing.
    """
    if world <= 1:
        yield lambda: None
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    yield dist.barrier
    dist.barrier()
    dist.destroy_process_group()


def run_sharded(run_dir: Path, prepare: Callable[[], None],
                work: Callable[[int, int, Callable[[], None], int], T]) -> T:
    """The process frame of the sharded stages (eval, cot, select): returns work(rank, world, barrier, task).

    Logging is set up, the process group opened (process_group), and the main process runs prepare()
    (shared assets such as the demo data) while the others wait at the barrier. task is the SLURM array index
    of an eval.shards / cot.shards / select.shards job, from the environment its task set (ROVA_EVAL_SHARD; 0 alone).
    """
    rank, world = launcher_rank_world()
    setup_logging(run_dir, rank == 0)
    with process_group(world) as barrier:
        if rank == 0:
            prepare()
        barrier()
        return work(rank, world, barrier, int(os.environ.get("ROVA_EVAL_SHARD", "0")))


def setup_logging(run_dir: Path, is_main: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if is_main:
        handlers.append(logging.FileHandler(Path(run_dir) / "train.log"))
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.getLogger("rova").setLevel(logging.INFO if is_main else logging.WARNING)
    for noisy in ("transformers", "trl", "datasets", "accelerate", "deepspeed", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
