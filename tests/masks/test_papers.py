"""The paper drawers take LaMa's and DeepFill's random numbers with the official bounds and draw their points."""

import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from inpaintbench.masks import MaskSpec, draw_masks
from inpaintbench.masks.papers import draw_deepfill, draw_lama, lama_boxes, lama_square_crop, lama_strokes


class Script:
    """A random source that checks every call against a script and returns the scripted value."""

    def __init__(self, *steps):
        self.steps = list(steps)

    def _next(self, method, args, kwargs):
        assert self.steps, f"unscripted call {method}{args}"
        (expected, want_args, value), self.steps = self.steps[0], self.steps[1:]
        got = args + tuple(kwargs.values())
        assert (method, got) == (expected, want_args), f"called {method}{got}, expected {expected}{want_args}"
        return value

    def integers(self, *args):
        return self._next("integers", args, {})

    def uniform(self, *args):
        return self._next("uniform", args, {})

    def normal(self, *args, **kwargs):
        return self._next("normal", args, kwargs)

    def choice(self, n, p):
        return self._next("choice", (n, tuple(np.round(p, 6))), {})


def test_lama_strokes_count_to_max_times_plus_one_and_clip_integer_ends_to_the_width():
    # 2 strokes (the bound is max_times + 2: LaMa's generator passes max_times + 1 to randint(min, max + 1))
    script = Script(("integers", (4, 52), 2),
                    ("integers", (256,), 100), ("integers", (256,), 10), ("integers", (5,), 0),  # stroke 0
                    ("integers", (4,), 1), ("integers", (40,), 25), ("integers", (10,), 4),
                    ("integers", (256,), 250), ("integers", (256,), 10), ("integers", (5,), 0),  # stroke 1
                    ("integers", (4,), 1), ("integers", (40,), 40), ("integers", (10,), 5))
    mask = np.zeros((256, 256), np.uint8)
    lama_strokes(script, mask, max_angle=4, max_len=40, max_width=10, min_times=4, max_times=50)
    assert not script.steps
    expected = np.zeros((256, 256), np.float32)  # LaMa's canvas
    mirrored = 2 * 3.1415926 - 1.01  # even strokes mirror the angle with LaMa's constant
    cv2.line(expected, (100, 10), (int(100 + 35 * math.sin(mirrored)), int(10 + 35 * math.cos(mirrored))), 1.0, 9)
    cv2.line(expected, (250, 10), (256, int(10 + 50 * math.cos(1.01))), 1.0, 10)  # clipped to 256, not 255
    np.testing.assert_array_equal(mask > 0, expected > 0)


def test_cv2_strokes_are_wider_than_their_thickness_which_is_why_lama_draws_with_opencv():
    for thickness, rows in [(4, 5), (5, 7), (10, 11), (11, 13)]:
        mask = np.zeros((64, 64), np.uint8)
        cv2.line(mask, (10, 32), (50, 32), 255, thickness)
        assert np.count_nonzero(mask[:, 30]) == rows  # even: thickness + 1, odd: thickness + 2
        pil = Image.new("L", (64, 64))
        ImageDraw.Draw(pil).line([(10, 32), (50, 32)], fill=255, width=thickness)
        assert np.count_nonzero(np.asarray(pil)[:, 30]) == thickness


def test_lama_boxes_take_sides_up_to_max_size_inclusive():
    script = Script(("integers", (1, 4), 1), ("integers", (30, 151), 150), ("integers", (30, 151), 30),
                    ("integers", (10, 256 - 10 - 150 + 1), 96), ("integers", (10, 256 - 10 - 30 + 1), 10))
    mask = np.zeros((256, 256), np.uint8)
    lama_boxes(script, mask, margin=10, min_size=30, max_size=150, min_times=1, max_times=3)
    assert not script.steps
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 39, 96, 245)


def test_lama_square_crop_follows_the_last_hole_column():
    mask = np.zeros((256, 341), np.uint8)
    mask[100:120, 300:311] = 255
    # low = max(0, min(341 - 256 - 1, 310 - 256)) = 54, high = max(55, min(341 - 256, 310)) = 85
    crop = lama_square_crop(Script(("integers", (54, 85), 60)), mask)
    assert crop.shape == (256, 256) and np.array_equal(crop, mask[:, 60:316])
    portrait = np.ascontiguousarray(mask.T)
    crop = lama_square_crop(Script(("integers", (54, 85), 54)), portrait)
    assert np.array_equal(crop, portrait[54:310])
    square = mask[:, 45:301].copy()  # a square mask with holes in it (its last column is in the first hole)
    square[10:20, 30:40] = 255
    # a square image is its own crop, drawn without a random number (the empty script fails any draw)
    assert np.array_equal(lama_square_crop(Script(), square), square)


def test_lama_picks_the_kind_with_float32_weights_and_draws_on_the_photo_shape():
    params = {"ref_size": 256, "irregular": (4, 40, 10, 4, 50), "box_proba": 0.3, "box": (0, 10, 50, 1, 1),
              "aspect": 4 / 3}
    script = Script(("choice", (2, (0.769231, 0.230769)), 1), ("integers", (1, 2), 1),
                    ("integers", (10, 51), 20), ("integers", (10, 51), 20),
                    ("integers", (0, 341 - 20 + 1), 321), ("integers", (0, 256 - 20 + 1), 0),
                    ("integers", (84, 85), 84))  # the crop: the box's last column is 340
    mask = draw_lama(script, 256, params)
    assert not script.steps and mask.shape == (256, 256)
    assert mask[:20, 237:].all() and mask.sum() == 20 * 19 * 255  # LaMa's crop [84, 340) cuts the last column


def test_deepfill_takes_the_official_bounds_and_discards_its_flips():
    radius = math.sqrt(2 * 256 * 256) / 8
    steps = [("integers", (1, 4), 1), ("integers", (4, 12), 4), ("uniform", (0, 2 * math.pi / 15), 0.0),
             ("uniform", (0, 2 * math.pi / 15), 0.0)]
    steps += [("uniform", (2 * math.pi / 5, 2 * math.pi / 5), 0.0)] * 4  # the angles: 0 (turned 2 pi on even)
    steps += [("integers", (0, 256), 200), ("integers", (0, 256), 30)]
    steps += [("normal", (radius, 22.0), 40.0)] * 4  # scale r // 2 (22.0 at 256), not r / 2
    steps += [("uniform", (12, 40), 20.9), ("normal", (), 1.0), ("normal", (), 1.0)]
    mask = draw_deepfill(Script(*steps), 256)
    expected = Image.new("L", (256, 256))
    pen = ImageDraw.Draw(expected)
    # clipped to 256 and truncated to int: 2 pi - 0 has a sine of -2.4e-16, which takes y down a pixel
    points = [(200, 30), (240, 29), (256, 29), (256, 28), (256, 28)]
    pen.line(points, fill=255, width=20)
    for x, y in points:
        pen.ellipse((x - 10, y - 10, x + 10, y + 10), fill=255)
    np.testing.assert_array_equal(mask, np.asarray(expected))  # no flip although both decisions were "flip"


@pytest.mark.parametrize("name", ["lama-thin-256", "lama-medium-256-4x3", "lama-train-256"])
def test_lama_presets_render_at_other_sizes(name):
    for size in (64, 512):
        masks = draw_masks(name, 4, size=size, seed=1)
        assert masks.shape == (4, 1, size, size) and masks.any(axis=(1, 2, 3)).all()


def test_lama_specs_take_other_photo_shapes():
    spec = MaskSpec("lama", area=(0.0, 0.5), holes=(1, 2**31 - 1),
                    params={"irregular": (4, 40, 10, 4, 50), "aspect": 0.75})
    masks = draw_masks(spec, 20, size=128, seed=0)
    assert masks.shape == (20, 1, 128, 128) and (masks.reshape(20, -1).mean(1) <= 0.5).all()
