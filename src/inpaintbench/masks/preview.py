"""Seeing masks: preview grids with area histograms, and the generated masks/README.md."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .generators import count_holes, touches_border
from .levels import LADDER, PRESETS, SWEEPS, make_masks, resolve_spec
from .spec import MASK_FAMILIES, MaskSpec


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(name: str, spec: MaskSpec, masks: np.ndarray, path: Path, columns: int = 8) -> Path:
    plt = _pyplot()
    areas = masks.reshape(len(masks), -1).mean(axis=1)
    fig = plt.figure(figsize=(columns * 1.1, 4.2))
    grid = fig.add_gridspec(3, columns, height_ratios=[1, 1, 1.3])
    for i in range(min(2 * columns, len(masks))):
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
    holes = f"{spec.holes[0]}-{spec.holes[1]}" if spec.holes[1] < 10**6 else f">= {spec.holes[0]}"
    fig.suptitle(f"{name}: {spec.family}, area {spec.area[0]:.0%}-{spec.area[1]:.0%}, holes {holes}, "
                 f"{spec.location}; {len(masks)} masks at {masks.shape[-1]}px, mean area {areas.mean():.1%}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def preview_masks(levels: list[str], out: str | Path = "masks/previews", size: int = 256, count: int = 200,
                  seed: int = 0, columns: int = 8) -> list[Path]:
    """Write ``<out>/<level>.png`` for each level or preset: two rows of masks and the area histogram.

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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [_figure(level, resolve_spec(level), make_masks(level, max(count, 2 * columns), size=size, seed=seed)[:, 0],
                    out / f"{level}.png", columns) for level in levels]


def mask_statistics(name: str, masks: np.ndarray) -> dict[str, object]:
    """Measured statistics of a set of masks (N x H x W, 1 = hole).

    ``depth`` is the mean distance from a hole pixel to the nearest known pixel, as a fraction of the side:
    how far a local method has to reach (thin strokes are shallow, a large box is deep).
    """
    from scipy import ndimage

    areas = masks.reshape(len(masks), -1).mean(axis=1)
    holes = np.array([count_holes(m) for m in masks])
    border = np.array([touches_border(m) for m in masks])
    depth = np.mean([ndimage.distance_transform_edt(m)[m > 0].mean() / m.shape[-1] for m in masks])
    return {"name": name, "mean area": areas.mean(), "min area": areas.min(), "max area": areas.max(),
            "mean holes": holes.mean(), "min holes": holes.min(), "max holes": holes.max(),
            "touch border": border.mean(), "depth": depth}


def mean_fill_hole_l1(dataset: str | Path, level: str, seed: int = 0, draws: int = 64) -> float:
    """Mean hole L1 of mean fill on the test split of ``dataset``, masks of ``level`` at its size.

    Averaged over ``draws`` mask draws per image (seeds seed .. seed + draws - 1) to tame mask noise.
    """
    import torch

    from ..benchmarks.metrics import l1_hole
    from ..datasets.loader import InpaintDataset
    from ..models import create_model

    images = InpaintDataset(dataset, "test").images.float() / 255
    model = create_model("mean-fill")
    values = []
    for s in range(seed, seed + draws):
        masks = torch.from_numpy(make_masks(level, len(images), size=images.shape[-1], seed=s)).float()
        pred = model(images * (1 - masks), masks)
        values.append(float(l1_hole(masks * pred + (1 - masks) * images, images, masks).mean()))
    return float(np.mean(values))


def write_masks_readme(out: str | Path = "masks", size: int = 256, count: int = 1000, seed: int = 0,
                       dataset: str | Path = "datasets/sample-64") -> Path:
    """Generate ``<out>/README.md`` and ``<out>/previews/*.png`` for every level, preset and sweep.

    Each spec is drawn ``count`` times at ``size`` and measured; the ladder is also scored with mean fill on
    the sample dataset's test split (built into ``dataset`` when missing), to show that it is monotone.
    """
    from tabulate import tabulate

    from ..datasets.sample import build_sample

    out = Path(out)
    previews = out / "previews"
    previews.mkdir(parents=True, exist_ok=True)
    if not (Path(dataset) / "dataset.json").exists():
        build_sample(dataset, size=64)
    groups = {"ladder": LADDER, "presets": PRESETS, "sweeps": SWEEPS}
    stats: dict[str, list[dict[str, object]]] = {g: [] for g in groups}
    for group, specs in groups.items():
        for name, spec in specs.items():
            masks = make_masks(name, count, size=size, seed=seed)[:, 0]
            row = mask_statistics(name, masks)
            row["spec"] = spec
            if group == "ladder":
                row["mean-fill hole L1"] = mean_fill_hole_l1(dataset, name, seed)
            stats[group].append(row)
            _figure(name, spec, masks, previews / f"{name}.png")
    ladder = pd.DataFrame(stats["ladder"])
    steps = np.diff(ladder["mean-fill hole L1"].astype(float))
    rises = {column: "yes" if np.all(np.diff(ladder[column].astype(float)) > 0) else "no"
             for column in ("mean area", "depth", "mean-fill hole L1")}

    def table(rows: list[dict[str, object]], extra: bool = False) -> str:
        body = []
        for r in rows:
            spec = r["spec"]
            holes = f"{spec.holes[0]}-{spec.holes[1]}" if spec.holes[1] < 10**6 else f">= {spec.holes[0]}"
            cells = [f"[{r['name']}](previews/{r['name']}.png)", spec.family,
                     f"{spec.area[0]:.0%}-{spec.area[1]:.0%}", holes, spec.location,
                     f"{r['mean area']:.1%}", f"{r['min area']:.1%}-{r['max area']:.1%}",
                     f"{r['mean holes']:.1f} ({r['min holes']}-{r['max holes']})", f"{r['touch border']:.0%}",
                     f"{r['depth']:.1%}"]
            if extra:
                cells.append(f"{r['mean-fill hole L1']:.4f}")
            body.append(cells)
        headers = ["name", "family", "spec area", "spec holes", "location", "mean area", "area range",
                   "holes: mean (range)", "touch border", "depth"] + (["mean-fill hole L1"] if extra else [])
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)

    families = tabulate([[f.name, "yes" if f.steered else "no (paper algorithm, redrawn until inside)",
                          f.description] for f in (MASK_FAMILIES.get(n) for n in MASK_FAMILIES)],
                        headers=["family", "steered to the area", "shapes"], tablefmt="github")
    lines = [
        "# masks/",
        "",
        "<!-- generated by `inpaintbench masks preview --readme`; do not edit -->",
        "",
        "Every level, preset and sweep that inpaintbench registers, each drawn "
        f"{count:,} times at {size}x{size} (seed {seed}) and measured: the area ratio, the connected holes "
        "(8-connectivity) and the share of masks touching the border. Each name links to its preview: two "
        "rows of masks (holes black) and the histogram of hole areas against the spec's range. Every mask "
        "lies inside its spec (the test suite checks 1,000 per spec at 256).",
        "",
        "Frozen evaluation sets go below `masks/sets/` (git-ignored): `inpaintbench masks make NAME --size 256 "
        "--count 1000 --seed 0` writes `NNNNNN.png` (255 = hole), `manifest.parquet` (index, area ratio, "
        "components, border contact, sha256) and `set.json`. The same arguments give the same bytes on any "
        "number of workers. `inpaintbench masks import DIR_OR_ZIP --holes white|black` brings in an external "
        "set such as NVIDIA's irregular test masks.",
        "",
        "## The ladder",
        "",
        "Resolution and classes are separate axes that suites combine with the ladder. `depth` is the mean "
        "distance from a hole pixel to the nearest known pixel, as a fraction of the side: how far a local "
        "method must reach. The last column is the hole L1 of mean fill on the sample dataset's test split "
        "(its 64x64 images, masks of each level drawn at 64x64, 64 draws per image; the standard error of "
        "each value is about 0.0001).",
        "",
        table(stats["ladder"], extra=True),
        "",
        f"Rises at every step from L1 to L6: mean hole area **{rises['mean area']}**, depth "
        f"**{rises['depth']}**, mean-fill hole L1 **{rises['mean-fill hole L1']}**. Mean fill's error hardly "
        "depends on the holes' shape (every hole pixel gets the image's mean colour), so its column moves "
        f"within a few percent and its steps are small ({steps.min():.4f} to {steps.max():.4f}, against a "
        "standard error of 0.0001-0.0002 per value); it rises with the hole area, with wider strokes and with "
        "holes that are compact or reach the border. "
        "Strokes are shallow however large their area, which is why L3 and L4 have less depth than the boxes "
        "of L1 and L2: for local methods (biharmonic) L3 is easier than L2.",
        "",
        "## Paper presets",
        "",
        "`lama-*`: LaMa's fixed evaluation generators (configs/data_gen/random_{thin,medium,thick}_{256,512}) "
        "with their parameters, masks over 50% dropped as LaMa does. `deepfillv2-ff`: DeepFill v2's free-form "
        "brush strokes as published. `center-box`: the centred square of half the side (Context Encoder, "
        "GLCIC). `nvidia-bin1..6`: synthetic irregular masks (blobs and strokes) in NVIDIA's six area bins; "
        "they are not NVIDIA's masks: import those with `inpaintbench masks import`.",
        "",
        table(stats["presets"]),
        "",
        "## Single-axis sweeps",
        "",
        "One axis varies, the others stay fixed: `area-*` (NVIDIA's bins, touching the border or kept 2 px "
        "away from it), `holes-*` (1 / 2-3 / 4-8 blobs at a total area of 20-30%), `shape-*` (box / stroke / "
        "blob at 20-30%), `loc-*` (centre / interior / border / side at 20-30%), and `lines-every-4` (every "
        "4th row or column, NTIRE style).",
        "",
        table(stats["sweeps"]),
        "",
        "## Shape families",
        "",
        families,
        "",
    ]
    readme = out / "README.md"
    tmp = readme.with_name("README.md.partial")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, readme)
    return readme
