"""MaskSpec: what a mask must satisfy (shape family, hole area, hole count, location, resolution)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._registry import InpaintbenchError

FAMILIES = ("center-box", "boxes", "strokes")
LOCATIONS = {
    "center": "one hole centred on the image",
    "interior": "every hole pixel at least `margin` (fraction of the side) away from the border",
    "anywhere": "no constraint; holes may touch the border",
    "border": "at least one hole touches the border",
}


@dataclass(frozen=True)
class MaskSpec:
    """A mask specification; every mask generated from it lies inside it.

    Attributes:
        family: shape family, one of FAMILIES.
        area: (min, max) hole-area ratio, within [0, 1].
        holes: (min, max) number of connected hole components (8-connectivity).
        location: location policy, one of LOCATIONS.
        size: default resolution (side in pixels) when none is given at generation time.
        margin: border margin as a fraction of the side for ``interior``.

    """

    family: str
    area: tuple[float, float]
    holes: tuple[int, int] = (1, 1)
    location: str = "anywhere"
    size: int = 256
    margin: float = 0.0625

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", tuple(float(a) for a in self.area))
        object.__setattr__(self, "holes", tuple(int(h) for h in self.holes))
        lo, hi = self.area
        if self.family not in FAMILIES:
            raise InpaintbenchError(f"unknown mask family {self.family!r}; known: {', '.join(FAMILIES)}")
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
            raise InpaintbenchError(f"mask area range {self.area} must lie within [0, 1]")
        if lo > hi:
            raise InpaintbenchError(f"mask area range {self.area}: min is larger than max")
        if hi <= 0.0:
            raise InpaintbenchError("mask area range must allow a hole (max > 0)")
        if self.holes[0] < 1 or self.holes[0] > self.holes[1]:
            raise InpaintbenchError(f"hole count range {self.holes} must satisfy 1 <= min <= max")
        if self.location not in LOCATIONS:
            raise InpaintbenchError(f"unknown mask location {self.location!r}; known: {', '.join(LOCATIONS)}")
        if not 8 <= self.size <= 4096:
            raise InpaintbenchError(f"mask size {self.size} must be between 8 and 4096")
        if not 0.0 <= self.margin < 0.25:
            raise InpaintbenchError(f"mask margin {self.margin} must be in [0, 0.25)")
        if self.family == "center-box":
            if self.holes != (1, 1) or self.location != "center":
                raise InpaintbenchError("a center-box mask has exactly one hole, located at the centre")
        elif self.location == "center":
            raise InpaintbenchError(f"location 'center' is only for the center-box family, not {self.family!r}")
        if self.location == "interior" and lo > (1 - 2 * self.margin) ** 2 * 0.9:
            raise InpaintbenchError(f"an area of {lo:.0%} cannot fit inside a margin of {self.margin:.0%}")

    def with_size(self, size: int | None) -> MaskSpec:
        """The same spec at another resolution (None keeps this one)."""
        return self if size is None or size == self.size else MaskSpec(**{**asdict(self), "size": int(size)})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields."""
        return {**asdict(self), "area": list(self.area), "holes": list(self.holes)}
