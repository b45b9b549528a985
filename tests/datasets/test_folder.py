"""The folder builder: a folder of images (and an optional list) into a one-split shard dataset."""

import numpy as np
import pytest
from PIL import Image

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets import build_dataset, read_info
from inpaintbench.datasets.loader import InpaintDataset
from tests.fakes.images import png_claiming


def _folder(tmp_path, sizes=((80, 60), (64, 64), (30, 50))):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "sub" / f"{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def test_all_images_sorted_centre_cropped_and_resized(tmp_path):
    root = _folder(tmp_path)
    info = build_dataset("folder", tmp_path / "out", source_dir=root, size=32)
    assert info["totals"]["test"] == 3  # three images; the broken jpg is a rejected row with its reason
    data = InpaintDataset(tmp_path / "out", "test")
    assert data.images.shape == (3, 3, 32, 32)
    manifest = __import__("pandas").read_parquet(tmp_path / "out" / "manifest.parquet")
    rejected = manifest[manifest["status"] != "ok"]
    assert len(rejected) == 1 and "unreadable image" in rejected["reason"].iloc[0]
    assert read_info(tmp_path / "out")["build_params"]["resize"].startswith("centre square crop")


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    import skimage.data

    # Pillow opens it in mode I;16, and its convert("RGB") clipped every value above 255: a mostly white photo
    camera = skimage.data.camera()[:64, :64]
    (tmp_path / "grey").mkdir()
    Image.fromarray(camera.astype(np.uint16) * 257).save(tmp_path / "grey" / "camera.png")
    build_dataset("folder", tmp_path / "out", source_dir=tmp_path / "grey", size=64)
    stored = InpaintDataset(tmp_path / "out", "test").images[0].numpy()
    assert (stored == camera).all()  # grey in all three channels, at its original values


@pytest.mark.parametrize("width, height", [(10_000, 10_000), (20_000, 20_000)])
def test_a_decompression_bomb_is_a_rejected_row_and_the_build_goes_on(tmp_path, width, height):
    # 100 Mpx opens in Pillow and meets our 64 Mpx guard; 400 Mpx makes Pillow itself raise DecompressionBombError
    root = _folder(tmp_path)
    (root / "bomb.png").write_bytes(png_claiming(width, height))
    info = build_dataset("folder", tmp_path / "out", source_dir=root, size=32)
    assert info["totals"]["test"] == 3
    manifest = __import__("pandas").read_parquet(tmp_path / "out" / "manifest.parquet")
    bomb = manifest[manifest["file"] == "bomb.png"]
    assert bomb["status"].tolist() == ["rejected"] and "decompression bomb guard" in bomb["reason"].iloc[0]


def test_a_list_file_picks_and_orders_the_images(tmp_path):
    root = _folder(tmp_path)
    (tmp_path / "val.flist").write_text("sub/2.png\n/some/other/root/0.png\n")  # a bare name from another root too
    build_dataset("folder", tmp_path / "out", source_dir=root, size=16, list_file=tmp_path / "val.flist")
    data = InpaintDataset(tmp_path / "out", "test")
    assert len(data) == 2
    (tmp_path / "bad.flist").write_text("../../etc/passwd\n")  # outside the folder: matched by name, not opened
    with pytest.raises(InpaintbenchError, match="'../../etc/passwd', which is not in"):
        build_dataset("folder", tmp_path / "out2", source_dir=root, list_file=tmp_path / "bad.flist")
    (tmp_path / "gone.flist").write_text("nope.png\n")
    with pytest.raises(InpaintbenchError, match="'nope.png', which is not in"):
        build_dataset("folder", tmp_path / "out3", source_dir=root, list_file=tmp_path / "gone.flist")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InpaintbenchError, match="no images"):
        build_dataset("folder", tmp_path / "out", source_dir=tmp_path / "empty")
    with pytest.raises(InpaintbenchError, match="is not a folder"):
        build_dataset("folder", tmp_path / "out", source_dir=tmp_path / "missing")
