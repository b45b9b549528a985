"""Places365-Standard from tars and file lists in the official layout."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import skimage.data
import webdataset as wds
from PIL import Image

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets import build_dataset, open_dataset
from tests.fakes.images import png_claiming

# the real first lines, a nested category, and the real file's missing final newline
CATEGORIES = "/a/airfield 0\n/a/airplane_cabin 1\n/a/apartment_building/outdoor 2"
NAMES = ["a/airfield", "a/airplane_cabin", "a/apartment_building/outdoor"]
PER_CLASS_TRAIN, PER_CLASS_VAL = 6, 2


def _jpeg(i):
    photo = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket()][i % 3]
    buf = io.BytesIO()
    y, x = 4 * (i % 16), 3 * (i % 16)
    Image.fromarray(photo[y:y + 256, x:x + 256]).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def places_source(tmp_path):
    src = tmp_path / "places"
    src.mkdir()
    train_list, val_list = [], []
    with tarfile.open(src / "train_256_places365standard.tar", "w") as tar:
        for label, name in enumerate(NAMES):
            for k in range(1, PER_CLASS_TRAIN + 1):
                path = f"/{name}/{k:08d}.jpg"
                train_list.append(f"{path} {label}")
                if not (label == 1 and k == 6):  # listed but missing from the tar
                    data = b"\xff\xd8 broken" if (label == 2 and k == 3) else _jpeg(label * 10 + k)
                    _add(tar, f"data_256{path}", data)
        _add(tar, "../evil.jpg", _jpeg(0))  # never read: not in the list, and names are never paths
        _add(tar, "/etc/passwd", b"root")
    with tarfile.open(src / "val_256.tar", "w") as tar:
        for i in range(1, 3 * PER_CLASS_VAL + 1):
            val_list.append(f"Places365_val_{i:08d}.jpg {(i - 1) % 3}")
            _add(tar, f"val_256/Places365_val_{i:08d}.jpg", _jpeg(50 + i))
    with tarfile.open(src / "filelist_places365-standard.tar", "w") as tar:
        _add(tar, "categories_places365.txt", CATEGORIES.encode())
        _add(tar, "places365_train_standard.txt", ("\n".join(train_list) + "\n").encode())
        _add(tar, "places365_val.txt", ("\n".join(val_list) + "\n").encode())
    return src


def test_build_with_official_splits(places_source, tmp_path):
    info = build_dataset("places2", tmp_path / "out", source_dir=places_source, size=64, val_per_class=2)
    # 18 listed, 1 missing, 1 corrupt; 2 per class held out as val; the official val set is the test split
    assert info["totals"]["test"] == 6 and info["totals"]["train"] + info["totals"]["val"] == 16
    assert info["classes"] == ["/a/airfield", "/a/airplane_cabin", "/a/apartment_building/outdoor"]
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert (manifest[manifest["split"] == "val"].groupby("label_name").size() == 2).all()  # candidates per class
    reasons = set(manifest.loc[manifest["status"] == "rejected", "reason"])
    assert "listed in the file list but missing from the archive" in reasons
    assert any(r.startswith("unreadable image") for r in reasons)
    test = list(wds.WebDataset(str(tmp_path / "out" / "test" / "test-000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in test][:2] == ["places2-Places365_val_00000001", "places2-Places365_val_00000002"]
    meta = json.loads(test[2]["json"])
    assert meta["label"] == 2 and meta["label_name"] == "/a/apartment_building/outdoor"
    assert meta["original_size"] == [256, 256]
    assert open_dataset(tmp_path / "out", "train").images.shape[1:] == (3, 64, 64)
    keys = set(manifest["key"])
    assert "places2-a_apartment_building_outdoor_00000001" in keys
    assert not any("evil" in k or "passwd" in k for k in keys)


def test_category_subset_and_balanced_per_class(places_source, tmp_path):
    info = build_dataset("places2", tmp_path / "out", source_dir=places_source, size=32, val_per_class=1,
                         per_class=3, categories="a/airfield,/a/apartment_building/outdoor")
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    train = manifest[manifest["split"] == "train"]
    # three candidates per kept category (a rejected one is recorded with its reason, not replaced)
    assert train.groupby("label_name").size().to_dict() == {"/a/airfield": 3, "/a/apartment_building/outdoor": 3}
    assert info["counts"]["test"] == {"/a/airfield": 2, "/a/apartment_building/outdoor": 2}
    again = build_dataset("places2", tmp_path / "again", source_dir=places_source, size=32, val_per_class=1,
                          per_class=3, categories="a/airfield,/a/apartment_building/outdoor")
    assert again == info  # deterministic choice
    a = open_dataset(tmp_path / "out", "train").images
    b = open_dataset(tmp_path / "again", "train").images
    assert np.array_equal(a.numpy(), b.numpy())


def test_a_file_list_declaring_too_many_bytes_is_refused(places_source, tmp_path, monkeypatch):
    monkeypatch.setattr("inpaintbench.datasets.places2.MAX_LIST_BYTES", 10)  # the real limit is 1 GiB
    with pytest.raises(InpaintbenchError, match=r"categories_places365\.txt declares \d+ bytes; refused as a "
                                                r"possible decompression bomb"):
        build_dataset("places2", tmp_path / "out", source_dir=places_source, size=32)
    assert not (tmp_path / "out").exists()


def test_loose_lists_and_bad_inputs(places_source, tmp_path):
    with tarfile.open(places_source / "filelist_places365-standard.tar") as tar:
        tar.extractall(places_source, filter="data")
    (places_source / "filelist_places365-standard.tar").unlink()
    info = build_dataset("places2", tmp_path / "out", source_dir=places_source, size=32, val_per_class=2)
    assert info["totals"]["test"] == 6
    with pytest.raises(InpaintbenchError, match="unknown Places365 categories: /z/zoo"):
        build_dataset("places2", tmp_path / "x", source_dir=places_source, categories="z/zoo")
    data = (places_source / "val_256.tar").read_bytes()
    (places_source / "val_256.tar").write_bytes(data[:700])
    with pytest.raises(InpaintbenchError, match="not a readable tar"):
        build_dataset("places2", tmp_path / "y", source_dir=places_source)
    (places_source / "places365_val.txt").unlink()
    with pytest.raises(InpaintbenchError, match="file lists not found"):
        build_dataset("places2", tmp_path / "z", source_dir=places_source)


def test_two_workers_read_the_tars_safely(places_source, tmp_path):
    build_dataset("places2", tmp_path / "one", source_dir=places_source, size=32, val_per_class=2, workers=1)
    build_dataset("places2", tmp_path / "two", source_dir=places_source, size=32, val_per_class=2, workers=2)
    for split in ("train", "val", "test"):
        one = (tmp_path / "one" / split / f"{split}-000000.tar").read_bytes()
        assert one == (tmp_path / "two" / split / f"{split}-000000.tar").read_bytes()


def test_images_at_the_output_size_are_stored_without_re_encoding(places_source, tmp_path):
    build_dataset("places2", tmp_path / "same", source_dir=places_source, size=256, val_per_class=2)
    build_dataset("places2", tmp_path / "smaller", source_dir=places_source, size=128, val_per_class=2)
    with tarfile.open(places_source / "val_256.tar") as tar:
        original = tar.extractfile("val_256/Places365_val_00000001.jpg").read()
    for folder, same in (("same", True), ("smaller", False)):
        first = next(iter(wds.WebDataset(str(tmp_path / folder / "test" / "test-000000.tar"), shardshuffle=False)))
        assert (first["jpg"] == original) is same
        if same:
            assert json.loads(first["json"])["sha256"] == hashlib.sha256(original).hexdigest()


def test_cut_or_garbled_jpegs_at_the_output_size_are_rejected(places_source, tmp_path):
    # these are stored without re-encoding, so only the check decode stands between them and the shards
    good = _jpeg(7)
    damaged = {"00000001": good[:len(good) // 2],  # cut half-way through the entropy-coded data
               "00000002": good[:900] + bytes(b ^ 0x55 for b in good[900:2000]) + good[2000:],  # garbled stream
               "00000003": good,
               "00000004": png_claiming(20_000, 20_000)}  # Pillow's own DecompressionBombError
    source = tmp_path / "damaged"
    source.mkdir()
    with tarfile.open(source / "train_256_places365standard.tar", "w") as tar:
        for name, data in damaged.items():
            _add(tar, f"data_256/a/airfield/{name}.jpg", data)
    tarfile.open(source / "val_256.tar", "w").close()
    (source / "categories_places365.txt").write_text("/a/airfield 0")
    (source / "places365_train_standard.txt").write_text("".join(f"/a/airfield/{n}.jpg 0\n" for n in damaged))
    (source / "places365_val.txt").write_text("")
    build_dataset("places2", tmp_path / "out", source_dir=source, size=256, val_per_class=0)
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet").set_index("key")
    reasons = manifest["reason"].to_dict()
    assert reasons["places2-a_airfield_00000001"].startswith("unreadable image: image file is truncated")
    assert reasons["places2-a_airfield_00000002"].startswith("unreadable image: broken data stream")
    assert manifest.loc["places2-a_airfield_00000003", "status"] == "ok"
    assert reasons["places2-a_airfield_00000004"].startswith("decompression bomb guard: Image size (400000000")


def test_a_val_share_that_empties_a_category_is_an_error_and_writes_nothing(places_source, tmp_path):
    from click.testing import CliRunner

    from inpaintbench.cli import cli

    out = tmp_path / "out"
    # PER_CLASS_TRAIN listed training images per category and the default share of 10: nothing would be left
    result = CliRunner().invoke(cli, ["data", "build", "places2", "--source", str(places_source), "--out", str(out),
                                      "--size", "32"])
    assert result.exit_code != 0
    message = str(result.exception)  # `inpaintbench` prints it as one line and exits 1 (cli.run)
    assert "val_per_class=10" in message and "no training image" in message and "\n" not in message
    assert f"--val-per-class {PER_CLASS_TRAIN - 1} or less" in message
    assert not out.exists()
    result = CliRunner().invoke(cli, ["data", "build", "places2", "--source", str(places_source), "--out", str(out),
                                      "--size", "32", "--val-per-class", str(PER_CLASS_TRAIN - 1)])
    assert result.exit_code == 0, result.output
    manifest = pd.read_parquet(out / "manifest.parquet")
    ok = manifest[manifest["status"] == "ok"]
    assert ok[ok["split"] == "train"]["label"].nunique() >= 2  # categories keep training images
