"""Each registered level, preset and sweep is pinned to its drawing version by the masks it draws.

When a test here fails, the masks drawn for the same (spec, size, seed) changed: raise that spec's ``version``
(so that frozen sets made before are never taken for sets of the new masks: the version is in the set's folder
name and set.json) and update its entry. The digests are those of numpy's, Pillow's and OpenCV's rasterisers
here; a library upgrade that moves pixels shows up here too, and is a drawing change like any other.
"""

import hashlib

import pytest

from inpaintbench.masks import MASK_PRESETS, draw_masks

# name: (version, sha256[:12] of draw_masks(name, 8, size=64, seed=0))
PINNED = {
    # the ladder of issue 22 (version 2) and the first ladder under its versioned names (the masks of then)
    "L1": (2, "2a6e1150bdf3"),
    "L2": (2, "f7a4b39ae85f"),
    "L3": (2, "eabba3e3cb3d"),
    "L4": (2, "056f448d8e42"),
    "L5": (2, "aa659b376f22"),
    "L6": (2, "28f004d489ad"),
    "L1-v1": (1, "f4986ba1ff14"),
    "L2-v1": (1, "998d9bf5a8aa"),
    "L3-v1": (1, "62466ce8366e"),
    "L4-v1": (1, "f7fa019df956"),
    "L5-v1": (1, "ea98cf05a394"),
    "L6-v1": (1, "cfa8c14aef20"),
    "lama-thin-256": (2, "a5de2be35768"),
    "lama-medium-256": (2, "7df2abdffaa7"),
    "lama-thick-256": (2, "072dce9dc559"),
    "lama-thin-512": (2, "b265cabae4e2"),
    "lama-medium-512": (2, "7ed9b8374c9a"),
    "lama-thick-512": (2, "4966f4b0eb09"),
    "lama-thin-256-4x3": (1, "ef87639caa57"),
    "lama-medium-256-4x3": (1, "5c33a1ff6487"),
    "lama-thick-256-4x3": (1, "a03028e9ccea"),
    "lama-train-256": (1, "e1004e391a08"),
    "lama-train-thin-256": (1, "410d0990f9cb"),
    "deepfillv2-ff": (2, "2d39984ff649"),
    "center-box": (1, "f2eb0c3861ab"),
    "nvidia-bin1": (1, "267d49e0ac10"),
    "nvidia-bin2": (1, "5ebd2719fa56"),
    "nvidia-bin3": (1, "b38f1d960d0d"),
    "nvidia-bin4": (1, "da52c1e3e2ab"),
    "nvidia-bin5": (1, "3f242d508b73"),
    "nvidia-bin6": (1, "cfad7a03373e"),
    "area-01-10-border": (1, "2432d7862161"),
    "area-01-10-interior": (1, "97f9133fd773"),
    "area-10-20-border": (1, "54af045f4f01"),
    "area-10-20-interior": (1, "5c83cedd7653"),
    "area-20-30-border": (1, "1ce67a4464d9"),
    "area-20-30-interior": (1, "6760873cae8f"),
    "area-30-40-border": (1, "440aca4f25e8"),
    "area-30-40-interior": (1, "7d1519ca1123"),
    "area-40-50-border": (1, "3798de530fdd"),
    "area-40-50-interior": (1, "1363a212255d"),
    "area-50-60-border": (1, "c5375967ec8c"),
    "area-50-60-interior": (1, "a58d6272c106"),
    "holes-1": (1, "ebab1aaa635f"),
    "holes-2-3": (1, "c959e6bf4de7"),
    "holes-4-8": (1, "97472d573e29"),
    "shape-box": (1, "75b5682d9db3"),
    "shape-stroke": (1, "97c54b894e03"),
    "shape-blob": (1, "67e4713be133"),
    "loc-center": (1, "3fafad2cd272"),
    "loc-interior": (1, "6fecc7c9e868"),
    "loc-border": (1, "5bd6808f830e"),
    "loc-side": (1, "f754b47fc0f0"),
    "lines-every-4": (1, "b9eec6e4a0ae"),
}


def test_every_registered_spec_is_pinned():
    assert set(PINNED) == set(MASK_PRESETS.names())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_masks_are_pinned_to_the_spec_version(name):
    version, digest = PINNED[name]
    drawn = hashlib.sha256(draw_masks(name, 8, size=64, seed=0).tobytes()).hexdigest()[:12]
    assert (MASK_PRESETS.get(name).version, drawn) == (version, digest), (
        f"{name} draws other masks than its pinned version {version}: raise its version and update PINNED")
