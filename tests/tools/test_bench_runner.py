"""`python -m rova.bench`: lists every benchmark script, refuses unknown names; gpu_3b_step's CPU smoke mode runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rova import bench

REPO = Path(__file__).resolve().parents[2]


def test_runner_lists_every_benchmark_file():
    scripts = sorted(p for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    files = bench.benchmark_files()
    assert sorted(files.values()) == scripts
    for name in ("corruption", "kl_memory", "vision_encoding", "decode", "step_time", "launch_latency", "gpu_3b_step"):
        assert name in files, name
        assert bench.resolve(name) == files[name]
        assert bench.summary(files[name]), f"{files[name].name} needs a docstring (its first line is the listing)"
    listing = bench.listing()
    for name in files:
        assert name in listing


def test_runner_accepts_file_style_names():
    assert bench.resolve("decode_bench") == bench.resolve("decode") == bench.resolve("decode_bench.py")


def test_runner_refuses_unknown_name_with_the_choices(capsys):
    with pytest.raises(bench.UnknownBenchmark, match=r"unknown benchmark 'decod'.*did you mean decode\?.*choose one of"):
        bench.resolve("decod")
    assert bench.main(["no_such_bench"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'no_such_bench'" in err and "launch_latency" in err


def test_runner_module_is_light():
    # The runner must not import torch (or anything heavy) just to list or dispatch.
    code = "import sys, rova.bench; rova.bench.listing(); print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runner_runs_a_benchmark_with_its_arguments(tmp_path, capsys):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "echo_bench.py").write_text(
        '"""Echo."""\nimport sys\nif __name__ == "__main__":\n    print("ARGS", sys.argv[1:])\n'
    )
    bench.run("echo", ["--reps", "3"], bench_dir=tmp_path / "benchmarks")
    assert "ARGS ['--reps', '3']" in capsys.readouterr().out


@pytest.mark.slow  # ~35 s with a warm cache, ~150 s on 2 shared cores with a fresh one (over the 60 s fast budget)
def test_gpu_3b_step_cpu_smoke(tmp_path, cache_dir):
    """The GPU script's reduced mode: from_config model, both sharing settings, JSON + markdown."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_3b_step.py", "--cpu-smoke", "--out", str(out), "--cache-dir", str(cache_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "gpu_3b_step.json").read_text())
    assert set(result["runs"]) == {"shared", "per_completion"}
    for run in result["runs"].values():
        assert run["step_s"] > 0 and run["completion_tokens_per_step"] > 0 and run["vision_forward_s"] > 0
    assert result["setup"]["generations"] == 4 and result["setup"]["sizes"]["text"]["num_hidden_layers"] == 2
    assert "| true (shared) |" in (out / "gpu_3b_step.md").read_text()
