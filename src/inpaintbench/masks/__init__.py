"""Masks: specs, shape generators, the difficulty ladder, frozen evaluation sets and previews."""

from .generators import count_holes, generate, satisfies, touches_border
from .levels import (
           LADDER,
           MASK_PRESETS,
           PRESETS,
           SWEEPS,
           draw_masks,
           list_levels,
           list_presets,
           list_sweeps,
           make_masks,
           mask_rng,
           resolve_spec,
)
from .preview import preview_masks, write_masks_readme
from .sets import import_masks, load_mask_set, make_mask_set
from .spec import MASK_FAMILIES, MaskFamily, MaskSpec

__all__ = ["LADDER", "MASK_FAMILIES", "MASK_PRESETS", "PRESETS", "SWEEPS", "MaskFamily", "MaskSpec", "count_holes",
           "draw_masks", "generate", "import_masks", "list_levels", "list_presets", "list_sweeps", "load_mask_set",
           "make_mask_set", "make_masks", "mask_rng", "preview_masks", "resolve_spec", "satisfies",
           "touches_border", "write_masks_readme"]
