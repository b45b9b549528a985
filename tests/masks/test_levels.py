import numpy as np
import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import (
    MASK_PRESETS,
    MaskSpec,
    count_holes,
    draw_masks,
    list_levels,
    list_presets,
    list_sweeps,
    resolve_spec,
    satisfies,
)
from inpaintbench.masks.difficulty import difficulty
from inpaintbench.masks.generators import is_side_band, touches_border
from inpaintbench.masks.levels import ladder_steps

ALL_SPECS = MASK_PRESETS.names()


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SPECS)
def test_1000_masks_at_256_lie_inside_their_spec(name):
    spec = resolve_spec(name).with_size(256)
    masks = draw_masks(name, 1000, size=256, seed=11)[:, 0].astype(bool)
    areas = masks.reshape(1000, -1).mean(axis=1)
    assert (areas >= spec.area[0]).all() and (areas <= spec.area[1]).all() and (areas > 0).all()
    for mask in masks:
        assert satisfies(mask, spec), name
    if spec.holes[1] < 10**6:
        holes = np.array([count_holes(m) for m in masks])
        assert (holes >= spec.holes[0]).all() and (holes <= spec.holes[1]).all()


@pytest.mark.parametrize("name", ALL_SPECS)
@pytest.mark.parametrize("size", [64, 512])
def test_specs_render_at_other_resolutions(name, size):
    spec = resolve_spec(name).with_size(size)
    for mask in draw_masks(name, 6, size=size, seed=3)[:, 0].astype(bool):
        assert mask.shape == (size, size) and satisfies(mask, spec)


def test_locations_hold():
    for mask in draw_masks("L2", 100, size=64, seed=0)[:, 0].astype(bool):
        assert not touches_border(mask) and not mask[:4].any() and not mask[:, -4:].any()
    for mask in draw_masks("L6", 50, size=128, seed=0)[:, 0].astype(bool):
        assert touches_border(mask)
    for mask in draw_masks("area-30-40-interior", 50, size=128)[:, 0].astype(bool):
        assert not touches_border(mask)
    for mask in draw_masks("loc-side", 50, size=64)[:, 0].astype(bool):
        assert is_side_band(mask)
    mask = draw_masks("L1-v1", 1, size=64)[0, 0].astype(bool)  # the first ladder's centred box
    rows, cols = np.nonzero(mask)
    assert rows.min() + rows.max() in (62, 63, 64) and cols.min() + cols.max() in (62, 63, 64)


def test_ladder_has_six_levels_with_rising_area():
    assert list_levels() == ["L1", "L2", "L3", "L4", "L5", "L6"]
    means = [draw_masks(level, 200, size=128).mean() for level in list_levels()]
    assert means == sorted(means)


@pytest.mark.parametrize("size", [64, 256])
def test_every_level_is_harder_than_the_last_on_every_graded_axis(size):
    axes = [difficulty(draw_masks(level, 400 if size == 64 else 60, size=size, seed=1)) for level in list_levels()]
    area, depth, context = ([float(np.mean(a[k])) for a in axes] for k in ("area", "depth", "context"))
    assert np.all(np.diff(area) > 0) and np.all(np.diff(depth) > 0) and np.all(np.diff(context) < 0), (
        area, depth, context)


def test_the_first_ladder_stays_registered_and_shows_why_it_was_replaced():
    assert list_levels(1) == [f"L{k}-v1" for k in range(1, 7)]
    assert all(resolve_spec(name).version == 1 for name in list_levels(1))
    assert all(resolve_spec(name).version == 2 for name in list_levels())
    depth = [float(np.mean(difficulty(draw_masks(n, 100, size=64))["depth"])) for n in ("L1-v1", "L3-v1")]
    assert depth[1] < depth[0]  # thin strokes on a larger area are shallower than the centred box
    with pytest.raises(InpaintbenchError, match="no ladder of version 7"):
        list_levels(7)


def test_ladder_steps_pair_consecutive_levels_of_either_ladder():
    assert ladder_steps(["L3", "L1", "lama-thin-256", "L2"]) == [("L1", "L2"), ("L2", "L3")]
    assert ladder_steps(["L1", "L4", "L2-v1", "L3-v1"]) == [("L1", "L4"), ("L2-v1", "L3-v1")]


def test_make_masks_goes_straight_into_the_metrics_and_a_model(astronaut):
    import torch

    import inpaintbench as ib

    masks = ib.make_masks("L4", 2, size=64, seed=0)
    assert isinstance(masks, torch.Tensor) and masks.shape == (2, 1, 64, 64) and masks.dtype == torch.uint8
    assert torch.equal(masks, torch.from_numpy(draw_masks("L4", 2, size=64, seed=0)))
    image = torch.from_numpy(astronaut[::8, ::8][:64, :64].copy()).permute(2, 0, 1)[None].float().div(255)
    image = image.expand(2, -1, -1, -1)
    pred = ib.create_model("telea")(image * (1 - masks), masks)
    psnr = ib.metrics.psnr(pred, image, masks)
    assert psnr.shape == (2,) and bool(torch.all(psnr > 10))


def test_presets_and_sweeps_are_registered():
    for name in ["lama-thin-256", "lama-medium-256", "lama-thick-256", "lama-thin-512", "lama-medium-512",
                 "lama-thick-512", "deepfillv2-ff", "center-box", *[f"nvidia-bin{k}" for k in range(1, 7)]]:
        assert name in list_presets()
    sweeps = list_sweeps()
    assert sum(s.startswith("area-") for s in sweeps) == 12
    assert {"holes-1", "holes-2-3", "holes-4-8", "shape-box", "shape-stroke", "shape-blob", "loc-center",
            "loc-interior", "loc-border", "loc-side"} <= set(sweeps)
    assert resolve_spec("lama-thick-512").size == 512 and resolve_spec("lama-thick-512").area == (0.0, 0.5)


def test_sweeps_vary_one_axis():
    holes = {n: np.mean([count_holes(m) for m in draw_masks(n, 40, size=128)[:, 0]])
             for n in ["holes-1", "holes-2-3", "holes-4-8"]}
    assert holes["holes-1"] == 1 and 2 <= holes["holes-2-3"] <= 3 and holes["holes-4-8"] >= 4
    areas = [draw_masks(n, 40, size=128).mean() for n in ["holes-1", "holes-2-3", "holes-4-8"]]
    assert max(areas) - min(areas) < 0.03  # the same total area


def test_same_seed_same_masks_other_seed_other_masks():
    for name in ["L3", "L6", "lama-medium-256", "deepfillv2-ff"]:
        a = draw_masks(name, 12, size=64, seed=5)
        assert np.array_equal(a, draw_masks(name, 12, size=64, seed=5))
        assert not np.array_equal(a, draw_masks(name, 12, size=64, seed=6))
        assert np.array_equal(a[6:], draw_masks(name, 6, size=64, seed=5, start=6))


@pytest.mark.parametrize("kwargs, message", [
    ({"family": "boxes", "area": (-0.1, 0.2)}, "within"),
    ({"family": "boxes", "area": (0.3, 1.2)}, "within"),
    ({"family": "boxes", "area": (0.3, 0.2)}, "min is larger"),
    ({"family": "spiral", "area": (0.1, 0.2)}, "unknown mask family 'spiral'"),
    ({"family": "boxes+spiral", "area": (0.1, 0.2)}, "unknown mask family 'spiral'"),
    ({"family": "boxes", "area": (0.1, 0.2), "location": "moon"}, "unknown mask location"),
    ({"family": "boxes", "area": (0.1, 0.2), "holes": (3, 1)}, "hole count"),
    ({"family": "boxes", "area": (0.1, 0.2), "location": "center"}, "center-box family"),
    ({"family": "boxes", "area": (0.8, 0.9), "location": "interior"}, "cannot fit"),
    ({"family": "boxes", "area": (0.6, 0.6), "holes": (1, 1), "params": {"max_side": 0.3}}, "reach at most 9%"),
    ({"family": "lines", "area": (0.4, 0.5), "params": {"every": 4}}, "reach at most 25%"),
])
def test_bad_specs_fail_at_construction_with_one_line(kwargs, message):
    with pytest.raises(InpaintbenchError, match=message) as err:
        MaskSpec(**kwargs)
    assert "\n" not in str(err.value)


def test_unknown_level_is_a_clear_error():
    with pytest.raises(InpaintbenchError, match="unknown mask level or preset 'L9'"):
        draw_masks("L9", 1)


def test_spec_params_are_hashable_and_serialisable():
    spec = MaskSpec("strokes", area=(0.1, 0.2), params={"width": [0.05, 0.1]})
    assert hash(spec) == hash(MaskSpec("strokes", area=(0.1, 0.2), params={"width": (0.05, 0.1)}))
    assert spec.to_dict()["params"] == {"width": [0.05, 0.1]}
    assert spec.param("width") == (0.05, 0.1)
