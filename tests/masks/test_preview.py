from PIL import Image

from inpaintbench.masks import preview_masks


def test_preview_writes_one_png_per_level(tmp_path):
    paths = preview_masks(["L1", "L3"], out=tmp_path, size=64, count=40)
    assert [p.name for p in paths] == ["L1.png", "L3.png"]
    with Image.open(paths[1]) as im:
        assert im.width > 400 and im.height > 300
