"""Behaviour pinned across refactors: four seeded tiny runs whose numbers must not move.

`RUNS` are the runs (a 4-step grpo, tgrpo with the corrupted branch and the KL-consistency reward, memory,
and an eval with a 2x2 corruption grid); `values(name, run_dir)` reads what each run produced, minus the
fields that measure time or name this machine's paths. `python -m tests.support.golden` records them into
tests/golden/ (done once, before a refactor); tests/test_behaviour_unchanged.py compares a fresh run with
the recorded file, floats within 1e-6.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
COMMON = ("data.demo_num_clips=8", "logger=none", "stage.seed=42")
RUNS: dict[str, tuple[str, ...]] = {
    "grpo": ("stage=grpo", "stage.max_steps=4", *COMMON),
    "tgrpo": ("stage=tgrpo", "corruption=rova", "reward=rova", "reward.kl_alpha=2", "stage.max_steps=4", *COMMON),
    "memory": ("stage=memory", "stage.max_steps=4", "memory.recheck_interval=2", "memory.fail_threshold=0.5", *COMMON),
    "eval": ("stage=eval", "benchmark.demo_num_clips=6", "eval.max_new_tokens=32", "logger=none",
             "eval.corruptions=[rain,night]", "eval.severities=[1,5]"),
}
_RL_OUTPUT = ("metrics.jsonl", "rollouts.jsonl")
OUTPUT = {"grpo": _RL_OUTPUT, "tgrpo": _RL_OUTPUT, "memory": (*_RL_OUTPUT, "memory.json"),
          "eval": ("results.json", "predictions.jsonl")}
_TIMING = re.compile(r"(time|runtime|per_second|seconds|elapsed|^perf/|_s$)")
_PATHLIKE = ("path", "file", "dir", "model", "reference")


def _strip(value):
    """The value without timing fields and without strings that name a path on this machine."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _TIMING.search(k)
                and not (isinstance(v, str) and k.endswith(_PATHLIKE) and "/" in v)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _read(path: Path):
    if path.suffix == ".jsonl":
        rows = [_strip(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        if path.name == "predictions.jsonl":  # appended as items finish: order by what identifies a row
            rows.sort(key=lambda r: (r["cell"], r["item_id"]))
        return rows
    return _strip(json.loads(path.read_text()))


def values(name: str, run_dir: Path) -> dict:
    """{file name: its contents without timing or path fields} for what the run `name` wrote."""
    return {file: _read(Path(run_dir) / file) for file in OUTPUT[name]}


def differences(expected, actual, where: str = "", tol: float = 1e-6) -> list[str]:
    """Every place where actual differs from expected (floats within tol, absolute or relative)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}/{k}: missing" for k in expected if k not in actual]
        out += [f"{where}/{k}: unexpected" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += differences(expected[k], actual[k], f"{where}/{k}", tol)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} entries, expected {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{where}[{i}]", tol)]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        if abs(expected - actual) <= tol * max(1.0, abs(expected)):
            return []
        return [f"{where}: {actual!r}, expected {expected!r}"]
    return [] if expected == actual else [f"{where}: {actual!r}, expected {expected!r}"]


def record(cache_dir: Path, work: Path, names: list[str] | None = None) -> None:
    """Record the runs `names` (all of them by default). Re-record one only for a deliberate change of what it
    writes (e.g. a new field), after checking that every recorded value still matches."""
    from tests.support.runs import launch_in_process, only_run_dir

    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, overrides in RUNS.items():
        if names and name not in names:
            continue
        result = launch_in_process(work / name, cache_dir, *overrides)
        if result.returncode != 0:
            sys.exit(f"{name}: exit {result.returncode}\n{result.stderr[-3000:]}")
        out = GOLDEN_DIR / f"{name}.json"
        out.write_text(json.dumps(values(name, only_run_dir(work / name / "outputs")), indent=1, sort_keys=True) + "\n")
        print(f"recorded {out}")


if __name__ == "__main__":
    import tempfile

    # python -m tests.support.golden [CACHE_DIR [RUN ...]]
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="rova-cache-"))
    with tempfile.TemporaryDirectory() as tmp:
        record(cache, Path(tmp), sys.argv[2:] or None)
