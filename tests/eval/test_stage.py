"""stage=eval end to end on the tiny model and the held-out demo benchmark: files, metrics, resume, shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.runs import launch, only_run_dir

GRID = ("eval.corruptions=[rain,night]", "eval.severities=[1,5]")
SMALL = ("stage=eval", "benchmark.demo_num_clips=6", "eval.max_new_tokens=32", "logger=none")


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _predictions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, cache_dir):
    tmp = tmp_path_factory.mktemp("eval")
    proc = launch(tmp, cache_dir, *SMALL, *GRID)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return only_run_dir(tmp / "outputs")


def test_eval_writes_results_predictions_pictures_and_report(grid_run):
    run_dir = grid_run
    results = _results(run_dir)
    predictions = _predictions(run_dir / "predictions.jsonl")
    cells = {"clean", "rain@1", "rain@5", "night@1", "night@5"}
    assert {p["cell"] for p in predictions} == cells
    assert len(predictions) == 6 * len(cells)
    assert len({(p["cell"], p["item_id"]) for p in predictions}) == len(predictions)
    assert results["clean"]["n"] == 6 and set(results["grid"]) == {"rain", "night"}
    for name in ("heatmap.png", "families.png"):
        with Image.open(run_dir / name) as image:
            assert image.size[0] > 200 and image.size[1] > 100
    report = (run_dir / "report.md").read_text()
    assert "mPC" in report and "rain" in report and "night" in report
    # Strict (headline) and lenient accuracy, side by side, for the clean run and every grid cell.
    cells_results = [results["clean"], *[c for row in results["grid"].values() for c in row.values()]]
    assert all(c["accuracy_lenient"] is not None and c["accuracy_lenient"] >= c["accuracy"] for c in cells_results)
    assert all("lenient" in p and p["lenient"] >= p["score"] for p in predictions)
    assert results["robustness"]["mpc_lenient"] is not None
    assert "lenient" in report and "Strict accuracy (the headline)" in report
    # Every item's corrupted clip differs from its clean clip; a cell's clips differ across severities.
    by_key = {(p["cell"], p["item_id"]): p["clip_sha1"] for p in predictions}
    for item in {p["item_id"] for p in predictions}:
        hashes = [by_key[(cell, item)] for cell in sorted(cells)]
        assert len(set(hashes)) == len(hashes)


def test_mpc_and_rpc_equal_what_the_table_gives(grid_run):
    results = _results(grid_run)
    cells = [results["grid"][c][s]["accuracy"] for c in ("rain", "night") for s in ("1", "5")]
    robustness = results["robustness"]
    assert robustness["mpc"] == pytest.approx(float(np.mean(cells)))
    clean = results["clean"]["accuracy"]
    if clean:
        assert robustness["rpc"] == pytest.approx(robustness["mpc"] / clean)
    else:
        assert robustness["rpc"] is None  # undefined when the clean accuracy is 0, and said so
    scores = {(p["cell"], p["item_id"]): p["score"] for p in _predictions(grid_run / "predictions.jsonl")}
    rain5 = [v for (c, _), v in scores.items() if c == "rain@5"]
    assert results["grid"]["rain"]["5"]["accuracy"] == pytest.approx(float(np.mean(rain5)))


def test_a_killed_eval_resumes_every_item_exactly_once(grid_run, tmp_path, cache_dir):
    """Half the predictions and a torn last line, as a kill leaves them: the re-run completes the rest."""
    resumed = tmp_path / "resumed"  # the run dir as the kill left it: its config, and the predictions so far
    resumed.mkdir()
    (resumed / "resolved.yaml").write_bytes((grid_run / "resolved.yaml").read_bytes())
    full = (grid_run / "predictions.jsonl").read_text().splitlines(keepends=True)
    (resumed / "predictions.jsonl").write_text("".join(full[: len(full) // 2]) + full[len(full) // 2][:25])
    proc = launch(tmp_path, cache_dir, *SMALL, *GRID, f"run.dir={resumed}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = _predictions(resumed / "predictions.jsonl")
    assert len(again) == len(full)
    assert len({(p["cell"], p["item_id"]) for p in again}) == len(full)
    first, second = _results(grid_run), _results(resumed)
    assert second["clean"] == first["clean"] and second["grid"] == first["grid"]
    assert second["robustness"] == first["robustness"]


def test_two_runs_see_identical_corrupted_clips_and_metrics(grid_run, tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, *SMALL, *GRID)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    other = only_run_dir(tmp_path / "outputs")
    hashes = lambda run: {(p["cell"], p["item_id"]): p["clip_sha1"] for p in _predictions(run / "predictions.jsonl")}  # noqa: E731
    assert hashes(other) == hashes(grid_run)
    assert _results(other)["grid"] == _results(grid_run)["grid"]


def test_bad_eval_values_fail_before_anything_runs(tmp_path, cache_dir):
    for override, key in (("eval.corruptions=[sandstorm]", "eval.corruptions"), ("eval.severities=[0]", "eval.severities"),
                          ("eval.decoding=beam", "eval.decoding"), ("benchmark=nope", "benchmark")):
        proc = launch(tmp_path, cache_dir, "stage=eval", override)
        assert proc.returncode == 2 and proc.stderr.strip().startswith(f"config error: {key}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


TINY_FRAMES = ("benchmark.max_frames=4", "benchmark.min_pixels=3136", "benchmark.max_pixels=6272")


def test_real_mmvu_file_evaluates_end_to_end_with_missing_media_reported(tmp_path, cache_dir):
    from tests.conftest import shared_data_or_skip
    from tests.support.eval_media import map_mmvu_media

    file = shared_data_or_skip("benchmarks", "eval_mmvu.json")
    videos = shared_data_or_skip("videos")
    map_mmvu_media(file, videos, tmp_path / "media")
    proc = launch(tmp_path, cache_dir, "stage=eval", "benchmark=mmvu", f"benchmark.file={file}",
                  f"benchmark.media_root={tmp_path / 'media'}", "benchmark.max_items=5", *TINY_FRAMES,
                  "eval.max_new_tokens=16", "logger=none")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _results(only_run_dir(tmp_path / "outputs"))
    assert results["clean"]["n"] == 3 and results["clean"]["skipped_media"] == 2
    assert len(results["skipped_media"]) == 2
    assert all(s["reason"].endswith("file not found") for s in results["skipped_media"])
    assert set(results["clean"]["by_problem_type"]) == {"multiple choice"}


def test_frame_folder_benchmark_evaluates_end_to_end(tmp_path, cache_dir):
    from tests.conftest import shared_data_or_skip
    from tests.support.eval_media import frame_folder_benchmark

    file = frame_folder_benchmark(shared_data_or_skip("videos", "tw_grpo_8.mp4"), tmp_path / "bench")
    proc = launch(tmp_path, cache_dir, "stage=eval", f"benchmark.file={file}", "benchmark.name=frames",
                  "benchmark.build_demo=false", "benchmark.subtask_keys=[task_type]", *TINY_FRAMES,
                  "eval.max_new_tokens=16", "eval.corruptions=[fog]", "eval.severities=[3]", "logger=none")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    results = _results(run_dir)
    assert results["clean"]["n"] == 2 and results["grid"]["fog"]["3"]["n"] == 2
    assert set(results["clean"]["by_subtask"]["task_type"]) == {"task0", "task1"}


@pytest.mark.slow
def test_two_local_shards_give_the_predictions_of_one_process(tmp_path, cache_dir):
    common = (*SMALL, "eval.corruptions=[rain]", "eval.severities=[5]", "eval.batch_size=1")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = launch(tmp_path / "one", cache_dir, *common)
    two = launch(tmp_path / "two", cache_dir, *common, "distributed=ddp", "distributed.nproc_per_node=2")
    for proc in (one, two):
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single, sharded = only_run_dir(tmp_path / "one" / "outputs"), only_run_dir(tmp_path / "two" / "outputs")
    shards = sorted(sharded.glob("predictions.shard*-of-2.jsonl"))
    assert len(shards) == 2 and all(_predictions(s) for s in shards)

    def completions(paths):
        return {(p["cell"], p["item_id"]): (p["completion"], p["clip_sha1"]) for path in paths for p in _predictions(path)}

    assert completions(shards) == completions([single / "predictions.jsonl"])
    assert _results(sharded)["clean"] == _results(single)["clean"]


def test_reference_results_add_corruption_errors(grid_run, tmp_path, cache_dir):
    """eval.reference: CE / mCE / relative mCE against a reference model's results.json (here: the same model)."""
    proc = launch(tmp_path, cache_dir, *SMALL, *GRID, f"eval.reference={grid_run / 'results.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    robustness = _results(run_dir)["robustness"]
    assert set(robustness["ce"]) == {"rain", "night"}
    # Headers name the reference by its run dir; its whole path is said once, below the table.
    assert robustness["reference"] == grid_run.name
    report = (run_dir / "report.md").read_text()
    assert f"mCE vs {grid_run.name} (%)" in report and f"Reference `{grid_run.name}`: `{grid_run}/results.json`" in report
    # Against itself every corruption error ratio is 1 (when the reference has any error at all).
    assert all(v == pytest.approx(1.0) for v in robustness["ce"].values() if v is not None)
    assert robustness["mce"] is None or robustness["mce"] == pytest.approx(1.0)


@pytest.mark.slow
def test_sigkilled_eval_resumes_with_every_item_once_and_the_same_metrics(grid_run, tmp_path, cache_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.support.runs import REPO

    run_dir = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "launch.py"), f"run.cache_dir={cache_dir}", f"run.output_root={tmp_path}",
           *SMALL, *GRID, f"run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = run_dir / "predictions.jsonl"
    deadline = time.monotonic() + 300
    while not (predictions.exists() and len(predictions.read_text().splitlines()) >= 8):
        assert proc.poll() is None and time.monotonic() < deadline, "eval ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "results.json").exists()
    again = launch(tmp_path, cache_dir, *SMALL, *GRID, f"run.dir={run_dir}")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    rows = _predictions(predictions)
    assert len(rows) == 6 * 5 and len({(p["cell"], p["item_id"]) for p in rows}) == len(rows)
    first, second = _results(grid_run), _results(run_dir)
    assert second["clean"] == first["clean"] and second["grid"] == first["grid"]


def test_a_benchmark_with_no_usable_item_fails_before_the_model_loads(tmp_path, cache_dir, monkeypatch):
    import rova.models.loading

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a benchmark with nothing to score")

    monkeypatch.setattr(rova.models.loading, "load_model_and_processor", no_model)
    monkeypatch.setattr(rova.models.loading, "ensure_model_files", no_model)
    file = tmp_path / "eval_empty.json"
    file.write_text("[]")
    proc = launch(tmp_path, cache_dir, "stage=eval", f"benchmark.file={file}", "benchmark.name=empty",
                  "benchmark.build_demo=false", "logger=none")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"error: benchmark {file} has no usable item: 0 record(s)" in proc.stderr
    assert not list((tmp_path / "outputs").rglob("results.json"))
