import numpy as np
import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import MaskSpec, count_holes, list_levels, make_masks, resolve_spec, satisfies
from inpaintbench.masks.generators import touches_border


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "center-box"])
@pytest.mark.parametrize("size", [64, 256])
def test_every_mask_lies_inside_its_spec(level, size):
    spec = resolve_spec(level).with_size(size)
    masks = make_masks(level, 150, size=size, seed=7)
    assert masks.dtype == np.uint8 and masks.shape == (150, 1, size, size)
    for mask in masks[:, 0].astype(bool):
        assert satisfies(mask, spec)
        assert spec.area[0] <= mask.mean() <= spec.area[1]
        assert spec.holes[0] <= count_holes(mask) <= spec.holes[1]


def test_l2_stays_inside_the_margin_and_l1_is_centred():
    for mask in make_masks("L2", 100, size=64, seed=0)[:, 0].astype(bool):
        assert not touches_border(mask)
        assert not mask[:4].any() and not mask[:, -4:].any()
    mask = make_masks("L1", 1, size=64)[0, 0].astype(bool)
    rows, cols = np.nonzero(mask)
    assert rows.min() + rows.max() in (62, 63, 64) and cols.min() + cols.max() in (62, 63, 64)


def test_ladder_is_ordered_and_area_rises():
    assert list_levels() == ["L1", "L2", "L3"]
    means = [make_masks(level, 200, size=64).mean() for level in list_levels()]
    assert means == sorted(means)


def test_same_seed_same_masks_other_seed_other_masks():
    a = make_masks("L3", 20, size=64, seed=5)
    assert np.array_equal(a, make_masks("L3", 20, size=64, seed=5))
    assert not np.array_equal(a, make_masks("L3", 20, size=64, seed=6))
    # mask i does not depend on how many were drawn before it
    assert np.array_equal(a[10:], make_masks("L3", 10, size=64, seed=5, start=10))


@pytest.mark.parametrize("kwargs, message", [
    ({"family": "boxes", "area": (-0.1, 0.2)}, "within"),
    ({"family": "boxes", "area": (0.3, 0.2)}, "min is larger"),
    ({"family": "spiral", "area": (0.1, 0.2)}, "unknown mask family"),
    ({"family": "boxes", "area": (0.1, 0.2), "location": "moon"}, "unknown mask location"),
    ({"family": "boxes", "area": (0.1, 0.2), "holes": (3, 1)}, "hole count"),
    ({"family": "center-box", "area": (0.1, 0.2), "holes": (1, 2), "location": "center"}, "exactly one hole"),
    ({"family": "boxes", "area": (0.8, 0.9), "location": "interior"}, "cannot fit"),
])
def test_bad_specs_fail_at_construction(kwargs, message):
    with pytest.raises(InpaintbenchError, match=message):
        MaskSpec(**kwargs)


def test_unknown_level_is_a_clear_error():
    with pytest.raises(InpaintbenchError, match="unknown mask level"):
        make_masks("L9", 1)
