"""Masks: specs, shape generators, the difficulty ladder, frozen evaluation sets and previews."""

from .generators import count_holes, generate, satisfies, touches_border
from .levels import LADDER, MASK_PRESETS, list_levels, make_masks, mask_rng, resolve_spec
from .preview import preview_masks
from .sets import load_mask_set, make_mask_set
from .spec import MaskSpec

__all__ = ["LADDER", "MASK_PRESETS", "MaskSpec", "count_holes", "generate", "list_levels", "load_mask_set",
           "make_mask_set", "make_masks", "mask_rng", "preview_masks", "resolve_spec", "satisfies",
           "touches_border"]
