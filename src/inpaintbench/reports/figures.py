"""Report figures: metric-versus-level plots and qualitative grids (input, mask, outputs, ground truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .._io import atomic_write
from ..benchmarks.layout import composite_path, grid_indices
from ..benchmarks.metrics import METRICS
from ..datasets.loader import InpaintDataset
from ..masks.sets import load_mask_set


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def errorbar_plot(curves: dict[str, pd.DataFrame], ticks: list[str], metric: str, xlabel: str, title: str,
                  path: Path, rotate: bool = False) -> Path:
    """One line per model: ``curves`` maps a model to a frame indexed like ``ticks`` with ``mean`` and ``ci``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(ticks))
    for i, (model, part) in enumerate(curves.items()):
        ax.errorbar(x + (i - len(curves) / 2) * 0.03, part["mean"], yerr=part["ci"], marker="o", capsize=3,
                    label=model)
    meta = METRICS.get(metric)
    ax.set_xticks(x, ticks, rotation=20 if rotate else 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{meta.label} ({'higher' if meta.higher_is_better else 'lower'} is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_metric_vs_level(summary: pd.DataFrame, metric: str, levels: list[str], models: list[str],
                         path: Path) -> Path:
    """Line plot of a metric's mean (with its 95% CI as error bars) against the mask level, per model."""
    curves = {}
    for model in models:
        part = summary[summary["model"] == model].set_index("level").reindex(levels)
        curves[model] = pd.DataFrame({"mean": part[metric], "ci": part[f"{metric}_ci"]})
    return errorbar_plot(curves, levels, metric, "mask level (harder to the right)",
                         f"{METRICS.get(metric).label} against mask level (mean, 95% CI)", path)


def stored_grid_size(results: pd.DataFrame, out_dir: Path) -> int:
    """The largest grid whose every image has a stored composite in every run (0 if none has).

    A report written from results.parquet alone does not know the suite's ``samples_per_grid``; the harness
    stored the composites of exactly those grid images (and of each run's worst), so the grid is read back from
    what is there.
    """
    sizes = []
    for run_id, count in results.groupby("run_id").size().items():
        folder = composite_path(out_dir, run_id, 0).parent
        stored = {int(p.stem) for p in folder.glob("*.png") if p.stem.isdigit()} if folder.is_dir() else set()
        sizes.append(next((s for s in range(min(len(stored), count), 0, -1)
                           if set(grid_indices(count, s)) <= stored), 0))
    return min(sizes, default=0)


def qualitative_grid(results: pd.DataFrame, level: str, models: list[str], out_dir: Path, path: Path,
                     samples: int = 6) -> Path:
    """Grid of ``samples`` rows (images spread over the set), one column per picture.

    Columns: the model input (holes black), the mask (white = hole), each model's composite, the ground truth.
    """
    plt = _pyplot()
    part = results[results["level"] == level]
    first = part.iloc[0]
    shown = grid_indices(int(part.groupby("run_id").size().iloc[0]), samples)
    gt = InpaintDataset(first["dataset"], first["split"], in_memory=False).images_at(shown).permute(0, 2, 3, 1).numpy()
    masks = load_mask_set(first["mask_set"])[0][shown, 0]
    run_ids = {model: part[part["model"] == model]["run_id"].iloc[0] for model in models
               if (part["model"] == model).any()}
    columns = ["input", "mask", *run_ids, "ground truth"]
    n = len(shown)
    fig, axes = plt.subplots(n, len(columns), figsize=(1.3 * len(columns), 1.3 * n + 0.4), squeeze=False)
    for r, index in enumerate(shown):
        tiles = [gt[r] * (1 - masks[r][..., None]), np.repeat(masks[r][..., None] * 255, 3, axis=2)]
        tiles += [np.asarray(Image.open(composite_path(out_dir, rid, index))) for rid in run_ids.values()]
        tiles.append(gt[r])
        for c, tile in enumerate(tiles):
            ax = axes[r, c]
            ax.imshow(tile.astype(np.uint8), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
    fig.suptitle(f"{level}: composites (mask * output + (1 - mask) * image)", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
