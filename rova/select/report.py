"""stage=select's report: select_report.md (counts, per problem type, the histogram as a table) and select_hist.png.

Both are drawn from the select_report.json dict (rova.select.runner.write_outputs). The picture uses matplotlib's
Agg canvas (no pyplot, no display) and is written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rova.select.rule import DROPPED, KEPT, NO_VARIANCE, TOO_EASY, TOO_HARD

LABELS = {KEPT: "kept", TOO_EASY: "dropped: too easy", TOO_HARD: "dropped: too hard",
          NO_VARIANCE: "dropped: no variance", "skipped": "skipped (media)"}
BAR_WIDTH = 40  # characters of the longest text bar in the markdown histogram
MAX_LISTED = 50  # skipped media and bad records listed in the markdown (all of them are in the JSON)


def _bins(report: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    hist = report["mean_reward_histogram"]
    edges = hist["edges"]
    last = len(edges) - 2
    return [(f"[{edges[i]:.1f}, {edges[i + 1]:.1f}{']' if i == last else ')'}", hist["kept"][i], hist["dropped"][i])
            for i in range(len(edges) - 1)]


def histogram_png(report: Mapping[str, Any], path: str | Path) -> Path:
    """Stacked bars: records per bin of mean reward, kept and dropped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rova.utils.io import atomic_write_bytes

    bins = _bins(report)
    edges = report["mean_reward_histogram"]["edges"]
    width = edges[1] - edges[0]
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(len(bins))]
    kept = [k for _, k, _ in bins]
    dropped = [d for _, _, d in bins]
    fig = Figure(figsize=(6.4, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(centers, kept, width=width * 0.9, color="#2b8a3e", label=f"kept ({report[KEPT]})")
    ax.bar(centers, dropped, width=width * 0.9, bottom=kept, color="#adb5bd",
           label=f"dropped ({sum(report[s] for s in DROPPED)})")
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0, max([k + d for _, k, d in bins] + [1]) * 1.3)  # headroom for the legend
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"mean reward over {report['settings']['num_samples']} samples")
    ax.set_ylabel("records")
    ax.set_title(f"stage=select: {report[KEPT]} of {report['records']} records kept ({report['skipped']} media skipped)")
    ax.legend(loc="upper center", ncols=2, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    return ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(map(cell, row)) + " |" for row in rows]]


def markdown_report(report: Mapping[str, Any], image: str | None = None) -> str:
    """The report as markdown: what was run, the counts, per problem type, the histogram of mean rewards."""
    settings = report["settings"]
    statuses = [KEPT, *DROPPED, "skipped"]
    lines = [
        "# stage=select: variance-aware data selection (Temporal-R1)", "",
        f"- model: `{report['model']}`",
        f"- data: `{report['train_file']}`",
        f"- {settings['num_samples']} samples per record (temperature {settings['temperature']}, top_p "
        f"{settings['top_p']}, max {settings['max_new_tokens']} new tokens, seed {settings['seed']})",
        f"- kept: right/wrong rewards when {settings['min_mean']} < mean < {settings['max_mean']}; graded rewards "
        f"(IoU, ...) when std > {settings['min_std']}",
        "",
        "## Records", "",
        *_table(["", "records"], [["records", report["records"]],
                                   *[[LABELS[s], report[s]] for s in statuses]]),
        "",
        "## Per problem type", "",
        *_table(["problem type", "rule", *[LABELS[s] for s in statuses]],
                [[t, c["rule"], *[c[s] for s in statuses]] for t, c in report["by_problem_type"].items()]),
        "",
        "## Mean reward per record", "",
    ]
    bins = _bins(report)
    largest = max([k + d for _, k, d in bins] + [1])
    lines += _table(["mean reward", "kept", "dropped", ""],
                    [[label, k, d, "#" * round(BAR_WIDTH * k / largest) + "." * round(BAR_WIDTH * d / largest)]
                     for label, k, d in bins])
    lines += ["", "`#` kept, `.` dropped."]
    if image:
        lines += ["", f"![mean reward per record]({image})"]
    for key, title in (("skipped_media", "Skipped media"), ("bad_records", "Bad records (left out before sampling)")):
        entries = report.get(key) or []
        if not entries:
            continue
        lines += ["", f"## {title} ({len(entries)})", ""]
        for entry in entries[:MAX_LISTED]:
            lines.append(f"- `{entry['path']}`: {entry['reason']}" if isinstance(entry, Mapping) else f"- {entry}")
        if len(entries) > MAX_LISTED:
            lines.append(f"- ... {len(entries) - MAX_LISTED} more in select_report.json")
    return "\n".join(lines) + "\n"
