"""Leaderboard tables: mean with 95% confidence interval, best in bold, arrows for direction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from ..benchmarks.metrics import METRICS

DECIMALS = {"psnr": 2, "ssim": 4, "ms_ssim": 4, "l1": 4, "l1_hole": 4, "l2": 5, "l2_hole": 4, "lpips": 4,
            "lpips_vgg": 4}


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


def metric_header(name: str, size: int | None = None) -> str:
    """Column header with the direction arrow (↑ higher is better, ↓ lower is better).

    For MS-SSIM on images too small for five scales, the header states the scales used.
    """
    from ..benchmarks.metrics import ms_ssim_scales

    metric = METRICS.get(name)
    label = metric.label
    if name == "ms_ssim" and size is not None and ms_ssim_scales(size, size) < 5:
        label = f"MS-SSIM ({ms_ssim_scales(size, size)} scales)"
    return f"{label} {'↑' if metric.higher_is_better else '↓'}"


def summarize(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (level, model): n, and mean and CI half-width of each metric."""
    rows = []
    for (level, model), grp in results.groupby(["level", "model"], sort=False):
        row = {"level": level, "model": model, "n": len(grp)}
        for m in metrics:
            row[m], row[f"{m}_ci"] = mean_ci(grp[m].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def leaderboard(summary: pd.DataFrame, level: str, metrics: list[str], models: list[str],
                size: int | None = None) -> str:
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
    return tabulate(rows, headers=["model", *[metric_header(m, size) for m in metrics]], tablefmt="github",
                    disable_numparse=True)


def by_level(summary: pd.DataFrame, metric: str, levels: list[str], models: list[str], size: int | None = None) -> str:
    """Markdown table of one metric across levels: mean ± 95% CI half-width, best per level in bold.

    A value that is *better* than the same model's on the previous (easier) ladder level, beyond both intervals,
    is marked † (see :func:`easier_on_harder`).
    """
    d = DECIMALS.get(metric, 4)
    pivot = summary.pivot(index="model", columns="level", values=metric).reindex(index=models, columns=levels)
    ci = summary.pivot(index="model", columns="level", values=f"{metric}_ci").reindex(index=models, columns=levels)
    higher = METRICS.get(metric).higher_is_better
    best = {lv: (pivot[lv].round(d).max() if higher else pivot[lv].round(d).min()) for lv in levels}
    marked = {(r["model"], r["level"]) for r in easier_on_harder(summary, [metric], levels, models)}
    rows = []
    for model, row in pivot.iterrows():
        cells = [model]
        for lv, v in row.items():
            text = f"{v:.{d}f} ± {ci.loc[model, lv]:.{d}f}" + (" †" if (model, lv) in marked else "")
            cells.append(f"**{text}**" if round(v, d) == best[lv] else text)
        rows.append(cells)
    return tabulate(rows, headers=[f"{metric_header(metric, size)}", *levels], tablefmt="github", disable_numparse=True)


def easier_on_harder(summary: pd.DataFrame, metrics: list[str], levels: list[str], models: list[str]) -> list[dict]:
    """Where a metric *improves* from one ladder level to the next harder one, beyond both confidence intervals.

    Only consecutive levels of a difficulty ladder (L1 < L2 < ... < L6, or the first ladder's L1-v1 < ... < L6-v1)
    are compared; presets and sweeps have no order. Returns rows with model, metric, the easier and the harder level
    and both values.
    """
    from ..masks.levels import ladder_steps

    steps = ladder_steps(levels)
    rows = []
    for metric in metrics:
        higher = METRICS.get(metric).higher_is_better
        for model in models:
            part = summary[summary["model"] == model].set_index("level")
            for easy, hard in steps:
                if easy not in part.index or hard not in part.index:
                    continue
                a, b = part.loc[easy], part.loc[hard]
                gain = (b[metric] - a[metric]) if higher else (a[metric] - b[metric])
                if gain > np.nan_to_num(a[f"{metric}_ci"]) + np.nan_to_num(b[f"{metric}_ci"]):
                    rows.append({"model": model, "metric": metric, "easier": easy, "level": hard,
                                 "easier_value": float(a[metric]), "value": float(b[metric])})
    return rows


def below_baseline(summary: pd.DataFrame, metrics: list[str], levels: list[str], trained: list[str],
                   baseline: str = "mean-fill") -> list[dict]:
    """Where a trained model is worse than ``baseline`` (mean fill) on a level, beyond both intervals."""
    rows = []
    for level in levels:
        part = summary[summary["level"] == level].set_index("model")
        if baseline not in part.index:
            continue
        base = part.loc[baseline]
        for model in trained:
            if model not in part.index:
                continue
            row = part.loc[model]
            for metric in metrics:
                higher = METRICS.get(metric).higher_is_better
                loss = (base[metric] - row[metric]) if higher else (row[metric] - base[metric])
                if loss > np.nan_to_num(base[f"{metric}_ci"]) + np.nan_to_num(row[f"{metric}_ci"]):
                    rows.append({"model": model, "level": level, "metric": metric, "value": float(row[metric]),
                                 "baseline": float(base[metric])})
    return rows


def run_table(run_metrics: pd.DataFrame, level: str, models: list[str]) -> str | None:
    """Markdown table of the run-level metrics of one level (dataset PSNR, FID, KID), or None if empty."""
    part = run_metrics[(run_metrics["level"] == level) & (run_metrics["status"] == "ok")]
    if part.empty:
        return None
    values = part.pivot_table(index="model", columns="metric", values="value", aggfunc="first")
    values = values.reindex([m for m in models if m in values.index])
    n = part.groupby("model")["n_images"].first()
    comparable = part[part["metric"] == "fid"].groupby("model")["comparable"].all()
    best = {}
    for metric, higher in [("psnr_dataset", True), ("fid", False), ("kid", False), ("p_ids", True), ("u_ids", True)]:
        if metric in values:
            col = values[metric].round(4)
            best[metric] = col.max() if higher else col.min()
    rows = []
    for model, row in values.iterrows():
        cells = [model]
        for metric, fmt in [("psnr_dataset", "{:.2f}"), ("fid", "{:.2f}"), ("kid", "{:.4f}"), ("p_ids", "{:.4f}"),
                            ("u_ids", "{:.4f}")]:
            if metric not in values:
                continue
            text = fmt.format(row[metric])
            if metric == "kid" and "kid_std" in values and not math.isnan(row["kid_std"]):
                text += f" ± {row['kid_std']:.4f}"
            cells.append(f"**{text}**" if round(row[metric], 4) == best[metric] else text)
        cells.append(str(int(n[model])))
        if "fid" in values:
            cells.append("yes" if comparable[model] else "no (< 2,048 images: rank-deficient)")
        rows.append(cells)
    headers = ["model"] + [h for m, h in [("psnr_dataset", "dataset PSNR (dB) ↑"), ("fid", "FID ↓"),
                                          ("kid", "KID ↓ (± std over subsets, when they differ)"), ("p_ids", "P-IDS ↑"),
                                          ("u_ids", "U-IDS ↑")] if m in values]
    headers += ["images"] + (["FID covariance full-rank (>= 2,048 images)"] if "fid" in values else [])
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


# A difference to a published number beyond these is flagged: absolute for PSNR (dB) and SSIM, relative
# (a share of the published value) for every other metric, FID included.
PUBLISHED_TOLERANCE = {"psnr": ("abs", 0.5), "psnr_dataset": ("abs", 0.5), "ssim": ("abs", 0.01),
                       "ms_ssim": ("abs", 0.01)}
RELATIVE_TOLERANCE = 0.10


def published_rows(summary: pd.DataFrame, run_metrics: pd.DataFrame, runs: list, levels: list[str]) -> list[dict]:
    """Our number next to each published one: one row per (model, level, metric) a suite's runs publish.

    Args:
        summary: :func:`summarize` of the results (per-image metrics).
        run_metrics: the run-level metrics (FID, KID, dataset PSNR).
        runs: the suite's ModelRun entries (their ``published`` numbers).
        levels: the suite's levels.

    Returns:
        Rows with model, level, metric, ours (NaN when not computed), theirs, difference, flagged, source.

    """
    rows = []
    for run in runs:
        for pub in run.published:
            for level in [pub.level] if pub.level else levels:
                for metric, theirs in pub.values.items():
                    ours = math.nan
                    part = summary[(summary["model"] == run.label) & (summary["level"] == level)]
                    if metric in part and not part.empty:
                        ours = float(part[metric].iloc[0])
                    else:
                        hit = run_metrics[(run_metrics["model"] == run.label) & (run_metrics["level"] == level)
                                          & (run_metrics["metric"] == metric) & (run_metrics["status"] == "ok")]
                        if not hit.empty:
                            ours = float(hit["value"].iloc[0])
                    kind, limit = PUBLISHED_TOLERANCE.get(metric, ("rel", RELATIVE_TOLERANCE))
                    diff = ours - theirs
                    allowed = limit if kind == "abs" else limit * abs(theirs)
                    rows.append({"model": run.label, "level": level, "metric": metric, "ours": ours,
                                 "theirs": theirs, "difference": diff,
                                 "flagged": bool(not math.isnan(diff) and abs(diff) > allowed),
                                 "tolerance": f"{limit:g} dB" if metric.startswith("psnr") else
                                 (f"{limit:g}" if kind == "abs" else f"{limit:.0%}"),
                                 "source": pub.source + (f" ({pub.note})" if pub.note else "")})
    return rows


def published_table(rows: list[dict]) -> str:
    """Markdown table of :func:`published_rows`: ours, theirs, the difference, and a flag beyond the tolerance."""
    cells = []
    for r in rows:
        d = DECIMALS.get(r["metric"], 4)
        ours = "not computed" if math.isnan(r["ours"]) else f"{r['ours']:.{d}f}"
        diff = "-" if math.isnan(r["difference"]) else f"{r['difference']:+.{d}f}"
        cells.append([r["model"], r["level"], metric_header(r["metric"]) if r["metric"] in METRICS else r["metric"],
                      ours, f"{r['theirs']:.{d}f}", diff, f"**beyond {r['tolerance']}**" if r["flagged"] else "within",
                      r["source"]])
    return tabulate(cells, headers=["model", "level", "metric", "ours", "published", "difference", "flag", "source"],
                    tablefmt="github", disable_numparse=True)
