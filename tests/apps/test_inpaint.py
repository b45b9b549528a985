"""ib.inpaint and `inpaintbench inpaint`: any size, exact known pixels, guidance, folders and bad input."""

import warnings

import numpy as np
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench import InpaintbenchError
from inpaintbench.apps import inpaint_files
from inpaintbench.cli import main
from tests.fakes.images import png_claiming


def _save(array, path):
    Image.fromarray(array).save(path)
    return path


def _read(path):
    return np.asarray(Image.open(path))


def test_an_odd_sized_photo_keeps_its_size_and_every_known_byte(photo, hole, edgeconnect_run, tmp_path):
    """300 x 217 through EdgeConnect (multiples of 4 inside): the same size back, known pixels byte-identical."""
    result = ib.inpaint(photo, hole, model="edgeconnect-tiny", checkpoint=edgeconnect_run)
    assert result.shape == photo.shape == (217, 300, 3) and result.dtype == np.uint8
    assert np.array_equal(result[~hole], photo[~hole])
    assert not np.array_equal(result[hole], photo[hole])
    # the command writes the same array
    image, mask = _save(photo, tmp_path / "cat.png"), _save(hole.astype(np.uint8) * 255, tmp_path / "mask.png")
    assert main(["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(edgeconnect_run),
                 "--out", str(tmp_path / "out.png")]) == 0
    assert np.array_equal(_read(tmp_path / "out.png"), result)


def test_user_edges_change_pixels_inside_the_hole_only(photo, hole, edgeconnect_run, tmp_path):
    strokes = np.zeros(photo.shape[:2], np.uint8)
    strokes[85, 100:210] = 255  # across the face hole and beyond it
    strokes[60:110, 155] = 255
    plain = ib.inpaint(photo, hole, checkpoint=edgeconnect_run)
    guided = ib.inpaint(photo, hole, checkpoint=edgeconnect_run, guide=strokes)
    changed = np.any(guided != plain, axis=2)
    assert changed.any() and not changed[~hole].any()
    # black strokes on white are the same strokes
    inverted = ib.inpaint(photo, hole, checkpoint=edgeconnect_run, guide=255 - strokes)
    assert np.array_equal(inverted, guided)
    image, mask = _save(photo, tmp_path / "cat.png"), _save(hole.astype(np.uint8) * 255, tmp_path / "mask.png")
    edges = _save(strokes, tmp_path / "edges.png")
    assert main(["inpaint", str(image), "--mask", str(mask), "--model", "edgeconnect-tiny", "--checkpoint",
                 str(edgeconnect_run), "--edges", str(edges), "--out", str(tmp_path / "guided.png")]) == 0
    assert np.array_equal(_read(tmp_path / "guided.png"), guided)


def test_classical_models_run_without_weights_on_float_input(photo, hole):
    image = photo.astype(np.float64) / 255
    result = ib.inpaint(image, hole, model="mean-fill")
    assert result.dtype == np.float64 and np.array_equal(result[~hole], image[~hole])
    known_mean = image[~hole].mean(axis=0)
    np.testing.assert_allclose(result[hole][0], known_mean, atol=1e-6)


def test_fixed_size_models_need_resize_or_tiles(photo, hole, cnn_run):
    with pytest.raises(InpaintbenchError, match="32x32 images only.*--resize.*--tile"):
        ib.inpaint(photo, hole, checkpoint=cnn_run)
    for option in ({"resize": True}, {"tile": True}):
        result = ib.inpaint(photo, hole, checkpoint=cnn_run, **option)
        assert result.shape == photo.shape and np.array_equal(result[~hole], photo[~hole])


def test_a_folder_of_photos_with_a_folder_of_masks(photo, hole, tmp_path, capfd):
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        _save(np.roll(photo, 10 * i, axis=1), tmp_path / "photos" / f"{name}.jpg")
        _save(np.roll(hole, 5 * i, axis=0).astype(np.uint8) * 255, tmp_path / "masks" / f"{name}.png")
    written = inpaint_files(tmp_path / "photos", tmp_path / "masks", tmp_path / "out", model="mean-fill")
    assert [p.name for p in written] == ["a.png", "b.png", "c.png"]
    assert "inpaint" not in capfd.readouterr().err  # the bar heeds TQDM_DISABLE (set for the tests in conftest)
    for i, path in enumerate(written):
        source = _read(tmp_path / "photos" / f"{'abc'[i]}.jpg")
        known = ~np.roll(hole, 5 * i, axis=0)
        assert np.array_equal(_read(path)[known], source[known])
    (tmp_path / "file.png").write_bytes(b"kept")  # a folder's results never go to a file, which stays
    with pytest.raises(InpaintbenchError, match="is a file: the results of a folder of photos go into a folder"):
        inpaint_files(tmp_path / "photos", tmp_path / "masks", tmp_path / "file.png", model="mean-fill")
    assert (tmp_path / "file.png").read_bytes() == b"kept"
    with pytest.raises(InpaintbenchError, match="is one of the inputs: the result would overwrite it"):
        inpaint_files(tmp_path / "photos" / "a.jpg", tmp_path / "masks" / "a.png", tmp_path / "masks" / "a.png",
                      model="mean-fill")
    _save(photo, tmp_path / "photos" / "a.png")
    with pytest.raises(InpaintbenchError, match="photos a appear with two suffixes"):
        inpaint_files(tmp_path / "photos", tmp_path / "masks", tmp_path / "out3", model="mean-fill")
    (tmp_path / "photos" / "a.png").unlink()
    (tmp_path / "masks" / "c.png").unlink()
    with pytest.raises(InpaintbenchError, match="no mask for c"):
        inpaint_files(tmp_path / "photos", tmp_path / "masks", tmp_path / "out2", model="mean-fill")


def test_a_16_bit_grey_photo_keeps_its_known_pixels(photo, hole, tmp_path):
    grey = photo[..., 1]
    _save(grey.astype(np.uint16) * 257, tmp_path / "grey16.png")  # Pillow mode I;16
    result = ib.inpaint(tmp_path / "grey16.png", hole, model="telea")
    assert (result[~hole] == grey[~hole][:, None]).all()  # it was 255 wherever the value exceeded 1


def test_a_mask_without_a_hole_gives_the_input_back_with_a_warning(photo):
    with pytest.warns(UserWarning, match="no hole"):
        result = ib.inpaint(photo, np.zeros(photo.shape[:2], bool), model="biharmonic")
    assert np.array_equal(result, photo)


def test_a_mask_of_another_size(photo, hole):
    half = np.asarray(Image.fromarray(hole.astype(np.uint8) * 255).resize((150, 108), Image.NEAREST))
    with pytest.warns(UserWarning, match="resized to the image"):  # the same aspect ratio: a scaled preview
        result = ib.inpaint(photo, half, model="mean-fill")
    assert result.shape == photo.shape
    with pytest.raises(InpaintbenchError, match="must have the same size"):
        ib.inpaint(photo, np.ones((100, 100), bool), model="mean-fill")


def test_bad_files_and_models_are_one_line_errors(photo, hole, cnn_run, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    mask = _save(hole.astype(np.uint8) * 255, tmp_path / "mask.png")
    image = _save(photo, tmp_path / "cat.png")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20_000, 20_000))
    big = tmp_path / "big.png"  # 81 Mpx: Pillow opens it without a word, the project's 64-Mpx limit does not
    big.write_bytes(png_claiming(9_000, 9_000))
    out = str(tmp_path / "x.png")  # in the test's folder, should a case wrongly succeed
    folder = tmp_path / "folder.png"  # a folder with an image's name: IsADirectoryError once
    folder.mkdir()
    cases = [
        (["inpaint", str(text), "--mask", str(mask), "--model", "mean-fill", "--out", out],
         "is not an image file"),
        (["inpaint", str(image), "--mask", str(mask), "--model", "edgeconnect", "--out", out],
         "edgeconnect is a trained model and no checkpoint was given"),
        (["inpaint", str(image), "--mask", str(mask), "--model", "edgeconnect", "--checkpoint", str(cnn_run),
          "--out", out], "is a cnn-tiny checkpoint, not edgeconnect"),
        (["inpaint", str(image), "--mask", str(mask), "--model", "biharmonic", "--edges", str(mask),
          "--out", out], "--edges guides EdgeConnect; Biharmonic takes no guide"),
        (["inpaint", str(image), "--mask", str(tmp_path / "missing.png"), "--model", "mean-fill",
          "--out", out], "missing.png not found"),
        (["inpaint", str(bomb), "--mask", str(mask), "--model", "mean-fill", "--out", out],
         "bomb.png is refused: Image size (400000000 pixels) exceeds limit"),
        (["inpaint", str(image), "--mask", str(big), "--model", "mean-fill", "--out", out],
         "big.png is refused: 9000x9000 pixels exceeds the decompression-bomb limit of 64,000,000"),
        (["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(text), "--out", out],
         "notes.png is a file, not a checkpoint-store entry"),  # not "no checkpoint named notes.png in the store"
        (["inpaint", str(image), "--mask", str(mask), "--model", "mean-fill", "--out", str(folder)],
         "folder.png is a folder: the output is an image file"),
        (["inpaint", str(image), "--mask", str(mask), "--model", "mean-fill", "--resize", "--tile", "--out", out],
         "--resize and --tile are two ways to paint a fixed-size model: pass one of them"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_the_command_reports_warnings_in_one_line(photo, tmp_path, capsys):
    image = _save(photo, tmp_path / "cat.png")
    empty = _save(np.zeros(photo.shape[:2], np.uint8), tmp_path / "empty.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["inpaint", str(image), "--mask", str(empty), "--model", "mean-fill",
                     "--out", str(tmp_path / "same.png")]) == 0
    assert "warning: the mask has no hole" in capsys.readouterr().err
    assert np.array_equal(_read(tmp_path / "same.png"), photo)


def test_a_sketch_reaches_deepfill_v2s_sketch_channel(photo, hole, sketch_run, edgeconnect_run, tmp_path, capsys,
                                                       monkeypatch):
    from inpaintbench.models.deepfill.generator import _DeepFill

    seen = []
    real_forward = _DeepFill.forward
    monkeypatch.setattr(_DeepFill, "forward", lambda self, image, mask, guide=None: seen.append(guide) or
                        real_forward(self, image, mask, guide))
    strokes = np.zeros(photo.shape[:2], np.uint8)
    strokes[85, 100:210] = 255
    image, mask = _save(photo, tmp_path / "cat.png"), _save(hole.astype(np.uint8) * 255, tmp_path / "mask.png")
    sketch = _save(strokes, tmp_path / "sketch.png")
    assert main(["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(sketch_run), "--sketch", str(sketch),
                 "--out", str(tmp_path / "sketched.png")]) == 0
    sketched = _read(tmp_path / "sketched.png")
    assert sketched.shape == photo.shape and np.array_equal(sketched[~hole], photo[~hole])
    (guide,) = seen  # padded to 224 x 304 (multiples of 8) for the model, the strokes where they were drawn
    assert guide.shape == (1, 1, 224, 304) and np.array_equal(guide[0, 0, :217, :300].numpy() > 0.5, strokes > 0)
    small = _save(strokes[:100, :100], tmp_path / "small.png")  # another aspect ratio: refused, named as a sketch
    assert main(["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(sketch_run), "--sketch", str(small),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "error: the sketch is 100x100 and the image 300x217" in capsys.readouterr().err
    for checkpoint, option, message in ((sketch_run, "--edges", "--edges guides EdgeConnect"),
                                        (edgeconnect_run, "--sketch", "--sketch guides DeepFill v2")):
        assert main(["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(checkpoint), option,
                     str(sketch), "--out", str(tmp_path / "x.png")]) == 2
        assert message in capsys.readouterr().err


def test_a_mask_covering_everything_warns_and_still_gives_an_image(photo):
    with pytest.warns(UserWarning, match="the mask covers the whole image"):
        result = ib.inpaint(photo, np.ones(photo.shape[:2], bool), model="biharmonic")
    assert result.shape == photo.shape and (result == 128).all()  # 0.5 grey, as mean fill gives


@pytest.mark.parametrize("height, width", [(8, 8), (1, 200), (5, 3)])
def test_photos_of_a_few_pixels_are_painted_too(height, width, edgeconnect_run):
    # EdgeConnect's reflection pads at 1/4 scale raised on these; the network now sees them padded to 32 px
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    hole = np.zeros((height, width), bool)
    hole[height // 2, width // 2] = True
    result = ib.inpaint(photo, hole, model="edgeconnect-tiny", checkpoint=edgeconnect_run)
    assert result.shape == photo.shape and np.array_equal(result[~hole], photo[~hole])
