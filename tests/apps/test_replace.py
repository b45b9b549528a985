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


def _hole_psnr(result, truth, hole):
    diff = (result.astype(np.float64) - truth.astype(np.float64))[hole] / 255
    return 10 * np.log10(1 / max(float((diff ** 2).mean()), 1e-12))


@pytest.mark.slow
def test_borrowing_the_true_edges_beats_predicting_them(tmp_path):
    """On the sample dataset at 32x32 (640 training crops, 128 test crops of two held-out photos), with
    edgeconnect-tiny trained for 800 steps in modes 1 and 2: the hole PSNR of replace with the photo itself as the
    reference beats plain EdgeConnect (its predicted edges) and replace with an edgeless reference, on average
    over two square holes per test image. (Measured when written: +0.08 dB over plain and +0.13 dB over the
    edgeless reference, 95% intervals +-0.07, with one hole per image; on 2026-12-01 with two holes, one thread:
    13.54, 13.69 and 13.49 dB, so +0.14 and +0.20 dB. The edge is small at this budget; with two threads the
    sums differ and the margin was gone once, hence the pinned thread count.)"""
    from inpaintbench.datasets.loader import InpaintDataset
    from inpaintbench.datasets.sample import build_sample
    from inpaintbench.models.train import TrainConfig, train

    build_sample(tmp_path / "sample-32", size=32, seed=0)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in every run (and no oversubscription on a busy machine)
    try:
        model = ib.create_model("edgeconnect-tiny", phases=("edge+inpaint",), phase_steps=())
        # the first ladder's levels, on which the margins below were measured (the v2 ladder's holes are deeper)
        train(model, InpaintDataset(tmp_path / "sample-32", "train", masks=["L2-v1", "L3-v1"], seed=0),
              tmp_path / "run", TrainConfig(steps=800, batch_size=8), model_name="edgeconnect-tiny")
    finally:
        torch.set_num_threads(threads)
    model.eval()
    test = InpaintDataset(tmp_path / "sample-32", "test")
    images = test.images_at(range(len(test))).permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(0)
    scores = []
    for image in images:
        for _ in range(2):
            hole = np.zeros(image.shape[:2], bool)
            top, left = rng.integers(4, 16, size=2)
            hole[top:top + 12, left:left + 12] = True
            plain = ib.inpaint(image, hole, model=model)
            own = ib.replace_object(image, hole, image, model=model).result
            blank = ib.replace_object(image, hole, np.full_like(image, 128), model=model).result
            scores.append([_hole_psnr(r, image, hole) for r in (plain, own, blank)])
    plain, own, blank = np.mean(scores, axis=0)
    assert own > plain and own > blank, (plain, own, blank)
