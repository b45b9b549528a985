"""The difficulty ladder (L1-L6), paper presets and single-axis sweeps, in one registry."""

from __future__ import annotations

import numpy as np

from .._registry import InpaintbenchError, Registry
from .generators import generate
from .spec import MaskSpec

MASK_PRESETS: Registry[MaskSpec] = Registry("mask level or preset", listing="inpaintbench masks levels")

# The ladder, monotone in difficulty. Resolution is a separate axis: `size` is only the default.
LADDER = {
    "L1": MaskSpec("center-box", area=(0.10, 0.20), holes=(1, 1), location="center"),
    "L2": MaskSpec("boxes", area=(0.10, 0.25), holes=(1, 2), location="interior"),
    # Stroke widths grow along the ladder (at 256: L3 8-32 px, L4 28-64, L5 and L6 40-72) and L5 draws its
    # boxes first. With one stroke width for L3 and L4, L4 was no harder than L3 for mean fill (0.1426 against
    # 0.1427 over 64 draws per image); see masks/README.md for the measured ladder.
    "L3": MaskSpec("strokes", area=(0.15, 0.30), holes=(1, 3), location="anywhere",
                   params={"width": (8 / 256, 32 / 256)}),
    "L4": MaskSpec("strokes+boxes", area=(0.25, 0.40), holes=(2, 5), location="anywhere",
                   params={"width": (28 / 256, 64 / 256)}),
    "L5": MaskSpec("boxes+thick-strokes", area=(0.35, 0.50), holes=(3, 8), location="anywhere"),
    "L6": MaskSpec("blobs+thick-strokes", area=(0.45, 0.60), holes=(4, 10), location="border"),
}

# LaMa's fixed evaluation sets (configs/data_gen/random_*.yaml): irregular = (max_angle, max_len, max_width,
# min_times, max_times) and box = (margin, min_size, max_size, min_times, max_times) in pixels at ref_size,
# box_proba against irregular weight 1; masks over 50% of the image are dropped (max_tamper_area 0.5). Version 2
# draws LaMa's own footprint (cv2.line, integer points, its stroke and box counts): version 1 drew 3.8 points
# less hole area on thin and medium (see masks/README.md).
_LAMA_EVAL = {
    "lama-thin-256": {"ref_size": 256, "irregular": (4, 40, 10, 4, 50), "box_proba": 0.0},
    "lama-medium-256": {"ref_size": 256, "irregular": (4, 100, 50, 4, 5), "box_proba": 0.3, "box": (0, 10, 50, 1, 5)},
    "lama-thick-256": {"ref_size": 256, "irregular": (4, 200, 100, 1, 5), "box_proba": 0.3, "box": (10, 30, 150, 1, 3)},
    "lama-thin-512": {"ref_size": 512, "irregular": (4, 100, 20, 4, 70), "box_proba": 0.0},
    "lama-medium-512": {"ref_size": 512, "irregular": (4, 200, 100, 4, 10), "box_proba": 0.3,
                        "box": (0, 30, 150, 1, 5)},
    "lama-thick-512": {"ref_size": 512, "irregular": (4, 450, 250, 1, 5), "box_proba": 0.3, "box": (10, 30, 300, 1, 4)},
}
# LaMa's evaluation protocol on photos: the masks are drawn on the image resized to short side 256, then the
# square crop is taken (4:3 photos here; other shapes: a MaskSpec with params aspect = width / height).
_LAMA_PHOTO = {f"{name}-4x3": {**_LAMA_EVAL[name], "aspect": 4 / 3}
               for name in ("lama-thin-256", "lama-medium-256", "lama-thick-256")}
# LaMa's training masks (configs/training/data/*.yaml, mask_gen_kwargs): no area cut, no crop. abl-04-256-mh-dist
# is Big-LaMa's and LaMa-Fourier's; abl-02-thin-bb is the "DeepFill v2-like" thin variant.
_LAMA_TRAIN = {
    "lama-train-256": {"ref_size": 256, "irregular": (4, 200, 100, 1, 5), "box_proba": 1.0, "box": (10, 30, 150, 1, 4)},
    "lama-train-thin-256": {"ref_size": 256, "irregular": (4, 80, 40, 4, 12), "box_proba": 1.0,
                            "box": (0, 30, 128, 1, 1)},
}
# NVIDIA's irregular test bins (PConv): hole ratio (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6].
NVIDIA_BINS = [(0.01, 0.10), (0.10, 0.20), (0.20, 0.30), (0.30, 0.40), (0.40, 0.50), (0.50, 0.60)]
_FIXED_AREA = (0.20, 0.30)  # the total hole area of the count, shape and location sweeps
_NO_CONTACT = 2 / 256  # margin of the "no border contact" bins
UNBOUNDED = 2**31 - 1  # a hole-count maximum that constrains nothing

PRESETS = {
    **{name: MaskSpec("lama", area=(0.0, 0.5), holes=(1, UNBOUNDED), size=params["ref_size"], params=params,
                      version=2)
       for name, params in _LAMA_EVAL.items()},
    **{name: MaskSpec("lama", area=(0.0, 0.5), holes=(1, UNBOUNDED), size=256, params=params)
       for name, params in _LAMA_PHOTO.items()},
    **{name: MaskSpec("lama", area=(0.0, 1.0), holes=(1, UNBOUNDED), size=256, params=params)
       for name, params in _LAMA_TRAIN.items()},
    # DeepFill v2 free-form strokes as published (1-3 strokes, no area control). Version 2 makes the official
    # Pillow calls (one polyline, vertex discs of width // 2, int widths and points, no flips).
    "deepfillv2-ff": MaskSpec("deepfill", area=(0.0, 1.0), holes=(1, 3), version=2),
    # Context Encoder / GLCIC test masks: a centred square of half the side (a quarter of the image)
    "center-box": MaskSpec("center-box", area=(0.25, 0.25), holes=(1, 1), location="center"),
    # Synthetic irregular masks in NVIDIA's bins; `inpaintbench masks import` brings in the real test set.
    **{f"nvidia-bin{k + 1}": MaskSpec("blobs+strokes", area=b, holes=(1, 12)) for k, b in enumerate(NVIDIA_BINS)},
}

SWEEPS = {
    # area: NVIDIA's six bins, with and without border contact
    **{f"area-{round(lo * 100):02d}-{round(hi * 100):02d}-{kind}":
       MaskSpec("blobs+strokes", area=(lo, hi), holes=(1, 12), location=kind,
                margin=_NO_CONTACT if kind == "interior" else 0.0625)
       for lo, hi in NVIDIA_BINS for kind in ("border", "interior")},
    # hole count at a fixed total area
    "holes-1": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 1)),
    "holes-2-3": MaskSpec("blobs", area=_FIXED_AREA, holes=(2, 3)),
    "holes-4-8": MaskSpec("blobs", area=_FIXED_AREA, holes=(4, 8)),
    # shape at a fixed area and count
    "shape-box": MaskSpec("boxes", area=_FIXED_AREA, holes=(1, 3)),
    "shape-stroke": MaskSpec("strokes", area=_FIXED_AREA, holes=(1, 3)),
    "shape-blob": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3)),
    # location at a fixed area
    "loc-center": MaskSpec("center-box", area=_FIXED_AREA, holes=(1, 1), location="center"),
    "loc-interior": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3), location="interior"),
    "loc-border": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3), location="border"),
    "loc-side": MaskSpec("side", area=_FIXED_AREA, holes=(1, 1), location="side"),
    # NTIRE-style extra
    "lines-every-4": MaskSpec("lines", area=(0.25, 0.25), holes=(1, UNBOUNDED), params={"every": 4}),
}
for _name, _spec in {**LADDER, **PRESETS, **SWEEPS}.items():
    MASK_PRESETS.register(_name, _spec)


def list_levels() -> list[str]:
    """Names of the ladder levels, easiest first."""
    return list(LADDER)


def list_presets() -> list[str]:
    """Names of the paper presets."""
    return list(PRESETS)


def list_sweeps() -> list[str]:
    """Names of the single-axis sweeps (area, hole count, shape, location) and extras."""
    return list(SWEEPS)


def resolve_spec(level_or_spec: str | MaskSpec) -> MaskSpec:
    """A MaskSpec from a level or preset name, or the spec itself."""
    if isinstance(level_or_spec, MaskSpec):
        return level_or_spec
    if not isinstance(level_or_spec, str):
        raise InpaintbenchError(f"expected a level name or a MaskSpec, got {type(level_or_spec).__name__}")
    return MASK_PRESETS.get(level_or_spec)


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for mask ``index`` of a seeded set: independent of order, workers and batch size."""
    return np.random.default_rng([int(seed), int(index)])


def make_masks(level_or_spec: str | MaskSpec, n: int, size: int | None = None, seed: int = 0,
               start: int = 0) -> np.ndarray:
    """Generate ``n`` masks as a uint8 array N x 1 x H x W with 1 = hole.

    Mask ``i`` depends only on (spec, size, seed, start + i), so any slice of a set can be drawn alone.

    Example:
        >>> make_masks("L1", 2, size=64).shape
        (2, 1, 64, 64)

    """
    spec = resolve_spec(level_or_spec).with_size(size)
    if n < 0:
        raise InpaintbenchError(f"mask count must be >= 0, got {n}")
    out = np.zeros((n, 1, spec.size, spec.size), dtype=np.uint8)
    for i in range(n):
        out[i, 0] = generate(spec, mask_rng(seed, start + i))
    return out
