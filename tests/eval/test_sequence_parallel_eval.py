"""Slow tier: stage=eval with distributed.sequence_parallel=2 on 2 processes gives the predictions of one process.

The group encodes every clip MR-SP (each rank a share of the frames, gathered) and its first rank generates from
the gathered encodings (rova.inference.sequence_parallel); greedy decoding must then write the same completion for
every (cell, item) as an unsharded run, in one predictions file written once.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.runs import launch, only_run_dir

pytestmark = pytest.mark.slow

COMMON = ("stage=eval", "logger=none", "eval.corruptions=[fog]", "eval.severities=[3]")


def _predictions(root):
    run_dir = only_run_dir(root)
    files = sorted(run_dir.glob("predictions*.jsonl"))
    assert [f.name for f in files] == ["predictions.jsonl"], files
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    return {(r["cell"], r["item_id"]): r["completion"] for r in lines}, len(lines)


def test_eval_with_sequence_parallel_2_writes_the_predictions_of_one_process(tmp_path, cache_dir):
    for name in ("sp", "one"):
        (tmp_path / name).mkdir()
    sharded = launch(tmp_path / "sp", cache_dir, *COMMON, "distributed=ddp", "distributed.nproc_per_node=2",
                     "distributed.sequence_parallel=2", timeout=900)
    assert sharded.returncode == 0, sharded.stdout[-4000:] + sharded.stderr[-4000:]
    single = launch(tmp_path / "one", cache_dir, *COMMON, timeout=900)
    assert single.returncode == 0, single.stdout[-4000:] + single.stderr[-4000:]
    (sp, sp_lines), (one, _) = _predictions(tmp_path / "sp" / "outputs"), _predictions(tmp_path / "one" / "outputs")
    assert sp_lines == len(sp) == len(one) > 0  # every (cell, item) once
    assert {cell for cell, _ in one} == {"clean", "fog@3"}
    assert sp == one
    encoded = [int(n) for n in re.findall(r"encoded (\d+) vision patches", sharded.stdout)]
    assert len(encoded) == 2 and all(n > 0 for n in encoded), sharded.stdout[-2000:]
