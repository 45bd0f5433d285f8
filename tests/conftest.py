"""Shared fixtures: the tiny Qwen2.5-VL and the demo data are built once per session, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.local_slurm import local_slurm  # noqa: F401  (session fixture for the slow tier)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

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


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (tiny model, demo data) per test session; REUSE via ROVA_TEST_CACHE speeds up local reruns."""
    env = os.environ.get("ROVA_TEST_CACHE")
    if env:
        # One cache per pytest-xdist worker: the demo builders rewrite demo.json for the clip count a test asks for.
        path = Path(env) / os.environ.get("PYTEST_XDIST_WORKER", "main")
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("rova-cache")


@pytest.fixture(scope="session")
def tiny_model_dir(cache_dir) -> Path:
    from rova.models.tiny import ensure_tiny_model

    return ensure_tiny_model(cache_dir / "tiny-qwen2_5_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def demo_file(cache_dir) -> Path:
    from rova.data.demo import build_demo_dataset

    return build_demo_dataset(cache_dir / "demo", num_clips=8)


@pytest.fixture(scope="session")
def tiny_qwen3_model_dir(cache_dir) -> Path:
    from rova.models.tiny import ensure_tiny_model

    return ensure_tiny_model(cache_dir / "tiny-qwen3_vl", "qwen3_vl")
