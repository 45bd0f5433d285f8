"""Launcher latency: wall time of `launch.py --cfg job` and of a refused config, against the import floor.

    uv run python benchmarks/launch_latency_bench.py [--runs 5]

Each command is a fresh `python` process (this interpreter, so no `uv run` overhead is counted), run
`--runs` times after one untimed warm-up run (disk cache); the figure is the median wall time:
  baseline   python -c "import omegaconf, hydra"   (the import floor any Hydra launcher pays)
  cfg job    python launch.py --cfg job            (compose + validate + print the config)
  refused    python launch.py reward.kl_alpa=2     (a typo: one line naming the key, exit status 2)
The runs of the three commands are interleaved, so load from other processes hits them alike.
Target (issue 12): each launcher command <= 1.5 s on a 2-core machine; the ratio to the baseline says
how much the launcher adds on top of the imports it cannot avoid.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.5

COMMANDS = {
    "baseline": (["-c", "import omegaconf, hydra"], 0),
    "cfg job": (["launch.py", "--cfg", "job"], 0),
    "refused": (["launch.py", "reward.kl_alpa=2"], 2),
}


def timed(args: list[str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(
            f"`python {' '.join(args)}` exited {proc.returncode}, expected {expect}:\n{proc.stderr.strip()[-2000:]}"
        )
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (after one warm-up)")
    args = parser.parse_args(argv)

    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, (cmd, expect) in COMMANDS.items():
        timed(cmd, expect)  # warm-up: page cache, .pyc files
    for _ in range(args.runs):
        for name, (cmd, expect) in COMMANDS.items():
            times[name].append(timed(cmd, expect))

    base = statistics.median(times["baseline"])
    print(f"launcher wall time, median of {args.runs} runs each ({sys.executable}):")
    print(f"{'command':<42}{'median s':>10}{'min s':>8}{'max s':>8}{'x baseline':>12}{'target':>10}")
    for name, (cmd, _) in COMMANDS.items():
        values = times[name]
        med = statistics.median(values)
        label = "python " + " ".join(cmd)
        target = "" if name == "baseline" else ("ok" if med <= TARGET_S else "OVER")
        print(f"{label:<42}{med:>10.3f}{min(values):>8.3f}{max(values):>8.3f}{med / base:>11.2f}x"
              f"{(f'<= {TARGET_S} ' + target) if target else '':>10}")
    print(f"launcher overhead over the import floor: cfg job +{statistics.median(times['cfg job']) - base:.3f} s, "
          f"refused +{statistics.median(times['refused']) - base:.3f} s")


if __name__ == "__main__":
    main()
