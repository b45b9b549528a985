"""Error analysis: each method's worst images (input, output, ground truth, error map) and where methods disagree.

A run keeps the composites of its :data:`~..benchmarks.layout.WORST_PER_RUN` images of lowest PSNR; a method's
worst images over all levels are among them. Disagreement is the spread (max - min) of one image's PSNR across
the methods on the same level: the images where the choice of method matters most.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tabulate import tabulate

from .._io import atomic_write
from ..benchmarks.layout import WORST_PER_RUN, composite_path
from ..datasets.loader import InpaintDataset
from ..masks.sets import load_mask_set

__all__ = ["disagreement", "disagreement_table", "worst_images", "worst_grid"]


def worst_images(frame: pd.DataFrame, model: str, count: int = WORST_PER_RUN, metric: str = "psnr") -> pd.DataFrame:
    """A method's ``count`` worst rows over all levels (lowest ``metric``), worst first."""
    part = frame[frame["model"] == model].dropna(subset=[metric])
    return part.sort_values([metric, "level", "image"], kind="stable").head(count)


def worst_grid(frame: pd.DataFrame, model: str, out_dir: Path, path: Path, count: int = WORST_PER_RUN,
               metric: str = "psnr") -> Path | None:
    """Grid of a method's worst images: input (holes black), output composite, ground truth, error map.

    The error map is the mean absolute error over RGB (white = 1). Returns None when the runs hold no saved
    composites of these images (runs recorded before worst images were kept).
    """
    from .figures import _pyplot

    rows = worst_images(frame, model, count, metric)
    tiles = []
    for r in rows.itertuples():
        png = composite_path(out_dir, r.run_id, int(r.image))
        if not png.is_file():
            continue
        gt = InpaintDataset(r.dataset, r.split, in_memory=False).images_at([int(r.image)])[0].permute(1, 2, 0).numpy()
        mask = load_mask_set(r.mask_set)[0][int(r.image), 0]
        output = np.asarray(Image.open(png))
        error = np.abs(output.astype(np.float64) - gt).mean(axis=2) / 255
        tiles.append((f"{r.level} #{int(r.image)}: {getattr(r, metric):.2f}", gt * (1 - mask[..., None]), output, gt,
                      error))
    if not tiles:
        return None
    plt = _pyplot()
    columns = ["input", "output", "ground truth", "|error| (white = 1)"]
    fig, axes = plt.subplots(len(tiles), 4, figsize=(5.6, 1.4 * len(tiles) + 0.5), squeeze=False)
    for i, (title, *images) in enumerate(tiles):
        for c, image in enumerate(images):
            ax = axes[i, c]
            if c == 3:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(image.astype(np.uint8), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[c], fontsize=7)
        axes[i, 0].set_ylabel(title, fontsize=6)
    fig.suptitle(f"{model}: worst images by {metric.upper()} over all levels", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def disagreement(frame: pd.DataFrame, models: list[str], count: int = 5, metric: str = "psnr") -> pd.DataFrame:
    """The ``count`` (level, image) pairs where ``metric`` spreads most across methods, with every method's value."""
    part = frame[frame["model"].isin(models)]
    wide = part.pivot_table(index=["level", "image", "key"], columns="model", values=metric, aggfunc="first")
    wide = wide[[m for m in models if m in wide.columns]].dropna()
    if wide.shape[1] < 2 or wide.empty:
        return pd.DataFrame()
    wide["spread"] = wide.max(axis=1) - wide.min(axis=1)
    wide["best"] = wide[[m for m in models if m in wide.columns]].idxmax(axis=1)
    wide["worst"] = wide[[m for m in models if m in wide.columns]].idxmin(axis=1)
    return wide.sort_values("spread", ascending=False, kind="stable").head(count).reset_index()


def disagreement_table(rows: pd.DataFrame, metric: str = "psnr") -> str:
    """Markdown table of :func:`disagreement`."""
    return tabulate([[r["level"], int(r["image"]), r["key"], f"{r['spread']:.2f}", f"{r['best']} ({r[r['best']]:.2f})",
                      f"{r['worst']} ({r[r['worst']]:.2f})"] for _, r in rows.iterrows()],
                    headers=["level", "image", "key", f"{metric.upper()} spread (max - min)", "best method",
                             "worst method"], tablefmt="github", disable_numparse=True)
