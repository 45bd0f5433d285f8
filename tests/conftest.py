"""Shared fixtures: the tiny Qwen2.5-VL and the demo data are built once per session, offline."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.local_slurm import local_slurm  # noqa: F401  (session fixture for the slow tier)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# This machine's environment sets PYTHONDONTWRITEBYTECODE=1: each pytest worker then compiled rova and the tests
# from source and re-rewrote every test module's asserts on every run (7 of a worker's 20 s of collection), and so
# did every run a test starts. Tests write the caches (gitignored __pycache__); the processes they start read them.
sys.dont_write_bytecode = False

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # Several pytest-xdist workers share the cores: one compute thread each (torch's OpenMP pool spins while it
    # waits, so 2 workers x 2 threads on 2 cores ran the tiny-model tests 5-10x slower). The recorded numbers of
    # tests/test_behaviour_unchanged.py hold with 1 thread as with the default.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def shared_data_or_skip(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it ships in ../shared/data beside the repo)")
    return path


TINY_FAMILIES = ("qwen2_5_vl", "qwen3_vl")


def _build_shared_tiny_models(shared: Path, worker: str) -> None:
    """Each tiny model built once for all pytest-xdist workers (about 20 s of CPU each), not once per worker.

    Worker k starts with family k (mod 2), so two workers build the two families side by side; a worker that finds
    a family's lock taken waits for it and then finds the finished build (`ensure_tiny_model` reads its marker).
    """
    import fcntl

    from rova.models.tiny import ensure_tiny_model

    shared.mkdir(parents=True, exist_ok=True)
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    for family in TINY_FAMILIES[index % 2:] + TINY_FAMILIES[: index % 2]:
        with open(shared / f"{family}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ensure_tiny_model(shared / f"tiny-{family}", family)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (tiny model, demo data) per test session; REUSE via ROVA_TEST_CACHE speeds up local reruns.

    Under pytest-xdist each worker has its own cache (demo clips and media probes: under a second to build), and
    its tiny-model dirs are links to one build shared by all workers.
    """
    env = os.environ.get("ROVA_TEST_CACHE")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if env:
        path = Path(env) / (worker or "main")
        path.mkdir(parents=True, exist_ok=True)
        shared = Path(env) / "tiny-models"
    else:
        path = tmp_path_factory.mktemp("rova-cache")
        shared = tmp_path_factory.getbasetemp().parent / "tiny-models"  # the parent all workers' temp dirs share
    if worker:
        _build_shared_tiny_models(shared, worker)
        for family in TINY_FAMILIES:
            link = path / f"tiny-{family}"
            if not link.is_symlink():
                if link.exists():
                    shutil.rmtree(link)
                link.symlink_to(shared / f"tiny-{family}", target_is_directory=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(cache_dir) -> Path:
    from rova.models.tiny import ensure_tiny_model

    return ensure_tiny_model(cache_dir / "tiny-qwen2_5_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def demo_file(cache_dir) -> Path:
    from rova.data.procedural import build_procedural

    return build_procedural("demo", cache_dir / "demo" / "train", 8, "train")  # where data=demo's runs read it


@pytest.fixture(scope="session")
def tiny_qwen3_model_dir(cache_dir) -> Path:
    from rova.models.tiny import ensure_tiny_model

    return ensure_tiny_model(cache_dir / "tiny-qwen3_vl", "qwen3_vl")
