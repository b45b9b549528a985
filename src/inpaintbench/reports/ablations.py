"""Ablations: each variant's paired difference to its base, with a 95% bootstrap interval over the same images.

A variant and its base are evaluated on the same images with the same frozen masks, so the difference is taken
image by image (variant - base) and its mean gets a percentile bootstrap interval: resampling the images (with
replacement, the same resample for both rows) keeps the pairing. An interval that excludes zero at the precision
the table shows is marked: the option's effect is larger than the spread over images (a consistent shift too small
to show, such as 1e-7 dB, is not marked). The resampling is seeded, so a report is reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .._registry import InpaintbenchError
from ..benchmarks.metrics import METRICS
from .tables import DECIMALS, metric_header

__all__ = ["RESAMPLES", "ablation_rows", "ablation_table", "paired_bootstrap"]

RESAMPLES = 2000


def paired_bootstrap(base: np.ndarray, variant: np.ndarray, confidence: float = 0.95, resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean paired difference ``variant - base`` and its percentile bootstrap interval.

    Args:
        base: per-image values of the base row.
        variant: per-image values of the variant on the same images (same order).
        confidence: the interval's coverage.
        resamples: bootstrap resamples of the images.
        seed: seed of the resampling.

    Returns:
        (mean difference, low, high); NaNs when no image has both values.

    """
    base, variant = np.asarray(base, np.float64), np.asarray(variant, np.float64)
    if base.shape != variant.shape:
        raise InpaintbenchError(f"paired values differ in length: {base.shape} and {variant.shape}")
    diff = variant - base
    diff = diff[~np.isnan(diff)]
    if len(diff) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


def _shown_decimals(metric: str) -> int:
    """Decimals of a difference in the table: one more than the leaderboard shows for the metric."""
    return DECIMALS.get(metric, 4) + 1


def _paired(frame: pd.DataFrame, base: str, variant: str, level: str) -> pd.DataFrame:
    """The rows of base and variant on one level, joined image by image; refuses different images or masks."""
    part = frame[frame["level"] == level]
    a, b = part[part["model"] == base], part[part["model"] == variant]
    if a.empty or b.empty:
        return pd.DataFrame()
    for column in ("mask_set", "dataset", "split"):
        if set(a[column]) != set(b[column]):
            raise InpaintbenchError(f"ablation {variant!r} against {base!r} on {level}: the runs differ in {column} "
                                    f"({a[column].iloc[0]} and {b[column].iloc[0]}); a paired difference needs the "
                                    "same images and masks")
    joined = a.merge(b, on=["image", "key"], suffixes=("_base", "_variant"))
    if len(joined) != len(a) or len(joined) != len(b):
        raise InpaintbenchError(f"ablation {variant!r} against {base!r} on {level}: {len(a)} and {len(b)} images, "
                                f"{len(joined)} in common; a paired difference needs the same images")
    return joined


def ablation_rows(frame: pd.DataFrame, ablations: Any, metrics: list[str], levels: list[str],
                  confidence: float = 0.95, resamples: int = RESAMPLES) -> list[dict[str, Any]]:
    """One row per (ablation variant, level, metric): both means, the paired difference and its interval.

    Args:
        frame: results.parquet.
        ablations: the suite's :class:`~inpaintbench.benchmarks.suite.Ablation` entries.
        metrics: the per-image metrics to compare.
        levels: the levels, in report order.
        confidence: the intervals' coverage.
        resamples: bootstrap resamples.

    Returns:
        Rows with ablation, base, variant, option, level, metric, n, base / variant means, difference, low,
        high, ``excludes_zero`` and ``effect`` ("better", "worse" or "" when the interval contains zero).

    """
    rows = []
    for ablation in ablations:
        for variant in ablation.variants:
            for level in levels:
                joined = _paired(frame, ablation.base, variant.label, level)
                if joined.empty:
                    continue
                for metric in metrics:
                    a, b = joined[f"{metric}_base"].to_numpy(), joined[f"{metric}_variant"].to_numpy()
                    diff, low, high = paired_bootstrap(a, b, confidence, resamples)
                    # at the precision the table shows: a shift of 1e-7 dB that no reader can see is not marked
                    shown = _shown_decimals(metric)
                    excludes = bool(round(low, shown) > 0 or round(high, shown) < 0)
                    higher = METRICS.get(metric).higher_is_better
                    effect = "" if not excludes else ("better" if (diff > 0) == higher else "worse")
                    rows.append({"ablation": ablation.name, "base": ablation.base, "variant": variant.label,
                                 "option": f"{variant.option}={variant.value}", "level": level, "metric": metric,
                                 "n": len(joined), "base_mean": float(np.nanmean(a)),
                                 "variant_mean": float(np.nanmean(b)), "difference": diff, "low": low, "high": high,
                                 "excludes_zero": excludes, "effect": effect})
    return rows


def ablation_table(rows: list[dict[str, Any]], size: int | None = None) -> str:
    """Markdown table of :func:`ablation_rows`: one line per (variant, level), one column per metric.

    Each cell is the mean paired difference (variant - base) with its 95% interval; ``*`` and the word
    better / worse mark an interval that excludes zero.
    """
    frame = pd.DataFrame(rows)
    metrics = list(dict.fromkeys(frame["metric"]))
    lines = []
    for (variant, level), grp in frame.groupby(["variant", "level"], sort=False):
        first = grp.iloc[0]
        cells = [first["ablation"], f"{variant} vs {first['base']}", first["option"], level, str(first["n"])]
        for metric in metrics:
            r = grp[grp["metric"] == metric]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            d = _shown_decimals(metric)
            text = f"{r['difference']:+.{d}f} [{r['low']:+.{d}f}, {r['high']:+.{d}f}]"
            cells.append(f"**{text}** * {r['effect']}" if r["excludes_zero"] else text)
        lines.append(cells)
    headers = ["ablation", "variant vs base", "option", "level", "images", *[metric_header(m, size) for m in metrics]]
    return tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)
