"""The difficulty ladder (levels L1, L2, ...) and named paper presets, in one registry."""

from __future__ import annotations

import numpy as np

from .._registry import InpaintbenchError, Registry
from .generators import generate
from .spec import MaskSpec

MASK_PRESETS: Registry[MaskSpec] = Registry("mask level or preset")

# The ladder, monotone in difficulty. Resolution is a separate axis: `size` is only the default.
LADDER = {
    "L1": MaskSpec("center-box", area=(0.10, 0.20), holes=(1, 1), location="center"),
    "L2": MaskSpec("boxes", area=(0.10, 0.25), holes=(1, 2), location="interior"),
    "L3": MaskSpec("strokes", area=(0.15, 0.30), holes=(1, 3), location="anywhere"),
}
for _name, _spec in LADDER.items():
    MASK_PRESETS.register(_name, _spec)

# Context Encoder / GLCIC style: a centred square of a quarter of the image (half the side).
MASK_PRESETS.register("center-box", MaskSpec("center-box", area=(0.25, 0.25), holes=(1, 1), location="center"))


def list_levels() -> list[str]:
    """Names of the ladder levels, easiest first."""
    return list(LADDER)


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
