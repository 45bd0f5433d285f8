"""Reports of evaluation results: markdown, heatmaps and family charts, and model comparisons.

The results dict (results.json, strict JSON: no NaN, every undefined number is null)::

    {
      "config": {                       # free-form, recorded so numbers can be reproduced and compared
        "name": str,                    # optional display name of the model / run
        "model": str, "benchmark": {...}, "eval": {...},      # the resolved config sections
        "scoring": rova.eval.scoring.scoring_conventions(...), # MRA convention, fallback, ...
      },
      "clean": AGGREGATE,               # rova.eval.scoring.aggregate over the clean clips
      "grid": {"<corruption>": {"<severity>": AGGREGATE}},    # corruption = variant (or family) name
      "robustness": RobustnessSummary.to_dict() | null,       # rova.eval.robustness.summarize
      "skipped_media": [...],           # optional: what could not be decoded, and why
      "bad_records": [str, ...],        # optional: records left out for their content (answer key, special tokens)
      "artifacts": {"heatmap": "heatmap.png", "families": "families.png"},   # optional, relative paths
    }

A grid cell may also be a bare accuracy (float) wherever these functions read a grid. Percentages
in the markdown are accuracy x 100 with one decimal; CE, mCE and rPC are shown as percentages too
(ImageNet-C / Kinetics-C style). Pictures are drawn with matplotlib's Agg canvas (no pyplot, no
display) and every file is written atomically (temp file in the same directory, fsync, rename).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rova.eval.robustness import (
    accuracy_grid,
    accuracy_of,
    cell_values,
    family_of,
    ordered_corruptions,
    severity_order,
    summarize,
)
from rova.utils.io import atomic_write_bytes, atomic_write_text

HEATMAP = "heatmap.png"
FAMILIES = "families.png"
REPORT = "report.md"
# Which accuracy is which, said wherever both are shown.
LENIENT_NOTE = ("Strict accuracy (the headline) scores an output without an `<answer>` span 0 (an extraction "
                "failure); lenient accuracy scores such an output as a whole, the way Video-R1- and TW-GRPO-style "
                "evals score untagged answers.")
# The extraction-failure rate's column name, beside every accuracy.
NO_ANSWER = "no `<answer>` (%)"
MISSING = "n/a"


# --------------------------------------------------------------------------------------------------
# Pictures


def _save_figure(fig: Any, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _matrix(grid: Mapping[str, Mapping[Any, Any]]) -> tuple[list[str], list[str], list[list[float]]]:
    acc = accuracy_grid(grid)
    rows = list(acc)
    cols = sorted({s for row in acc.values() for s in row}, key=severity_order)
    values = [[acc[r].get(c, math.nan) for c in cols] for r in rows]
    return rows, cols, values


def _grid_png(grid, path, *, title, cmap, vmin, vmax, label, signed) -> Path:
    import numpy as np

    rows, cols, values = _matrix(grid)
    if not rows:
        raise ValueError("the grid has no cell with a value to draw")
    data = np.ma.masked_invalid(np.array(values, dtype=float) * 100.0)
    fig = _figure(1.6 + 0.9 * max(len(cols), 2), 1.2 + 0.45 * len(rows))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), labels=cols)
    ax.set_yticks(range(len(rows)), labels=[f"{r} ({family_of(r)})" if family_of(r) != r else r for r in rows])
    ax.set_xlabel("severity")
    ax.set_title(title)
    span = (vmax - vmin) or 1.0
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if math.isnan(value):
                ax.text(j, i, MISSING, ha="center", va="center", fontsize=8, color="grey")
                continue
            shown = 100.0 * value
            position = (shown - vmin) / span
            dark = position < 0.25 or position > 0.75 if signed else position < 0.35
            ax.text(j, i, f"{shown:+.1f}" if signed else f"{shown:.1f}", ha="center", va="center",
                    fontsize=8, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label=label)
    return _save_figure(fig, path)


def heatmap_png(grid: Mapping[str, Mapping[Any, Any]], path: str | Path, *, title: str = "Accuracy (%) under corruption") -> Path:
    """Corruption x severity heatmap of accuracies (floats or aggregates), each cell annotated in %."""
    return _grid_png(grid, path, title=title, cmap="RdYlGn", vmin=0.0, vmax=100.0, label="accuracy (%)", signed=False)


def delta_heatmap_png(delta_grid: Mapping[str, Mapping[Any, float]], path: str | Path, *, title: str = "Accuracy change (points)") -> Path:
    """Heatmap of accuracy differences (compare's delta grid), diverging colours centred on 0."""
    cells = [abs(v) for row in accuracy_grid(delta_grid).values() for v in row.values()]
    bound = max(max(cells, default=0.0) * 100.0, 1.0)
    return _grid_png(delta_grid, path, title=title, cmap="RdBu", vmin=-bound, vmax=bound, label="points", signed=True)


def family_chart_png(per_family: Mapping[str, float | None], path: str | Path, *, clean: float | None = None,
                     title: str = "Accuracy (%) per corruption family") -> Path:
    """Bar chart of per-family accuracies (with the clean accuracy as a dashed line when given)."""
    names = [name for name, value in per_family.items() if value is not None and math.isfinite(value)]
    if not names:
        raise ValueError("no family has an accuracy to draw")
    values = [100.0 * per_family[name] for name in names]
    fig = _figure(1.5 + 1.1 * max(len(names), 2), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    bars = ax.bar(names, values, color="#4c72b0")
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 1.0, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    if clean is not None:
        ax.axhline(100.0 * clean, color="#c44e52", linestyle="--", label=f"clean {100.0 * clean:.1f}")
        ax.legend(loc="lower right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    return _save_figure(fig, path)


# --------------------------------------------------------------------------------------------------
# Markdown


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{100.0 * value:.1f}"


def _delta(value: float | None, base: float | None) -> str:
    if value is None or base is None or not (math.isfinite(value) and math.isfinite(base)):
        return MISSING
    return f"{100.0 * (value - base):+.1f}"


def cell_text(value: Any) -> str:
    """A value as one Markdown table cell: a `|` (sub-task keys such as "task_type|task") escaped, one line."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(cell_text(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell_text(cell) for cell in row) + " |" for row in rows]
    return lines


def _robustness(results: Mapping[str, Any]) -> dict[str, Any] | None:
    robustness = results.get("robustness")
    if robustness is not None and hasattr(robustness, "to_dict"):
        return robustness.to_dict()
    if (robustness is None and results.get("grid") and accuracy_of(results.get("clean")) is not None
            and accuracy_grid(results["grid"])):
        return summarize(results["clean"], results["grid"]).to_dict()
    return robustness


# The headline numbers of a results dict, strict, lenient, then the extraction-failure rates (clean, and the mean
# over the grid's cells): the keys of its robustness summary.
HEADLINE = ("clean_accuracy", "mpc", "rpc", "clean_accuracy_lenient", "mpc_lenient", "rpc_lenient",
            "clean_extraction_failure_rate", "mean_extraction_failure_rate")


def headline_metrics(results: Mapping[str, Any]) -> dict[str, float | None]:
    """{HEADLINE key: value} of a results dict (results.json): clean accuracy, mPC and rPC, strict and lenient,
    and the share of outputs without an <answer> span; None where undefined (no corruption grid: no mPC; no
    lenient scores or rates in older results)."""
    robustness = _robustness(results) or {}
    values = {key: robustness.get(key) for key in HEADLINE}
    clean = results.get("clean")
    if values["clean_accuracy"] is None:
        values["clean_accuracy"] = accuracy_of(clean)
    if isinstance(clean, Mapping):
        if values["clean_accuracy_lenient"] is None:
            values["clean_accuracy_lenient"] = accuracy_of(clean.get("accuracy_lenient"))
        if values["clean_extraction_failure_rate"] is None:
            values["clean_extraction_failure_rate"] = clean.get("extraction_failure_rate")
    if values["mean_extraction_failure_rate"] is None and results.get("grid"):
        cells = [r for row in cell_values(results["grid"], "extraction_failure_rate").values() for r in row.values()]
        values["mean_extraction_failure_rate"] = math.fsum(cells) / len(cells) if cells else None
    return values


def _means(values: Mapping[str, Mapping[str, float]], key=lambda corruption: corruption) -> dict[str, float]:
    """Mean of a per-cell figure ({corruption: {severity: value}}) grouped by key(corruption)."""
    groups: dict[str, list[float]] = {}
    for corruption, row in values.items():
        groups.setdefault(key(corruption), []).extend(row.values())
    return {name: math.fsum(v) / len(v) for name, v in groups.items() if v}


def _name(results: Mapping[str, Any], default: str = "model") -> str:
    config = results.get("config") or {}
    return str(config.get("name") or config.get("model") or default)


def _config_lines(config: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in ("name", "model"):
        if config.get(key):
            lines.append(f"- {key}: `{config[key]}`")
    benchmark = config.get("benchmark")
    if isinstance(benchmark, Mapping):
        shown = {k: benchmark[k] for k in ("name", "path", "max_frames", "max_pixels", "fps") if k in benchmark}
        if shown:
            lines.append("- benchmark: " + ", ".join(f"{k} `{v}`" for k, v in shown.items()))
    elif benchmark:
        lines.append(f"- benchmark: `{benchmark}`")
    scoring = config.get("scoring")
    if isinstance(scoring, Mapping):
        if scoring.get("mra"):
            lines.append(f"- regression: {scoring['mra']}")
        if "fallback_whole_output" in scoring:
            lines.append(f"- fallback_whole_output: `{scoring['fallback_whole_output']}`")
        caption = scoring.get("caption")
        if isinstance(caption, Mapping):
            line = f"- caption recall: {caption.get('scorer')}"
            if isinstance(caption.get("judge"), Mapping):
                line += (f" `{caption['judge'].get('model')}`: {caption.get('items_judged')} judged, "
                         f"{caption.get('judge_fallbacks')} scored by the rule instead (judge failed)")
            lines.append(line + f"; rule: covered when LCS recall >= {caption.get('threshold')}")
    return lines


def _clean_section(clean: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Clean accuracy",
        "",
        (f"**{_pct(clean.get('accuracy'))} %** strict over {clean.get('n', 0)} items; lenient "
         f"{_pct(clean.get('accuracy_lenient'))}{' %' if clean.get('accuracy_lenient') is not None else ''}; "
         f"extraction failures "
         f"{clean.get('extraction_failures', 0)} ({_pct(clean.get('extraction_failure_rate'))} %); "
         f"skipped media {clean.get('skipped_media', 0)}."),
        "",
        LENIENT_NOTE,
        "",
    ]
    by_type = clean.get("by_problem_type") or {}
    if by_type:
        lines += ["### Per problem type", ""]
        lines += _table(["problem type", "n", "accuracy (%)", "lenient (%)", "extraction failures"],
                        [[t, g["n"], _pct(g["accuracy"]), _pct(g.get("accuracy_lenient")), g["extraction_failures"]]
                         for t, g in by_type.items()])
        lines.append("")
    by_benchmark = clean.get("by_benchmark") or {}
    if by_benchmark:
        lines += ["### Per benchmark", ""]
        rows = []
        for name, group in by_benchmark.items():
            means = ", ".join(f"{k} {_pct(v)}" for k, v in (group.get("subtask_mean") or {}).items()) or MISSING
            rows.append([name, group["n"], _pct(group["accuracy"]), _pct(group.get("accuracy_lenient")), means,
                         group["extraction_failures"], group.get("skipped_media", 0)])
        lines += _table(["benchmark", "n", "accuracy (%)", "lenient (%)", "mean over sub-tasks (%)",
                         "extraction failures", "skipped media"], rows)
        lines.append("")
        for name, group in by_benchmark.items():
            for key, values in (group.get("by_subtask") or {}).items():
                # A key with spellings is named by the ones this benchmark's records carry.
                column = " / ".join((group.get("subtask_spellings") or {}).get(key) or [key])
                lines += [f"#### {name}: per {column}", ""]
                lines += _table([column, "n", "accuracy (%)", "lenient (%)", "extraction failures"],
                                [[v, g["n"], _pct(g["accuracy"]), _pct(g.get("accuracy_lenient")),
                                  g.get("extraction_failures", MISSING)] for v, g in values.items()])
                lines.append("")
    return lines


def _robustness_section(results: Mapping[str, Any], robustness: Mapping[str, Any], images: Mapping[str, str]) -> list[str]:
    clean = robustness.get("clean_accuracy")
    lines = ["## Robustness", ""]
    header = ["clean (%)", "mPC (%)", "rPC (%)", "mean flip rate (%)", "clean lenient (%)", "mPC lenient (%)",
              "rPC lenient (%)", "clean " + NO_ANSWER, "corrupted " + NO_ANSWER]
    row = [_pct(clean), _pct(robustness.get("mpc")), _pct(robustness.get("rpc")), _pct(robustness.get("mean_flip_rate")),
           _pct(robustness.get("clean_accuracy_lenient")), _pct(robustness.get("mpc_lenient")),
           _pct(robustness.get("rpc_lenient")), _pct(robustness.get("clean_extraction_failure_rate")),
           _pct(robustness.get("mean_extraction_failure_rate"))]
    if robustness.get("reference"):
        header += [f"mCE vs {robustness['reference']} (%)", "relative mCE (%)"]
        row += [_pct(robustness.get("mce")), _pct(robustness.get("relative_mce"))]
    lines += _table(header, [row]) + [""]
    reference_path = ((results.get("config") or {}).get("eval") or {}).get("reference")
    if robustness.get("reference") and reference_path and str(reference_path) != robustness["reference"]:
        lines += [f"Reference `{robustness['reference']}`: `{reference_path}`.", ""]
    grid = results.get("grid") or {}
    failures = robustness.get("extraction_failure_rate") or cell_values(grid, "extraction_failure_rate")
    lenient = cell_values(grid, "accuracy_lenient")
    if images.get("heatmap"):
        lines += [f"![accuracy heatmap]({images['heatmap']})", ""]

    per_family = robustness.get("per_family") or {}
    if per_family:
        lines += ["### Per family", ""]
        family_lenient, family_failures = _means(lenient, family_of), _means(failures, family_of)
        lines += _table(["family", "accuracy (%)", "vs clean (points)", "lenient (%)", NO_ANSWER],
                        [[f, _pct(v), _delta(v, clean), _pct(family_lenient.get(f)), _pct(family_failures.get(f))]
                         for f, v in per_family.items()]) + [""]
        if images.get("families"):
            lines += [f"![per-family accuracy]({images['families']})", ""]

    acc = accuracy_grid(results.get("grid") or {})
    if acc:
        severities = sorted({s for r in acc.values() for s in r}, key=severity_order)
        per_corruption = robustness.get("per_corruption") or {}
        flip = robustness.get("flip_rate") or {}
        ce = robustness.get("ce") or {}
        relative = robustness.get("relative_ce") or {}
        corruption_lenient, corruption_failures = _means(lenient), _means(failures)
        header = ["corruption", "family", *[f"s{s}" for s in severities], "mean", "lenient mean (%)", NO_ANSWER]
        header += ["flip rate (%)"] * bool(flip) + ["CE (%)", "relative CE (%)"] * bool(ce)
        rows = []
        for corruption, cells in acc.items():
            cell_text = []
            for s in severities:
                text = _pct(cells.get(s))
                if flip and corruption in flip and flip[corruption].get(s) is not None:
                    text += f" ({_pct(flip[corruption][s])})"
                cell_text.append(text)
            row = [corruption, family_of(corruption), *cell_text, _pct(per_corruption.get(corruption)),
                   _pct(corruption_lenient.get(corruption)), _pct(corruption_failures.get(corruption))]
            if flip:
                rates = [r for r in (flip.get(corruption) or {}).values() if r is not None]
                row.append(_pct(sum(rates) / len(rates)) if rates else MISSING)
            if ce:
                row += [_pct(ce.get(corruption)), _pct(relative.get(corruption))]
            rows.append(row)
        lines += ["### Accuracy (%) per corruption and severity" + (" (flip rate %)" if flip else ""), ""]
        lines += _table(header, rows) + [""]
        for title, values in (("Outputs without an `<answer>` span (%) per corruption and severity", failures),
                              ("Lenient accuracy (%) per corruption and severity", lenient)):
            if values:
                lines += [f"### {title}", ""]
                lines += _table(["corruption", *[f"s{s}" for s in severities]],
                                [[c, *[_pct(values.get(c, {}).get(s)) for s in severities]] for c in acc]) + [""]

    reasons = robustness.get("reasons") or {}
    notes = robustness.get("notes") or []
    if reasons or notes:
        lines += ["### Undefined metrics and notes", ""]
        lines += [f"- `{metric}`: {why}" for metric, why in reasons.items()]
        lines += [f"- {note}" for note in notes]
        lines.append("")
    return lines


def markdown_report(results: Mapping[str, Any], *, images: Mapping[str, str] | None = None) -> str:
    """The report of one results dict; `images` (default results["artifacts"]) maps "heatmap" and
    "families" to the relative paths the markdown links to."""
    images = dict(images if images is not None else results.get("artifacts") or {})
    lines = [f"# Evaluation report: {_name(results)}", ""]
    config_lines = _config_lines(results.get("config") or {})
    if config_lines:
        lines += config_lines + [""]
    clean = results.get("clean")
    if clean:
        lines += _clean_section(clean)
    robustness = _robustness(results)
    if robustness:
        lines += _robustness_section(results, robustness, images)
    skipped = results.get("skipped_media")
    if isinstance(skipped, list) and skipped:
        lines += ["## Skipped media", "", f"{len(skipped)} item(s) could not be read and were not scored.", ""]
    overrides = results.get("media_kind_overrides")  # items whose media on disk was not the kind declared
    if isinstance(overrides, list) and overrides:
        kind = {"frames": ("frame folders", "read as frame folders"), "video": ("video files", "decoded as videos"),
                "image": ("images", "read as images")}
        lines += ["## Media read as another kind", ""] + [
            f"- {o['items']} item(s) declared as {kind[o['declared']][0]} were {kind[o['read_as']][0]} and were "
            f"{kind[o['read_as']][1]}." for o in overrides] + [""]
    bad = results.get("bad_records")
    if isinstance(bad, list) and bad:
        lines += ["## Bad records", "", f"{len(bad)} record(s) left out before scoring (answer key or text unusable; "
                  "listed in results.json).", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write heatmap.png (when the grid has cells), families.png (when families have accuracies) and
    report.md linking to them into out_dir; returns {"heatmap"?, "families"?, "report": path}."""
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    robustness = _robustness(results)
    if accuracy_grid(results.get("grid") or {}):
        written["heatmap"] = heatmap_png(results["grid"], out_dir / HEATMAP)
    per_family = (robustness or {}).get("per_family") or {}
    if any(v is not None for v in per_family.values()):
        written["families"] = family_chart_png(per_family, out_dir / FAMILIES, clean=(robustness or {}).get("clean_accuracy"))
    images = {key: path.name for key, path in written.items()}
    written["report"] = atomic_write_text(out_dir / REPORT, markdown_report({**results, "robustness": robustness}, images=images))
    return written


# --------------------------------------------------------------------------------------------------
# Comparison


def compare(
    results: Sequence[Mapping[str, Any]], names: Sequence[str], *, baseline: int = 0
) -> tuple[str, dict[str, dict[str, dict[str, float]]]]:
    """Compare models on the same benchmark and grid.

    Returns (markdown, deltas): a table of clean / mPC / rPC / flip / mCE / per-family accuracies per
    model (with each model's change against `names[baseline]`), a per-corruption table, and the config
    keys that differ (other than the model itself); deltas = {name: {corruption: {severity: Acc_name -
    Acc_baseline}}} for every non-baseline model, over the cells both hold (draw one with
    delta_heatmap_png).
    """
    if len(results) != len(names):
        raise ValueError(f"{len(results)} results for {len(names)} names")
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique: {list(names)}")
    if not 0 <= baseline < len(results):
        raise ValueError(f"baseline {baseline} is not an index into {len(results)} results")
    summaries = [_robustness(r) or {} for r in results]
    grids = [accuracy_grid(r.get("grid") or {}) for r in results]
    cleans = [accuracy_of(r.get("clean")) for r in results]
    base = names[baseline]

    families = []
    for summary in summaries:
        families += [f for f in (summary.get("per_family") or {}) if f not in families]
    with_ce = any(s.get("reference") for s in summaries)
    header = ["model", "clean (%)", f"Δ clean vs {base}", "mPC (%)", f"Δ mPC vs {base}", "rPC (%)", "mean flip (%)",
              "clean lenient (%)", "mPC lenient (%)", "clean " + NO_ANSWER, "corrupted " + NO_ANSWER]
    header += ["mCE (%)", "relative mCE (%)"] * with_ce + [f"{f} (%)" for f in families]
    rows = []
    for name, clean, summary, result in zip(names, cleans, summaries, results):
        clean_group = result.get("clean") if isinstance(result.get("clean"), Mapping) else {}
        row = [name, _pct(clean), _delta(clean, cleans[baseline]), _pct(summary.get("mpc")),
               _delta(summary.get("mpc"), summaries[baseline].get("mpc")), _pct(summary.get("rpc")),
               _pct(summary.get("mean_flip_rate")), _pct(clean_group.get("accuracy_lenient")),
               _pct(summary.get("mpc_lenient")), _pct(clean_group.get("extraction_failure_rate")),
               _pct(headline_metrics(result)["mean_extraction_failure_rate"])]
        if with_ce:
            row += [_pct(summary.get("mce")), _pct(summary.get("relative_mce"))]
        row += [_pct((summary.get("per_family") or {}).get(f)) for f in families]
        rows.append(row)
    lines = _table(header, rows) + ["", LENIENT_NOTE, ""]

    corruptions = ordered_corruptions(list({c for g in grids for c in g}))
    if corruptions:
        failures = [_means(cell_values(r.get("grid") or {}, "extraction_failure_rate")) for r in results]
        lines += ["Mean accuracy (%) over severities, per corruption, each model's share of outputs without an "
                  "`<answer>` span beside it:", ""]
        rows = [[c, *[cell for s, f in zip(summaries, failures)
                      for cell in (_pct(s.get("per_corruption", {}).get(c)), _pct(f.get(c)))]] for c in corruptions]
        lines += _table(["corruption", *[cell for n in names for cell in (f"{n} (%)", f"{n} {NO_ANSWER}")]], rows) + [""]

    from rova.utils.mapping import flatten

    configs = [flatten({k: v for k, v in (r.get("config") or {}).items() if k not in ("name", "model")}) for r in results]
    differing = sorted(k for k in set().union(*configs) if len({repr(c.get(k)) for c in configs}) > 1)
    if differing:
        lines.append("Config keys that differ between the runs (numbers may not be comparable): "
                     + ", ".join(f"`{k}`" for k in differing))
        lines.append("")

    deltas: dict[str, dict[str, dict[str, float]]] = {}
    for index, name in enumerate(names):
        if index == baseline:
            continue
        deltas[name] = {}
        for corruption, cells in grids[index].items():
            base_cells = grids[baseline].get(corruption, {})
            row = {s: cells[s] - base_cells[s] for s in cells if s in base_cells}
            if row:
                deltas[name][corruption] = row
    return "\n".join(lines).rstrip() + "\n", deltas
