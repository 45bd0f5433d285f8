"""The cells of the robustness grid: "clean", or "<variant>@<severity>" (the `cell` of every prediction line)."""

from __future__ import annotations

CLEAN_CELL = "clean"


def cell_name(corruption: str | None, severity: int | None) -> str:
    """"clean", or "<variant>@<severity>" for a cell of the robustness grid."""
    return CLEAN_CELL if corruption is None else f"{corruption}@{int(severity)}"


def parse_cell(name: str) -> tuple[str | None, int | None]:
    if name == CLEAN_CELL:
        return None, None
    corruption, _, severity = name.rpartition("@")
    return corruption, int(severity)
