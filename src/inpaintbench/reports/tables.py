"""Leaderboard tables: mean with 95% confidence interval, best in bold, arrows for direction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from ..benchmarks.metrics import METRICS

DECIMALS = {"psnr": 2, "ssim": 4, "l1": 4, "l1_hole": 4}


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (NaNs ignored)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan
    if len(values) == 1:
        return float(values[0]), math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def metric_header(name: str) -> str:
    """Column header with the direction arrow: ↑ higher is better, ↓ lower is better."""
    metric = METRICS.get(name)
    return f"{metric.label} {'↑' if metric.higher_is_better else '↓'}"


def summarize(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (level, model): n, and mean and CI half-width of each metric."""
    rows = []
    for (level, model), grp in results.groupby(["level", "model"], sort=False):
        row = {"level": level, "model": model, "n": len(grp)}
        for m in metrics:
            row[m], row[f"{m}_ci"] = mean_ci(grp[m].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def leaderboard(summary: pd.DataFrame, level: str, metrics: list[str], models: list[str]) -> str:
    """Markdown leaderboard of one level: models as rows, metrics as columns, best mean in bold."""
    part = summary[summary["level"] == level].set_index("model").reindex(models).dropna(how="all")
    best = {}
    for m in metrics:
        col = part[m].round(DECIMALS.get(m, 4))
        best[m] = col.max() if METRICS.get(m).higher_is_better else col.min()
    rows = []
    for model, row in part.iterrows():
        cells = [model]
        for m in metrics:
            d = DECIMALS.get(m, 4)
            text = f"{row[m]:.{d}f} ± {row[f'{m}_ci']:.{d}f}"
            cells.append(f"**{text}**" if round(row[m], d) == best[m] else text)
        rows.append(cells)
    return tabulate(rows, headers=["model", *[metric_header(m) for m in metrics]], tablefmt="github",
                    disable_numparse=True)


def by_level(summary: pd.DataFrame, metric: str, levels: list[str], models: list[str]) -> str:
    """Markdown table of one metric's mean: models as rows, levels as columns, best per level in bold."""
    d = DECIMALS.get(metric, 4)
    pivot = summary.pivot(index="model", columns="level", values=metric).reindex(index=models, columns=levels)
    higher = METRICS.get(metric).higher_is_better
    best = {lv: (pivot[lv].round(d).max() if higher else pivot[lv].round(d).min()) for lv in levels}
    rows = [[model, *[(f"**{v:.{d}f}**" if round(v, d) == best[lv] else f"{v:.{d}f}") for lv, v in row.items()]]
            for model, row in pivot.iterrows()]
    return tabulate(rows, headers=[f"{metric_header(metric)}", *levels], tablefmt="github", disable_numparse=True)
