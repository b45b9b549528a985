"""Preview images of mask levels: a grid of masks and the histogram of their area ratios."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .levels import make_masks, resolve_spec


def preview_masks(levels: list[str], out: str | Path = "masks/previews", size: int = 256, count: int = 200,
                  seed: int = 0, columns: int = 8) -> list[Path]:
    """Write ``<out>/<level>.png`` for each level: 2 rows of example masks and the area histogram.

    Args:
        levels: level or preset names.
        out: output folder.
        size: mask resolution.
        count: masks drawn for the histogram (the first ``2 * columns`` are shown).
        seed: seed of the drawn masks.
        columns: masks per row.

    Returns:
        The written PNG paths.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for level in levels:
        spec = resolve_spec(level)
        masks = make_masks(spec, max(count, 2 * columns), size=size, seed=seed)[:, 0]
        areas = masks.reshape(len(masks), -1).mean(axis=1)
        fig = plt.figure(figsize=(columns * 1.1, 4.2))
        grid = fig.add_gridspec(3, columns, height_ratios=[1, 1, 1.3])
        for i in range(2 * columns):
            ax = fig.add_subplot(grid[i // columns, i % columns])
            ax.imshow(1 - masks[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # holes black
            ax.set_xticks([])
            ax.set_yticks([])
        ax = fig.add_subplot(grid[2, :])
        ax.hist(areas * 100, bins=np.linspace(0, 100, 51), color="#4c72b0")
        ax.axvspan(spec.area[0] * 100, spec.area[1] * 100, color="#dd8452", alpha=0.2, label="spec range")
        ax.set_xlabel("hole area (%)")
        ax.set_ylabel("masks")
        ax.legend(loc="upper right", fontsize=8)
        fig.suptitle(f"{level}: {spec.family}, area {spec.area[0]:.0%}-{spec.area[1]:.0%}, holes "
                     f"{spec.holes[0]}-{spec.holes[1]}, {spec.location}; {len(masks)} masks at {size}px, "
                     f"mean area {areas.mean():.1%}", fontsize=9)
        fig.tight_layout()
        path = out / f"{level}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
