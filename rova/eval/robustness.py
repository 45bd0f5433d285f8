"""Robustness metrics over a corruption x severity grid (../shared/docs/eval.md, "Robustness metrics").

Inputs are accuracies: a float, or an aggregate dict from rova.eval.scoring.aggregate (its "accuracy"
is used). A grid is {corruption: {severity: accuracy}}; a corruption key is a variant name ("rain"),
a family name ("weather") or anything else (family "other"); severity keys may be ints or strings
(JSON object keys) and are normalised to strings ("1".."5").

- mPC = mean over every (c, s) cell of Acc(c, s) (Michaelis et al. 2019); on a complete grid this
  equals the mean over c of the mean over s. rPC = mPC / Acc_clean.
- per family: mean over the cells of the family's variants and severities (PVRBench families).
- E = 1 - Acc. With a reference model r (Hendrycks & Dietterich 2019), over the severities both grids
  hold for c: CE_c = sum_s E(c, s) / sum_s E_r(c, s); mCE = mean_c CE_c;
  relative CE_c = sum_s (E(c, s) - E_clean) / sum_s (E_r(c, s) - E_r,clean); relative mCE = mean_c.
  A metric whose denominator is 0 (or, for relative CE, not positive: the reference's error does not
  grow under c, so the ratio has no meaning) is NaN and `reasons[metric]` says why; mCE and relative mCE
  average the finite CE_c only, and say which corruptions they left out in `notes`.
- flip rate(c, s) = fraction of the items scored both clean and under (c, s) that are right on the
  clean clip and wrong on the corrupted one (denominator: all such items, as eval.md; the rate among
  the clean-right items is reported too). "Right" is `is_correct`: score == 1 for the binary types
  (multiple choice, numerical), score >= CORRECT_THRESHOLD for graded ones (OCR, free-form, MRA, IoU).

Everything is a pure function; `summarize` bundles them into a RobustnessSummary whose `to_dict()` is
strict JSON (NaN becomes None, with the reason kept beside it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rova.config.corruption import FAMILIES, FAMILY_OF, VARIANTS_BY_FAMILY
from rova.eval.scoring import BINARY_TYPES
from rova.rewards import canonical_problem_type

# A graded item (OCR, free-form, regression MRA, grounding IoU) counts as right at score >= 0.5.
CORRECT_THRESHOLD = 0.5
OTHER_FAMILY = "other"
_EPS = 1e-12

CONVENTIONS = {
    "correct": f"score == 1 for {', '.join(BINARY_TYPES)}; score >= {CORRECT_THRESHOLD} otherwise",
    "mpc": "mean over all (corruption, severity) cells",
    "lenient": "*_lenient: the same metrics from the lenient accuracies (an output without an <answer> span scored "
               "as a whole); the strict ones are the headline",
    "extraction_failure": "extraction_failure_rate: per cell, the fraction of outputs without an <answer> span; "
                          "mean_extraction_failure_rate: their mean over the cells (the rate beside mPC)",
    "family": "mean over the cells of the family's variants and severities",
    "flip_rate": "right on clean and wrong on corrupted, over the items scored in both",
    "ce": "sum over the severities both grids hold; relative CE is NaN when the reference's summed error growth <= 0",
}

Grid = Mapping[str, Mapping[Any, Any]]


# --------------------------------------------------------------------------------------------------
# Normalisation


def accuracy_of(value: Any) -> float | None:
    """The accuracy of a float or of an aggregate dict ({"accuracy": ...}); None when it has none."""
    if isinstance(value, Mapping):
        value = value.get("accuracy")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"accuracy must be a finite number, got {value!r}")
    return float(value)


def severity_key(severity: Any) -> str:
    """"3" for 3, 3.0 or "3"; other values stringified."""
    if isinstance(severity, float) and severity.is_integer():
        severity = int(severity)
    text = str(severity).strip()
    try:
        return str(int(text))
    except ValueError:
        return text


def severity_order(key: str) -> tuple[int, float, str]:
    """Sort key of a severity key: numbers in numeric order, then the rest alphabetically."""
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


_CATALOGUE_ORDER = {name: i for i, name in enumerate((*FAMILY_OF, *FAMILIES))}


def ordered_corruptions(names: Sequence[str]) -> list[str]:
    """Catalogue order (variants family by family, then family names), then the rest alphabetically."""
    return sorted(names, key=lambda n: (_CATALOGUE_ORDER.get(n, len(_CATALOGUE_ORDER)), n))


def family_of(corruption: str) -> str:
    """The family of a grid key: itself for a family name, its family for a variant, else "other"."""
    if corruption in VARIANTS_BY_FAMILY:
        return corruption
    return FAMILY_OF.get(corruption, OTHER_FAMILY)


def accuracy_grid(grid: Grid) -> dict[str, dict[str, float]]:
    """{corruption: {severity: accuracy}} with string severities in numeric order; cells without an
    accuracy (no item scored) are dropped, and so are corruptions left with no cell."""
    out: dict[str, dict[str, float]] = {}
    for corruption in ordered_corruptions(list(grid)):
        cells: dict[str, float] = {}
        for severity, value in grid[corruption].items():
            key = severity_key(severity)
            if key in cells:
                raise ValueError(f"grid[{corruption!r}] holds severity {key} twice")
            acc = accuracy_of(value)
            if acc is not None:
                cells[key] = acc
        if cells:
            out[str(corruption)] = dict(sorted(cells.items(), key=lambda kv: severity_order(kv[0])))
    return out


def _cells(grid: Mapping[str, Mapping[str, float]]) -> list[float]:
    return [acc for row in grid.values() for acc in row.values()]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


# --------------------------------------------------------------------------------------------------
# Metrics


def mpc(grid: Grid) -> float:
    """Mean accuracy over every cell of the grid; NaN for an empty grid."""
    return _mean(_cells(accuracy_grid(grid)))


def rpc(mpc_value: float, clean_accuracy: float) -> float:
    """mPC / Acc_clean; NaN when Acc_clean is 0 (or mPC is NaN)."""
    if not math.isfinite(mpc_value) or clean_accuracy <= _EPS:
        return math.nan
    return mpc_value / clean_accuracy


def per_corruption(grid: Grid) -> dict[str, float]:
    """Mean accuracy over severities, per corruption."""
    return {c: _mean(list(row.values())) for c, row in accuracy_grid(grid).items()}


def per_severity(grid: Grid) -> dict[str, float]:
    """Mean accuracy over corruptions, per severity."""
    by: dict[str, list[float]] = {}
    for row in accuracy_grid(grid).values():
        for severity, acc in row.items():
            by.setdefault(severity, []).append(acc)
    return {s: _mean(v) for s, v in sorted(by.items(), key=lambda kv: severity_order(kv[0]))}


def per_family(grid: Grid) -> dict[str, float]:
    """Mean accuracy over the cells of each family's variants and severities (catalogue order)."""
    by: dict[str, list[float]] = {}
    for corruption, row in accuracy_grid(grid).items():
        by.setdefault(family_of(corruption), []).extend(row.values())
    order = {f: i for i, f in enumerate((*FAMILIES, OTHER_FAMILY))}
    return {f: _mean(v) for f, v in sorted(by.items(), key=lambda kv: order[kv[0]])}


def is_correct(score: float, problem_type: str) -> bool:
    """Right or wrong, for flip rates: exact 1 for the binary types, >= CORRECT_THRESHOLD otherwise."""
    if canonical_problem_type(problem_type) in BINARY_TYPES:
        return score == 1.0
    return score >= CORRECT_THRESHOLD


def _index(items: Sequence[Mapping[str, Any]], id_keys: Sequence[str], what: str) -> dict[tuple, bool]:
    index: dict[tuple, bool] = {}
    for position, item in enumerate(items):
        missing = [k for k in id_keys if k not in item]
        if missing:
            raise ValueError(f"{what} item {position} has no {missing} key(s) to match items by")
        key = tuple(str(item[k]) for k in id_keys)
        if key in index:
            raise ValueError(f"{what} items hold {dict(zip(id_keys, key))} twice")
        index[key] = is_correct(item["score"], item["problem_type"])
    return index


def default_id_keys(items: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """("benchmark", "item_id") when every item carries an item_id (rova.eval predictions), else
    ("benchmark", "problem_id") (Video-R1 records)."""
    if items and all("item_id" in item for item in items):
        return ("benchmark", "item_id")
    return ("benchmark", "problem_id")


def flip_stats(
    clean_items: Sequence[Mapping[str, Any]],
    corrupted_items: Sequence[Mapping[str, Any]],
    *,
    id_keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Flips between clean and corrupted per-item scores (items dicts with score, problem_type, id_keys;
    id_keys None: `default_id_keys(clean_items)`).

    Returns {"n": items in both, "flips": right -> wrong, "unflips": wrong -> right, "clean_right": n,
    "rate": flips / n, "rate_given_clean_right": flips / clean_right, "missing": clean items absent
    from the corrupted run (e.g. skipped media)}; a rate over zero items is NaN.
    """
    if id_keys is None:
        id_keys = default_id_keys(clean_items)
    clean = _index(clean_items, id_keys, "clean")
    corrupted = _index(corrupted_items, id_keys, "corrupted")
    common = [key for key in clean if key in corrupted]
    flips = sum(1 for key in common if clean[key] and not corrupted[key])
    unflips = sum(1 for key in common if not clean[key] and corrupted[key])
    clean_right = sum(1 for key in common if clean[key])
    return {
        "n": len(common),
        "flips": flips,
        "unflips": unflips,
        "clean_right": clean_right,
        "rate": flips / len(common) if common else math.nan,
        "rate_given_clean_right": flips / clean_right if clean_right else math.nan,
        "missing": len(clean) - len(common),
    }


def corruption_errors(
    clean_accuracy: float,
    grid: Grid,
    reference_clean: float,
    reference_grid: Grid,
) -> tuple[dict[str, float], dict[str, float], dict[str, str], list[str]]:
    """(CE_c, relative CE_c, reasons for NaN entries keyed "ce.<c>" / "relative_ce.<c>", notes)."""
    ours, ref = accuracy_grid(grid), accuracy_grid(reference_grid)
    ce: dict[str, float] = {}
    relative: dict[str, float] = {}
    reasons: dict[str, str] = {}
    notes: list[str] = []
    e_clean, er_clean = 1.0 - clean_accuracy, 1.0 - reference_clean
    for corruption, row in ours.items():
        ref_row = ref.get(corruption)
        severities = [s for s in row if ref_row is not None and s in ref_row]
        if not severities:
            why = "the reference has no cell for this corruption" + (
                "" if ref_row is None else " at these severities"
            )
            ce[corruption] = relative[corruption] = math.nan
            reasons[f"ce.{corruption}"] = reasons[f"relative_ce.{corruption}"] = why
            continue
        if len(severities) != len(row) or len(severities) != len(ref_row):
            notes.append(f"CE of {corruption} sums over the severities both grids hold: {severities}")
        errors = math.fsum(1.0 - row[s] for s in severities)
        ref_errors = math.fsum(1.0 - ref_row[s] for s in severities)
        if ref_errors <= _EPS:
            ce[corruption] = math.nan
            reasons[f"ce.{corruption}"] = "the reference's error is 0 at every severity (division by zero)"
        else:
            ce[corruption] = errors / ref_errors
        growth = math.fsum((1.0 - row[s]) - e_clean for s in severities)
        ref_growth = math.fsum((1.0 - ref_row[s]) - er_clean for s in severities)
        if ref_growth <= _EPS:
            relative[corruption] = math.nan
            reasons[f"relative_ce.{corruption}"] = (
                f"the reference's error does not grow under this corruption "
                f"(sum of E_r(c, s) - E_r,clean = {ref_growth:.6g} <= 0)"
            )
        else:
            relative[corruption] = growth / ref_growth
    return ce, relative, reasons, notes


def _mean_finite(values: Mapping[str, float], name: str, reasons: dict[str, str], notes: list[str]) -> float:
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    left_out = [k for k in values if k not in finite]
    if not finite:
        label = "CE" if name == "mce" else "relative CE"
        reasons[name] = f"no corruption has a finite {label}" if values else "no corruption to average"
        return math.nan
    if left_out:
        notes.append(f"{name} averages {len(finite)} of {len(values)} corruptions; left out (NaN): {left_out}")
    return _mean(list(finite.values()))


# --------------------------------------------------------------------------------------------------
# Summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class RobustnessSummary:
    """Every robustness number of one results file. NaN marks an undefined metric (see `reasons`)."""

    clean_accuracy: float
    mpc: float
    rpc: float
    n_cells: int
    grid_complete: bool
    per_corruption: dict[str, float]
    per_severity: dict[str, float]
    per_family: dict[str, float]
    families: dict[str, str]  # grid key -> family
    flip: dict[str, dict[str, dict[str, Any]]] | None = None  # flip_stats per cell
    flip_rate: dict[str, dict[str, float]] | None = None
    mean_flip_rate: float | None = None
    reference: str | None = None
    ce: dict[str, float] | None = None
    mce: float | None = None
    relative_ce: dict[str, float] | None = None
    relative_mce: float | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    clean_accuracy_lenient: float | None = None  # None: an aggregate without lenient scores (older predictions)
    mpc_lenient: float | None = None
    rpc_lenient: float | None = None
    clean_extraction_failure_rate: float | None = None  # outputs without an <answer> span: rova.eval.scoring
    extraction_failure_rate: dict[str, dict[str, float]] | None = None  # per cell
    mean_extraction_failure_rate: float | None = None  # over the grid's cells, beside mPC

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: NaN -> None (its reason stays in "reasons"); conventions included."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["conventions"] = dict(CONVENTIONS)
        return _jsonable(data)


def cell_values(grid: Grid, key: str) -> dict[str, dict[str, float]]:
    """{corruption: {severity: aggregate[key]}} for the cells that are aggregate dicts holding a number under `key`
    ("extraction_failure_rate", "accuracy_lenient"): the grid of a per-cell figure other than the accuracy, in
    catalogue and severity order; bare-float cells and missing values are left out."""
    out: dict[str, dict[str, float]] = {}
    for corruption in ordered_corruptions(list(grid)):
        row = {severity_key(s): float(cell[key]) for s, cell in grid[corruption].items()
               if isinstance(cell, Mapping) and isinstance(cell.get(key), (int, float)) and not isinstance(cell.get(key), bool)}
        if row:
            out[str(corruption)] = dict(sorted(row.items(), key=lambda kv: severity_order(kv[0])))
    return out


def extraction_failures(clean: Any, grid: Grid) -> tuple[float | None, dict[str, dict[str, float]] | None, float | None]:
    """(clean rate, {corruption: {severity: rate}}, mean over the grid's cells) of outputs without an <answer>
    span: a strict accuracy of 0 with a rate of 1 is a format failure, not a wrong answer. Each None when the
    aggregates carry no rate (bare-float accuracies)."""
    clean_rate = clean.get("extraction_failure_rate") if isinstance(clean, Mapping) else None
    rates = cell_values(grid, "extraction_failure_rate")
    cells = [rate for row in rates.values() for rate in row.values()]
    return clean_rate, rates or None, (_mean(cells) if cells else None)


def lenient_of(value: Any) -> float | None:
    """The lenient accuracy of an aggregate dict ({"accuracy_lenient": ...}); None for a float or without one."""
    if not isinstance(value, Mapping) or value.get("accuracy_lenient") is None:
        return None
    return accuracy_of(value["accuracy_lenient"])


def lenient_metrics(clean: Any, grid: Grid) -> tuple[float | None, float | None, float | None]:
    """(clean, mPC, rPC) from the lenient accuracies; each None when an aggregate lacks its lenient accuracy."""
    clean_lenient = lenient_of(clean)
    cells = [lenient_of(cell) for row in grid.values() for cell in row.values()]
    mpc_lenient = _mean(cells) if cells and all(c is not None for c in cells) else None
    rpc_lenient = None
    if mpc_lenient is not None and clean_lenient is not None and clean_lenient > _EPS:
        rpc_lenient = mpc_lenient / clean_lenient
    return clean_lenient, mpc_lenient, rpc_lenient


def reference_label(path: str | Path, reference: Mapping[str, Any]) -> str:
    """A short name for a reference results file, for column headers (the path itself goes in the config): its
    config's display name, else its run dir's name for a `results.json`, else the file's stem."""
    config = reference.get("config") if isinstance(reference, Mapping) else None
    if isinstance(config, Mapping) and config.get("name"):
        return str(config["name"])
    path = Path(path)
    return path.parent.name if path.name == "results.json" and path.parent.name else path.stem


def summarize(
    clean: Any,
    grid: Grid,
    *,
    clean_items: Sequence[Mapping[str, Any]] | None = None,
    grid_items: Mapping[str, Mapping[Any, Sequence[Mapping[str, Any]]]] | None = None,
    reference: Mapping[str, Any] | None = None,
    reference_name: str | None = None,
    id_keys: Sequence[str] | None = None,
) -> RobustnessSummary:
    """All robustness metrics of one model.

    clean: Acc_clean (float or aggregate dict). grid: {corruption: {severity: accuracy or aggregate}}.
    clean_items / grid_items ({corruption: {severity: items}}): per-item scores, for flip rates.
    reference: another results dict ({"clean": ..., "grid": ...}, e.g. a loaded results file), for
    CE / mCE / relative CE / relative mCE; its name is reference_name or reference["config"]["name"].
    """
    clean_accuracy = accuracy_of(clean)
    if clean_accuracy is None:
        raise ValueError("the clean accuracy is missing (no item was scored clean)")
    acc = accuracy_grid(grid)
    reasons: dict[str, str] = {}
    notes: list[str] = []
    cells = _cells(acc)
    mpc_value = _mean(cells)
    if not cells:
        reasons["mpc"] = "the grid has no cell with an accuracy"
    rpc_value = rpc(mpc_value, clean_accuracy)
    if math.isfinite(mpc_value) and not math.isfinite(rpc_value):
        reasons["rpc"] = "Acc_clean is 0 (division by zero)"
    elif "mpc" in reasons:
        reasons["rpc"] = reasons["mpc"]
    severity_sets = {tuple(row) for row in acc.values()}
    complete = len(severity_sets) <= 1
    if not complete:
        notes.append("the corruptions hold different severities: mPC is the mean over the cells present")

    summary = RobustnessSummary(
        clean_accuracy=clean_accuracy,
        mpc=mpc_value,
        rpc=rpc_value,
        n_cells=len(cells),
        grid_complete=complete,
        per_corruption=per_corruption(acc),
        per_severity=per_severity(acc),
        per_family=per_family(acc),
        families={c: family_of(c) for c in acc},
        reasons=reasons,
        notes=notes,
    )
    summary.clean_accuracy_lenient, summary.mpc_lenient, summary.rpc_lenient = lenient_metrics(clean, grid)
    (summary.clean_extraction_failure_rate, summary.extraction_failure_rate,
     summary.mean_extraction_failure_rate) = extraction_failures(clean, grid)

    if grid_items is not None:
        if clean_items is None:
            raise ValueError("flip rates need clean_items as well as grid_items")
        flip: dict[str, dict[str, dict[str, Any]]] = {}
        for corruption in ordered_corruptions(list(grid_items)):
            row = {severity_key(s): flip_stats(clean_items, items, id_keys=id_keys) for s, items in grid_items[corruption].items()}
            flip[corruption] = dict(sorted(row.items(), key=lambda kv: severity_order(kv[0])))
        summary.flip = flip
        summary.flip_rate = {c: {s: stats["rate"] for s, stats in row.items()} for c, row in flip.items()}
        rates = [r for row in summary.flip_rate.values() for r in row.values() if math.isfinite(r)]
        summary.mean_flip_rate = _mean(rates)
        if not rates:
            reasons["mean_flip_rate"] = "no cell has an item scored both clean and corrupted"

    if reference is not None:
        ref_clean = accuracy_of(reference.get("clean"))
        if ref_clean is None:
            raise ValueError("the reference has no clean accuracy")
        config = reference.get("config") or {}
        summary.reference = reference_name or (config.get("name") if isinstance(config, Mapping) else None) or "reference"
        ce, relative, ce_reasons, ce_notes = corruption_errors(clean_accuracy, acc, ref_clean, reference.get("grid") or {})
        reasons.update(ce_reasons)
        notes.extend(ce_notes)
        summary.ce, summary.relative_ce = ce, relative
        summary.mce = _mean_finite(ce, "mce", reasons, notes)
        summary.relative_mce = _mean_finite(relative, "relative_mce", reasons, notes)
    return summary
