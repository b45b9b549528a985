"""MaskSpec: what a mask must satisfy (shape family, hole area, hole count, location, resolution)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .._registry import InpaintbenchError, Registry

LOCATIONS = {
    "center": "one hole centred on the image",
    "interior": "every hole pixel at least `margin` (fraction of the side) away from the border",
    "anywhere": "no constraint; holes may touch the border",
    "border": "at least one hole touches the border",
    "side": "a band along one whole side of the image",
}


@dataclass(frozen=True)
class MaskFamily:
    """A registered shape family: its drawer and what it can reach.

    Attributes:
        name: the family name used in MaskSpec.family ("strokes", or "strokes+boxes" for a mixture).
        draw: ``draw(canvas, spec, rng, count, target)`` adds ``count`` shapes until the canvas area
            reaches ``target`` pixels (or draws its own algorithm when ``steered`` is False).
        steered: whether the family grows towards an area target; unsteered families (paper algorithms)
            are drawn as published and redrawn until they fall inside the spec.
        max_area: the largest area ratio the family can reach for a spec (feasibility check).
        description: one line for the docs.

    """

    name: str
    draw: Any
    steered: bool = True
    max_area: Any = None
    description: str = ""


MASK_FAMILIES: Registry[MaskFamily] = Registry("mask family")


@dataclass(frozen=True)
class MaskSpec:
    """A mask specification; every mask generated from it lies inside it.

    Attributes:
        family: a registered shape family, or several joined by "+" (a mixture, drawn in that order).
        area: (min, max) hole-area ratio, within [0, 1].
        holes: (min, max) number of connected hole components (8-connectivity).
        location: location policy, one of LOCATIONS.
        size: default resolution (side in pixels) when none is given at generation time.
        margin: border margin as a fraction of the side for ``interior``.
        params: family parameters (a mapping; stored as sorted pairs so the spec stays hashable).
        version: the drawing version. It is raised whenever the same arguments start to draw other pixels
            (a family's drawing was corrected, a preset's parameters changed), so that frozen sets made before
            (their folder name and set.json carry it) are never taken for sets of the new masks.

    """

    family: str
    area: tuple[float, float]
    holes: tuple[int, int] = (1, 1)
    location: str = "anywhere"
    size: int = 256
    margin: float = 0.0625
    params: tuple[tuple[str, Any], ...] = field(default=())
    version: int = 1

    def __post_init__(self) -> None:
        params = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), _freeze(v)) for k, v in params)))
        object.__setattr__(self, "area", tuple(float(a) for a in self.area))
        object.__setattr__(self, "holes", tuple(int(h) for h in self.holes))
        if not isinstance(self.version, int) or self.version < 1:
            raise InpaintbenchError(f"mask spec version must be a positive integer, got {self.version!r}")
        lo, hi = self.area
        for name in self.families:
            MASK_FAMILIES.get(name)
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
        if (self.location == "center") != (self.family == "center-box"):
            raise InpaintbenchError("location 'center' goes with the center-box family, and only with it")
        if (self.location == "side") != (self.family == "side"):
            raise InpaintbenchError("location 'side' goes with the side family, and only with it")
        if self.location == "interior" and lo > (1 - 2 * self.margin) ** 2 * 0.9:
            raise InpaintbenchError(f"an area of {lo:.0%} cannot fit inside a margin of {self.margin:.0%}")
        reachable = sum(MASK_FAMILIES.get(n).max_area(self) if MASK_FAMILIES.get(n).max_area else 1.0
                        for n in self.families)
        if lo > reachable + 1e-9:
            raise InpaintbenchError(f"{self.family} masks with these parameters reach at most {reachable:.0%} of the "
                                    f"image, below the requested minimum area {lo:.0%}")

    @property
    def families(self) -> list[str]:
        """The family names of a (possibly mixed) family."""
        return self.family.split("+")

    def param(self, key: str, default: Any = None) -> Any:
        """A family parameter, or ``default``."""
        return dict(self.params).get(key, default)

    def with_size(self, size: int | None) -> MaskSpec:
        """The same spec at another resolution (None keeps this one)."""
        return self if size is None or size == self.size else MaskSpec(**{**self._fields(), "size": int(size)})

    def _fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("family", "area", "holes", "location", "size", "margin", "params",
                                          "version")}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields."""
        data = asdict(self)
        return {**data, "area": list(self.area), "holes": list(self.holes),
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params}}


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
