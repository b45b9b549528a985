import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import draw_masks, import_masks, load_mask_set
from inpaintbench.masks.sets import area_bin
from tests.fakes.images import png_claiming


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def nvidia_like(tmp_path):
    """A zip in the layout of NVIDIA's test_mask.zip: 512x512 PNGs, numbered, holes white."""
    masks = np.concatenate([draw_masks(f"nvidia-bin{k}", 2, size=512, seed=k) for k in range(1, 7)])[:, 0]
    path = tmp_path / "test_mask.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, mask in enumerate(masks):
            archive.writestr(f"mask/testing_mask_dataset/{i:05d}.png", _png(mask * 255))
        archive.writestr("mask/README.txt", "not an image")
        archive.writestr("../evil.png", _png(masks[0] * 255))  # never used as a path
    return path, masks


def test_import_zip_resizes_measures_and_bins(nvidia_like, tmp_path):
    path, masks = nvidia_like
    folder = import_masks(path, holes="white", size=256, out=tmp_path / "set")
    loaded, manifest, info = load_mask_set(folder)
    assert loaded.shape == (13, 1, 256, 256) and set(np.unique(loaded)) <= {0, 1}
    assert info["polarity"] == "source holes are white" and info["resize"] == "nearest"
    assert manifest["source_name"].iloc[0] == "../evil.png" and not (tmp_path.parent / "evil.png").exists()
    assert "nvidia_bin" not in manifest  # ../evil.png is off NVIDIA's layout: no published labels
    real = manifest[manifest["source_name"].str.startswith("mask/")].reset_index(drop=True)
    assert list(real["area_bin"]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    np.testing.assert_allclose(real["area_ratio"], masks.reshape(12, -1).mean(1), atol=0.01)


def test_import_folder_with_black_holes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    mask = draw_masks("L2", 1, size=64)[0, 0]
    (src / "a.png").write_bytes(_png((1 - mask) * 255))  # holes are black in the source
    folder = import_masks(src, holes="black", out=tmp_path / "set")
    loaded, manifest, _ = load_mask_set(folder)
    assert np.array_equal(loaded[0, 0], mask)
    assert manifest["area_ratio"].item() == pytest.approx(mask.mean())


@pytest.mark.parametrize("options, message", [
    ({"threshold": 255}, "--threshold must be a grey level from 0 to 254, got 255"),
    ({"threshold": -5}, "--threshold must be a grey level from 0 to 254, got -5"),
    ({"size": 0}, "--size must be a positive number of pixels, got 0"),
])
def test_a_threshold_that_leaves_a_class_empty_or_a_size_of_nothing_is_refused(tmp_path, options, message):
    src = tmp_path / "src"
    src.mkdir()
    mask = draw_masks("L2", 1, size=64)[0, 0]
    (src / "a.png").write_bytes(_png(mask * 255))
    with pytest.raises(InpaintbenchError, match=message):
        import_masks(src, holes="white", out=tmp_path / "set", **options)
    assert not (tmp_path / "set").exists()
    folder = import_masks(src, holes="white", out=tmp_path / "set", threshold=254)  # the last level that splits
    assert np.array_equal(load_mask_set(folder)[0][0, 0], mask)


@pytest.mark.parametrize("setup, message", [
    ("missing", "does not exist"),
    ("empty", "holds no mask images"),
    ("corrupt", "not a readable image"),
    ("bomb", r"bomb\.png has 10000x10000 pixels; refused"),
    ("huge bomb", r"bomb\.png is not a readable image \(Image size \(400000000 pixels\) exceeds limit"),
    ("text", "neither a folder nor a zip"),
])
def test_bad_imports_fail_cleanly(tmp_path, setup, message):
    src = tmp_path / "src"
    if setup == "empty":
        src.mkdir()
    elif setup == "corrupt":
        src.mkdir()
        (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif setup.endswith("bomb"):
        src.mkdir()
        (src / "bomb.png").write_bytes(png_claiming(*(20_000, 20_000) if setup == "huge bomb" else (10_000, 10_000)))
    elif setup == "text":
        src = tmp_path / "notes.txt"
        src.write_text("hello")
    with pytest.raises(InpaintbenchError, match=message):
        import_masks(src, holes="white", out=tmp_path / "set")
    assert not (tmp_path / "set").exists() and not (tmp_path / "set.partial").exists()


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_more_mask_bytes_in_all_than_the_limit_are_refused_before_any_is_read(tmp_path, monkeypatch, kind):
    monkeypatch.setattr("inpaintbench.masks.sets.MAX_SET_BYTES", 1_000)  # the real limit is 2 GiB
    masks = draw_masks("L3", 4, size=64, seed=0)
    blobs = []
    for mask in masks:
        buf = io.BytesIO()
        Image.fromarray(mask[0].astype(np.uint8) * 255).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    assert sum(map(len, blobs)) > 1_000
    src = tmp_path / ("masks.zip" if kind == "zip" else "masks")
    if kind == "zip":
        with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive:
            for i, blob in enumerate(blobs):
                archive.writestr(f"{i:05d}.png", blob)
    else:
        src.mkdir()
        for i, blob in enumerate(blobs):
            (src / f"{i:05d}.png").write_bytes(blob)
    with pytest.raises(InpaintbenchError, match=r"bytes of mask files in all, more than 0 GiB; refused as a possible"):
        import_masks(src, holes="white", out=tmp_path / "set")
    assert not (tmp_path / "set").exists()


def test_polarity_must_be_stated(tmp_path):
    with pytest.raises(InpaintbenchError, match="polarity"):
        import_masks(tmp_path, holes="grey")


def test_area_bins():
    assert [area_bin(a) for a in (0.005, 0.05, 0.1, 0.15, 0.55, 0.6, 0.7)] == [0, 1, 1, 2, 6, 6, 0]
    assert pd.api.types.is_integer_dtype(pd.Series([area_bin(0.3)]))


def test_nvidia_layout_gets_the_published_bin_and_border_label_of_each_file(tmp_path):
    src = tmp_path / "testing_mask_dataset"
    src.mkdir()
    numbers = [0, 999, 1000, 1999, 2000, 5500, 10999, 11999]
    masks = draw_masks("nvidia-bin1", len(numbers), size=64, seed=0)[:, 0]
    for number, mask in zip(numbers, masks, strict=True):
        (src / f"{number:05d}.png").write_bytes(_png(mask * 255))
    manifest = load_mask_set(import_masks(src, holes="white", out=tmp_path / "set"))[1]
    assert list(manifest["nvidia_bin"]) == [1, 1, 1, 1, 2, 3, 6, 6]
    assert list(manifest["nvidia_border"]) == ["with border", "with border", "no border", "no border",
                                               "with border", "no border", "with border", "no border"]
    assert (manifest["area_bin"] == 1).all()  # the measured bin, here that of the nvidia-bin1 masks


def test_one_published_nvidia_bin_and_border_half_can_be_imported_alone(tmp_path):
    src = tmp_path / "testing_mask_dataset"
    src.mkdir()
    numbers = [0, 999, 1000, 1999, 2000, 5500, 10999, 11999]
    for number, mask in zip(numbers, draw_masks("nvidia-bin1", len(numbers), size=64, seed=0)[:, 0], strict=True):
        (src / f"{number:05d}.png").write_bytes(_png(mask * 255))
    manifest = load_mask_set(import_masks(src, holes="white", out=tmp_path / "b1no", nvidia_bin=1,
                                          nvidia_border="no"))[1]
    assert list(manifest["source_name"]) == ["01000.png", "01999.png"] and list(manifest["index"]) == [0, 1]
    assert len(load_mask_set(import_masks(src, holes="white", out=tmp_path / "b6", nvidia_bin=6))[1]) == 2
    with pytest.raises(InpaintbenchError, match="no file of NVIDIA's test-mask layout"):
        import_masks(src, holes="white", out=tmp_path / "none", nvidia_bin=4)
    assert not (tmp_path / "none").exists()
