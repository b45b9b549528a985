"""ib.replace_object and `inpaintbench replace`: borrowed edges, the sketch, the files, bad input, hole PSNR."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.transform import resize

import inpaintbench as ib
from inpaintbench import InpaintbenchError
from inpaintbench.cli import main
from inpaintbench.models.edges import canny_edges, gray_image


def _edges(rgb, known=None):
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    k = None if known is None else torch.from_numpy(known.astype(np.float32))[None, None]
    return canny_edges(gray_image(x if k is None else x * k), 2.0, where=k)[0, 0].numpy() > 0.5


def test_the_photo_as_its_own_reference_borrows_its_true_edges(photo, hole, edgeconnect_run):
    replaced = ib.replace_object(photo, hole, photo, checkpoint=edgeconnect_run, model="edgeconnect-tiny")
    truth = _edges(photo)
    assert np.array_equal(replaced.edges[hole] > 127, truth[hole])  # the hole holds the photo's own edges
    assert np.array_equal(replaced.edges[~hole] > 127, _edges(photo, ~hole)[~hole])  # Canny of the known pixels
    assert replaced.result.shape == photo.shape and np.array_equal(replaced.result[~hole], photo[~hole])
    assert replaced.panel.shape[0] == photo.shape[0] and replaced.panel.shape[1] > 3 * photo.shape[1]


def test_a_sketch_places_the_references_object(photo, edgeconnect_run, astronaut):
    """The sketch is the reference's edges of one region, drawn into the hole: that region is what comes in."""
    reference = (resize(astronaut, (160, 160), anti_aliasing=True) * 255).round().astype(np.uint8)
    ref_edges = _edges(reference)
    hole = np.zeros(photo.shape[:2], bool)
    hole[80:130, 100:160] = True
    sketch = np.zeros(photo.shape[:2], np.uint8)
    sketch[85:125, 105:155] = ref_edges[60:100, 40:90] * 255  # the face's edges, 5 px inside the hole
    replaced = ib.replace_object(photo, hole, reference, sketch=sketch, checkpoint=edgeconnect_run)
    borrowed = replaced.edges[80:130, 100:160] > 127
    assert np.array_equal(borrowed, ref_edges[55:105, 35:95])


def test_the_command_writes_result_edges_and_panel(photo, hole, edgeconnect_run, tmp_path):
    Image.fromarray(photo).save(tmp_path / "cat.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    assert main(["replace", str(tmp_path / "cat.png"), "--mask", str(tmp_path / "mask.png"), "--reference",
                 str(tmp_path / "cat.png"), "--checkpoint", str(edgeconnect_run), "--out",
                 str(tmp_path / "out" / "new.png")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["new-edges.png", "new-panel.png", "new.png"]
    replaced = ib.replace_object(photo, hole, photo, checkpoint=edgeconnect_run)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "new.png")), replaced.result)


def test_bad_input(photo, hole, edgeconnect_run, cnn_run):
    small = photo[:40, :60]
    with pytest.raises(InpaintbenchError, match="reference is 60x40 and the hole's box 160x110"):
        ib.replace_object(photo, hole, small, checkpoint=edgeconnect_run)
    with pytest.raises(InpaintbenchError, match="CNN is not an EdgeConnect model"):
        ib.replace_object(photo, hole, photo, model="cnn-tiny", checkpoint=cnn_run)
    with pytest.raises(InpaintbenchError, match="edgeconnect is a trained model and no checkpoint"):
        ib.replace_object(photo, hole, photo)
    with pytest.warns(UserWarning, match="no hole"):
        same = ib.replace_object(photo, np.zeros(photo.shape[:2], bool), photo, checkpoint=edgeconnect_run)
    assert np.array_equal(same.result, photo)

