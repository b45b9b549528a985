"""Difficulty analysis: a metric against each difficulty axis, per method, and the axes ranked by how much they hurt.

The axes are read from the per-image columns of results.parquet (:data:`~..benchmarks.layout.DIFFICULTY_COLUMNS`),
pooled over the suite's levels: hole area (10% bins), hole count (connected components), shape family (the mask
set's generator), location (touching the border, else centred or off-centre), resolution (the image side) and
class (the dataset's label). An axis with a single group in the results (one resolution, no classes) is left
out. A group with fewer than :data:`MIN_IMAGES` images of a method is left out of that method's curve.

How much an axis hurts: for each method, the gap between its best and its worst group's mean (in the metric's
good direction); the axis' score is the mean gap over methods. The axes are not independent (large holes have
more components, and the levels mix them), so the ranking says where the metric moves, not why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..benchmarks.metrics import METRICS
from .tables import DECIMALS, mean_ci, metric_header

__all__ = ["AXES", "MIN_IMAGES", "Axis", "axis_groups", "axis_ranking", "axis_summary", "axis_table",
           "plot_axis", "ranking_table"]

MIN_IMAGES = 5
AREA_BINS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0001]
AREA_LABELS = ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", "60-100%"]
COUNT_BINS = [0, 1, 3, 8, 10**9]
COUNT_LABELS = ["1", "2-3", "4-8", "9+"]
CENTRE = 1 / 3  # a hole centroid within a third of the half-diagonal from the centre is "centred"


@dataclass(frozen=True)
class Axis:
    """A difficulty axis: its name, the column it reads and the words of its groups' order."""

    name: str
    column: str
    description: str


AXES = (
    Axis("hole area", "area_ratio", "share of hole pixels, 10% bins"),
    Axis("hole count", "components", "connected hole components (8-connectivity)"),
    Axis("shape", "shape", "the mask set's shape family"),
    Axis("location", "touches_border", "a hole touching the border; else its centroid centred or off-centre"),
    Axis("resolution", "size", "image side in pixels"),
    Axis("class", "label_name", "the dataset's class label"),
)


def axis_groups(frame: pd.DataFrame, axis: Axis) -> pd.Series | None:
    """The group of each row on ``axis`` (an ordered categorical), or None when the results lack the column."""
    if axis.column not in frame:
        return None
    if axis.name == "hole area":
        return pd.cut(frame["area_ratio"], AREA_BINS, labels=AREA_LABELS, right=False)
    if axis.name == "hole count":
        if (frame["components"] < 0).all():
            return None
        return pd.cut(frame["components"], COUNT_BINS, labels=COUNT_LABELS)
    if axis.name == "location":
        if "hole_distance" not in frame:
            return None
        words = np.where(frame["touches_border"].astype(bool), "touches border",
                         np.where(frame["hole_distance"] < CENTRE, "centred", "off-centre"))
        return pd.Series(pd.Categorical(words, ["centred", "off-centre", "touches border"], ordered=True),
                         index=frame.index)
    if axis.name == "resolution":
        sizes = sorted(frame["size"].unique())
        return pd.Series(pd.Categorical(frame["size"].astype(int).astype(str), [str(int(s)) for s in sizes],
                                        ordered=True), index=frame.index)
    values = frame[axis.column].fillna("").astype(str)
    order = list(dict.fromkeys(values[values != ""]))
    return pd.Series(pd.Categorical(values.where(values != ""), order, ordered=True), index=frame.index)


def axis_summary(frame: pd.DataFrame, axis: Axis, metric: str, models: list[str]) -> pd.DataFrame:
    """Mean, 95% CI half-width and count of ``metric`` per (model, group) of ``axis``; empty when not applicable.

    Groups with fewer than :data:`MIN_IMAGES` images of a model are left out; an axis with fewer than two groups
    left gives an empty frame.
    """
    groups = axis_groups(frame, axis)
    if groups is None:
        return pd.DataFrame()
    rows = []
    for model in models:
        part = frame[frame["model"] == model]
        for group in groups.cat.categories:
            values = part[metric][groups[part.index] == group].to_numpy()
            values = values[~np.isnan(values)]
            if len(values) < MIN_IMAGES:
                continue
            mean, ci = mean_ci(values)
            rows.append({"model": model, "group": str(group), "mean": mean, "ci": ci, "n": len(values)})
    out = pd.DataFrame(rows)
    if out.empty or out["group"].nunique() < 2:
        return pd.DataFrame()
    return out


def axis_table(summary: pd.DataFrame, metric: str, models: list[str]) -> str:
    """Markdown table of :func:`axis_summary`: models as rows, groups as columns, mean ± CI (n images)."""
    d = DECIMALS.get(metric, 4)
    groups = list(dict.fromkeys(summary["group"]))
    rows = []
    for model in models:
        part = summary[summary["model"] == model].set_index("group")
        if part.empty:
            continue
        rows.append([model, *[f"{part.loc[g, 'mean']:.{d}f} ± {np.nan_to_num(part.loc[g, 'ci']):.{d}f} "
                              f"({int(part.loc[g, 'n'])})" if g in part.index else "-" for g in groups]])
    return tabulate(rows, headers=[metric_header(metric), *groups], tablefmt="github", disable_numparse=True)


def axis_ranking(summaries: dict[str, pd.DataFrame], metric: str) -> list[dict]:
    """The axes ranked by how much they hurt: the mean over methods of the best-minus-worst group gap.

    Returns:
        Rows (worst axis first) with axis, gap (in the metric's units, always >= 0), the groups that are most
        often the easiest and the hardest, and the number of methods and groups.

    """
    higher = METRICS.get(metric).higher_is_better
    rows = []
    for name, summary in summaries.items():
        gaps, easiest, hardest = [], [], []
        for _, part in summary.groupby("model", sort=False):
            if len(part) < 2:
                continue
            best = part.loc[part["mean"].idxmax() if higher else part["mean"].idxmin()]
            worst = part.loc[part["mean"].idxmin() if higher else part["mean"].idxmax()]
            gaps.append(abs(best["mean"] - worst["mean"]))
            easiest.append(best["group"])
            hardest.append(worst["group"])
        if gaps:
            rows.append({"axis": name, "gap": float(np.mean(gaps)), "easiest": max(set(easiest), key=easiest.count),
                         "hardest": max(set(hardest), key=hardest.count), "methods": len(gaps),
                         "groups": summary["group"].nunique()})
    return sorted(rows, key=lambda r: -r["gap"])


def ranking_table(rows: list[dict], metric: str) -> str:
    """Markdown table of :func:`axis_ranking`."""
    d = DECIMALS.get(metric, 4)
    label = METRICS.get(metric).label
    return tabulate([[i + 1, r["axis"], f"{r['gap']:.{d}f}", r["easiest"], r["hardest"], r["groups"], r["methods"]]
                     for i, r in enumerate(rows)],
                    headers=["rank", "axis", f"mean best-worst gap ({label})", "easiest group (most methods)",
                             "hardest group (most methods)", "groups", "methods"],
                    tablefmt="github", disable_numparse=True)


def plot_axis(summary: pd.DataFrame, axis: Axis, metric: str, models: list[str], path) -> object:
    """One plot of an axis with every method: the metric's mean (95% CI bars) per group."""
    from .figures import errorbar_plot

    groups = list(dict.fromkeys(summary["group"]))
    curves = {model: summary[summary["model"] == model].set_index("group").reindex(groups) for model in models
              if (summary["model"] == model).any()}
    return errorbar_plot(curves, groups, metric, f"{axis.name} ({axis.description})",
                         f"{METRICS.get(metric).label} against {axis.name} (mean, 95% CI; all levels pooled)", path,
                         rotate=len(groups) > 4)
