"""Compare evaluation runs: `python -m rova.eval.compare A/results.json B/results.json [...] --out DIR`.

The first results file is the baseline. Writes DIR/compare.md (rova.eval.report.compare's tables: clean,
mPC, rPC, flip rate, per-family and per-corruption accuracies, config keys that differ), DIR/deltas.json
({model: {corruption: {severity: Acc_model - Acc_baseline}}}) and the delta heatmap(s) of each model
against the baseline: delta_heatmap.png with two runs, delta_heatmap_<name>.png per model with more.
Prints the markdown. A path that cannot be read as a results dict is one error line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from rova.errors import ConfigError

COMPARE = "compare.md"
DELTAS = "deltas.json"
DELTA_HEATMAP = "delta_heatmap.png"


def read_results(path: str | Path) -> dict[str, Any]:
    """A results.json as a dict; ConfigError naming the path when it is missing or not a results dict."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("results", f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError("results", f"{path}: is a folder, not a results.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("results", f"{path}: cannot read ({exc})") from None
    except ValueError as exc:
        raise ConfigError("results", f"{path}: not valid JSON ({exc})") from None
    if not isinstance(results, dict) or not ("clean" in results or "grid" in results):
        raise ConfigError("results", f"{path}: not a results file (a JSON object with 'clean' and 'grid')")
    return results


def default_names(results: Sequence[dict], paths: Sequence[Path]) -> list[str]:
    """config.name, else config.model; the run folder's name where those collide; '#i' as a last resort."""
    from rova.eval.report import _name

    names = [_name(r, default=p.parent.name or p.stem) for r, p in zip(results, paths)]
    if len(set(names)) == len(names):
        return names
    names = [p.parent.name or p.stem for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{name}#{i + 1}" for i, name in enumerate(names)]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def compare_files(paths: Sequence[str | Path], out_dir: str | Path, names: Optional[Sequence[str]] = None) -> dict:
    """Compare results files (baseline = the first) and write compare.md, deltas.json and the delta
    heatmap(s) into out_dir. Returns {"markdown", "deltas", "names", "files": {kind: Path}}."""
    from rova.eval.report import compare, delta_heatmap_png
    from rova.utils.io import atomic_write_json, atomic_write_text

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ConfigError("results", f"compare needs at least two results files, got {len(paths)}")
    results = [read_results(p) for p in paths]
    if names is None:
        names = default_names(results, paths)
    names = [str(n) for n in names]
    if len(names) != len(paths):
        raise ConfigError("names", f"{len(names)} names for {len(paths)} results files")
    if len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise ConfigError("names", f"must be distinct and non-empty, got {names}")

    table, deltas = compare(results, names)
    out = Path(out_dir)
    files: dict[str, Path] = {}
    pictures: list[str] = []
    others = names[1:]
    for name in others:
        if not deltas.get(name):
            continue
        filename = DELTA_HEATMAP if len(others) == 1 else f"delta_heatmap_{_slug(name)}.png"
        files[f"delta_heatmap:{name}"] = delta_heatmap_png(
            deltas[name], out / filename, title=f"Accuracy change (points): {name} - {names[0]}")
        pictures += [f"![{name} - {names[0]}]({filename})", ""]

    lines = [f"# Comparison against {names[0]}", ""]
    lines += [f"- `{name}`: {path}" for name, path in zip(names, paths)] + [""]
    lines += [table.rstrip(), ""]
    if pictures:
        lines += ["## Accuracy change per corruption and severity (points)", ""] + pictures
    elif any(r.get("grid") for r in results):
        lines += ["No corruption cell is shared with the baseline: no delta heatmap.", ""]
    markdown = "\n".join(lines).rstrip() + "\n"
    files["compare"] = atomic_write_text(out / COMPARE, markdown)
    files["deltas"] = atomic_write_json(out / DELTAS, {"baseline": names[0], "deltas": deltas})
    return {"markdown": markdown, "table": table, "deltas": deltas, "names": names, "files": files}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rova.eval.compare",
        description="Compare results.json files of stage=eval runs (the first is the baseline).",
    )
    parser.add_argument("results", nargs="+", help="results.json files (baseline first)")
    parser.add_argument("--names", help="comma-separated display names, one per file (default: config name/model)")
    parser.add_argument("--out", required=True, help="folder for compare.md, deltas.json and delta_heatmap*.png")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    names = [n.strip() for n in args.names.split(",")] if args.names is not None else None
    try:
        written = compare_files(args.results, args.out, names)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(written["table"], end="")
    print(f"[rova] {Path(written['files']['compare']).absolute()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
