"""Mask generation speed: masks per second on one core, against a reference of LaMa's pipeline in the same run.

inpaintbench's ladder levels and presets are timed next to a straightforward reference of how LaMa makes its
evaluation masks (numpy + OpenCV, as ``saicinpainting/training/data/masks.py`` and ``bin/gen_mask_dataset.py``
do): the mixed generator picks strokes or boxes with float32 probabilities; strokes are ``randint(min_times,
max_times + 2)`` of them (the generator's ``max_times + 1`` bound), integer end points clipped to [0, size],
``cv2.line`` on a float32 canvas; boxes have sides up to ``max_size`` inclusive; five variants per image are
square-cropped (the crop searches the hole pixels), those over 50% of the image are dropped and one survivor
is kept. The reference rows give masks per second per variant and per kept mask; inpaintbench's lama presets
make the same kept masks (redrawing until one is inside the 50% cut, which keeps the same distribution), so
their ratio is taken against the kept-mask rate, and also given against one variant.

    python benchmarks/mask_speed.py [--count 2000] [--out benchmarks/results/mask_speed.md]

Figures are CPU seconds of this process (one thread), so they read as masks/s per core.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _table import emit

from inpaintbench.masks import generate, resolve_spec

# LaMa's configs/data_gen/random_{thin,medium,thick}_256.yaml: irregular (max_angle, max_len, max_width,
# min_times, max_times); box (margin, bbox_min_size, bbox_max_size, min_times, max_times) or None; box_proba.
REFERENCE = {
    "lama-thin-256": ((4, 40, 10, 4, 50), None, 0.0),
    "lama-medium-256": ((4, 100, 50, 4, 5), (0, 10, 50, 1, 5), 0.3),
    "lama-thick-256": ((4, 200, 100, 1, 5), (10, 30, 150, 1, 3), 0.3),
}
OURS = ["L1", "L2", "L3", "L4", "L5", "L6", "lama-thin-256", "lama-medium-256", "lama-thick-256",
        "lama-thin-256-4x3", "lama-train-256", "deepfillv2-ff", "shape-box", "shape-stroke", "shape-blob", "loc-side",
        "lines-every-4", "nvidia-bin3"]


def reference_variant(rng: np.random.Generator, size: int, irregular: tuple, box: tuple | None,
                      box_proba: float) -> np.ndarray:
    """One draw of LaMa's MixedMaskGenerator on a size x size float32 canvas (1 = hole)."""
    import cv2

    mask = np.zeros((size, size), np.float32)
    probas = np.array([1.0, box_proba] if box else [1.0], dtype=np.float32)
    if rng.choice(len(probas), p=probas / probas.sum()) == 1:
        margin, min_size, max_size, min_times, max_times = box
        max_size = min(max_size + 1, size - 2 * margin)
        for _ in range(rng.integers(min_times, max_times + 1)):
            w, h = rng.integers(min_size, max_size), rng.integers(min_size, max_size)
            x, y = rng.integers(margin, size - margin - w + 1), rng.integers(margin, size - margin - h + 1)
            mask[y:y + h, x:x + w] = 1
        return mask
    max_angle, max_len, max_width, min_times, max_times = irregular
    for i in range(rng.integers(min_times, max_times + 2)):
        x, y = int(rng.integers(size)), int(rng.integers(size))
        for _ in range(1 + rng.integers(5)):
            angle = 0.01 + rng.integers(max_angle)
            if i % 2 == 0:
                angle = 2 * 3.1415926 - angle
            length = 10 + rng.integers(max_len)
            width = 5 + rng.integers(max_width)
            end_x = int(np.clip((x + length * np.sin(angle)).astype(np.int32), 0, size))
            end_y = int(np.clip((y + length * np.cos(angle)).astype(np.int32), 0, size))
            cv2.line(mask, (x, y), (end_x, end_y), 1.0, int(width))
            x, y = end_x, end_y
    return mask


def reference_kept(rng: np.random.Generator, size: int, *config) -> np.ndarray | None:
    """LaMa's gen_mask_dataset for one square image: 5 variants, square crop, drop those over 50%, keep one."""
    kept = []
    for _ in range(5):
        mask = reference_variant(rng, size, *config)
        # LaMa's square crop, here of a square image: it searches the hole pixels and draws an offset that is 0
        ys, _ = np.where(mask > 0.5)
        low = max(0, min(size - size - 1, int(ys.max()) - size))
        top = rng.integers(low, max(low + 1, min(size - size, int(ys.max()))))
        mask = mask[top:top + size]
        if mask.mean() <= 0.5:
            kept.append(mask)
    return kept[rng.choice(len(kept))] if kept else None


def rate(make, count: int) -> float:
    """Calls of ``make`` per CPU second of this process."""
    start = time.process_time()
    for _ in range(count):
        make()
    return count / (time.process_time() - start)


def kept_rate(make, count: int) -> float:
    """Kept masks per CPU second (an image whose five variants are all over 50% gives none)."""
    start, kept = time.process_time(), 0
    for _ in range(count):
        kept += make() is not None
    return kept / (time.process_time() - start)


def main() -> None:
    """Measure and print (and optionally write) the table."""
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    variant_refs, kept_refs = {}, {}
    for name, config in REFERENCE.items():
        kind = name.split("-")[1]
        rng = np.random.default_rng(0)
        variant_refs[name] = rate(lambda c=config, r=rng: reference_variant(r, 256, *c), args.count)
        rows.append((f"reference LaMa {kind}: one variant (numpy + OpenCV)", 256, variant_refs[name], "-", "-"))
        rng = np.random.default_rng(0)
        kept_refs[name] = kept_rate(lambda c=config, r=rng: reference_kept(r, 256, *c), max(50, args.count // 5))
        rows.append((f"reference LaMa {kind}: kept mask (5 variants, crop, 50% cut)", 256, kept_refs[name], "-",
                     "-"))
    for name in OURS:
        spec = resolve_spec(name)
        for size in (256, 512):
            rng = np.random.default_rng(0)
            n = max(50, args.count // (4 if size == 512 else 1))
            value = rate(lambda s=spec, r=rng, z=size: generate(s, r, z), n)
            compared = name in kept_refs and size == 256
            rows.append((f"inpaintbench {name} ({spec.family})", size, value,
                         f"{value / kept_refs[name]:.2f}x" if compared else "-",
                         f"{value / variant_refs[name]:.2f}x" if compared else "-"))
    cpu = platform.processor() or platform.machine()
    emit(f"Mask generation speed ({args.count} masks at 256 per row, a quarter at 512, a fifth of the images for "
         f"the kept-mask rows; {cpu}, python {platform.python_version()}, numpy {np.__version__}, OpenCV "
         f"{cv2.__version__}). inpaintbench rows include the spec check (area, holes, location) and redraws; "
         "a lama preset's ratios are against the reference's kept masks (the same output) and, for scale, "
         "against one of its variants.",
         ["generator", "size", "masks/s per core", "vs reference kept masks", "vs one reference variant"],
         [[g, str(s), f"{v:,.0f}", kept, variant] for g, s, v, kept, variant in rows], args.out)


if __name__ == "__main__":
    main()
