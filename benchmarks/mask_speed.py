"""Mask generation speed: masks per second on one core, against a reference LaMa generator in the same run.

inpaintbench's ladder levels and presets are timed next to a straightforward reference of LaMa's stroke
generator (numpy + OpenCV line drawing).

    python benchmarks/mask_speed.py [--count 2000] [--out benchmarks/results/mask_speed.md]

Needs OpenCV for the reference only (`pip install opencv-python-headless`). Figures are CPU seconds of this
process (one thread), so they read as masks/s per core.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import numpy as np
from _table import emit

from inpaintbench.masks import generate, resolve_spec

# LaMa's random_thick_256 and random_thin_256 irregular parameters (max_angle, max_len, max_width, min_times,
# max_times), from configs/data_gen of the LaMa repository.
REFERENCE = {"lama-thick-256": (4, 200, 100, 1, 5), "lama-thin-256": (4, 40, 10, 4, 50)}
OURS = ["L1", "L2", "L3", "L4", "L5", "L6", "lama-thin-256", "lama-medium-256", "lama-thick-256",
        "deepfillv2-ff", "shape-box", "shape-stroke", "shape-blob", "loc-side", "lines-every-4", "nvidia-bin3"]


def reference_lama_irregular(rng: np.random.Generator, size: int, max_angle: int, max_len: int, max_width: int,
                             min_times: int, max_times: int) -> np.ndarray:
    """LaMa's irregular strokes as the paper's code draws them: cv2.line segments on a float32 canvas."""
    import cv2

    mask = np.zeros((size, size), np.float32)
    for i in range(rng.integers(min_times, max_times + 1)):
        x, y = int(rng.integers(size)), int(rng.integers(size))
        for _ in range(1 + rng.integers(5)):
            angle = 0.01 + rng.integers(max_angle)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + rng.integers(max_len)
            width = 5 + rng.integers(max_width)
            end_x = int(np.clip(x + length * np.sin(angle), 0, size))
            end_y = int(np.clip(y + length * np.cos(angle), 0, size))
            cv2.line(mask, (x, y), (end_x, end_y), 1.0, int(width))
            x, y = end_x, end_y
    return mask


def rate(make, count: int) -> float:
    """Masks per CPU second of this process."""
    start = time.process_time()
    for _ in range(count):
        make()
    return count / (time.process_time() - start)


def main() -> None:
    """Measure and print (and optionally write) the table."""
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    refs = {}
    for name, params in REFERENCE.items():
        rng = np.random.default_rng(0)
        refs[name] = rate(lambda p=params, r=rng: reference_lama_irregular(r, 256, *p), args.count)
        rows.append((f"reference LaMa {name.split('-')[1]} (numpy + OpenCV)", 256, refs[name], "-"))
    for name in OURS:
        spec = resolve_spec(name)
        for size in (256, 512):
            rng = np.random.default_rng(0)
            n = max(50, args.count // (4 if size == 512 else 1))
            value = rate(lambda s=spec, r=rng, z=size: generate(s, r, z), n)
            ratio = f"{value / refs[name]:.2f}x" if name in refs and size == 256 else "-"
            rows.append((f"inpaintbench {name} ({spec.family})", size, value, ratio))
    cpu = platform.processor() or platform.machine()
    emit(f"Mask generation speed ({args.count} masks at 256 per row, a quarter at 512; {cpu}, python "
         f"{platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}). inpaintbench rows "
         "include the spec check (area, holes, location) and redraws.",
         ["generator", "size", "masks/s per core", "vs reference"],
         [[g, str(s), f"{v:,.0f}", r] for g, s, v, r in rows], args.out)


if __name__ == "__main__":
    main()
