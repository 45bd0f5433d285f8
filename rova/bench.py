"""One entry point for the benchmark scripts in `benchmarks/`: list them, run one by name.

    uv run python -m rova.bench                 # list the benchmarks and what each measures
    uv run python -m rova.bench NAME [ARGS...]  # run benchmarks/NAME_bench.py (or NAME.py) with ARGS
    uv run python -m rova.bench NAME --help     # that benchmark's own options

Every benchmark prints its figures as ratios against a baseline measured in the same run (never timed
asserts in tests). This module imports nothing heavy: the benchmark itself imports what it needs.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
SUFFIX = "_bench"


class UnknownBenchmark(ValueError):
    pass


def benchmark_files(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    """name -> script: `decode_bench.py` is `decode`; a script without the suffix keeps its stem."""
    if not bench_dir.is_dir():
        return {}
    files = {}
    for path in sorted(bench_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        stem = path.stem
        files[stem[: -len(SUFFIX)] if stem.endswith(SUFFIX) else stem] = path
    return files


def summary(path: Path) -> str:
    """The first line of the script's docstring (read with ast: the script is not imported)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def resolve(name: str, bench_dir: Path = BENCH_DIR) -> Path:
    files = benchmark_files(bench_dir)
    if not files:
        raise UnknownBenchmark(
            f"no benchmark scripts found in {bench_dir} (they ship with the repository, not the wheel: "
            "run from a clone)"
        )
    key = name.removesuffix(".py")
    key = key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key
    if key not in files:
        import difflib

        close = difflib.get_close_matches(key, list(files), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnknownBenchmark(f"unknown benchmark {name!r}{hint}; choose one of: {', '.join(files)}")
    return files[key]


def listing(bench_dir: Path = BENCH_DIR) -> str:
    files = benchmark_files(bench_dir)
    width = max((len(n) for n in files), default=0)
    lines = ["benchmarks (python -m rova.bench NAME [ARGS...]; NAME --help for a benchmark's options):"]
    lines += [f"  {name:<{width}}  {summary(path)}" for name, path in files.items()]
    return "\n".join(lines)


def run(name: str, args: list[str], bench_dir: Path = BENCH_DIR) -> None:
    """Run the benchmark script as __main__ in this process, with `args` as its command line."""
    path = resolve(name, bench_dir)
    repo = str(path.parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    saved = sys.argv
    sys.argv = [str(path), *args]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "list", "--list"):
        print(__doc__.strip().splitlines()[0] + "\n")
        print(listing())
        return 0
    try:
        run(argv[0], argv[1:])
    except UnknownBenchmark as exc:
        print(f"rova.bench: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
