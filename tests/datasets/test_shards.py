import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets.shards import (
    Rejected,
    Sample,
    decode_image,
    encode_image,
    read_info,
    read_split,
    tar_end,
    tar_member,
    write_dataset,
)


def _candidates(n):
    return {"train": list(range(n)), "test": list(range(n, n + 3))}


def _make(i):
    if i == 4:
        return Rejected(key=f"toy-{i:03d}", reason="too small")
    rng = np.random.default_rng(i)
    return Sample(key=f"toy-{i:03d}", image=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), label=i % 2,
                  meta={"license": "CC0", "label_name": ["even", "odd"][i % 2]})


def _build(out, **kw):
    return write_dataset(out, "toy", _candidates(10), _make, classes=["even", "odd"], build_params={"n": 10},
                         card={"title": "Toy", "description": "toy data"}, image_format="png",
                         samples_per_shard=4, **kw)


def test_layout_manifest_and_plain_webdataset_reading(tmp_path):
    info = _build(tmp_path)
    assert sorted(p.name for p in (tmp_path / "train").glob("*.tar")) == [
        "train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert not list(tmp_path.rglob("*.partial"))
    assert info["totals"] == {"train": 9, "test": 3}
    assert info["rejected"] == {"too small": 1}
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    assert len(manifest) == 13 and (manifest["status"] == "rejected").sum() == 1
    assert manifest.loc[manifest["status"] == "rejected", "reason"].item() == "too small"
    samples = list(wds.WebDataset(str(tmp_path / "train" / "train-000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["toy-000", "toy-001", "toy-002", "toy-003"]
    meta = json.loads(samples[1]["json"])
    assert meta["label"] == 1 and meta["source"] == "toy" and meta["split"] == "train" and meta["width"] == 8
    assert int(samples[1]["cls"]) == 1
    np.testing.assert_array_equal(decode_image(samples[1]["png"]), _make(1).image)  # lossless ground truth
    assert "# Toy" in (tmp_path / "README.md").read_text()


def test_resume_rebuilds_missing_shards_to_identical_bytes(tmp_path):
    _build(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*.tar")}
    (tmp_path / "train" / "train-000001.tar").unlink()  # a crash after the ledger rename, before the tar's
    (tmp_path / "train" / "train-000002.tar.partial").write_bytes(b"half a shard")
    _build(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*.tar")}
    assert after == before


def _tarfile_bytes(members):
    """The archive that Python's tarfile writes for ``members`` with the shards' fixed fields."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "", ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("count", [0, 1, 7, 40])
def test_tar_members_are_the_bytes_tarfile_writes(count):
    rng = np.random.default_rng(count)
    # names up to 100 bytes take the template; longer ones (a prefix) go through tarfile; sizes around blocks
    names = ["a", "celeba-000001.jpg", "x" * 96 + ".cls", "k" * 120 + "/" + "n" * 30 + ".json"]
    sizes = [0, 1, 511, 512, 513, 29_000, 10_240]
    members = [(names[i % len(names)], rng.integers(0, 256, sizes[i % len(sizes)], np.uint8).tobytes())
               for i in range(count)]
    ours = b"".join(tar_member(name, data) for name, data in members)
    assert ours + tar_end(len(ours)) == _tarfile_bytes(members)


def test_shards_read_back_with_tarfile(tmp_path):
    _build(tmp_path)
    with tarfile.open(tmp_path / "train" / "train-000000.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members[:3]] == ["toy-000.png", "toy-000.json", "toy-000.cls"]
        assert all(m.isreg() and m.mode == 0o644 and m.mtime == 0 and m.uid == 0 for m in members)
        assert tar.extractfile(members[2]).read() == b"0"


def test_other_build_parameters_refuse_existing_folder(tmp_path):
    _build(tmp_path)
    with pytest.raises(InpaintbenchError, match="other parameters"):
        write_dataset(tmp_path, "toy", _candidates(10), _make, classes=["even", "odd"], build_params={"n": 11},
                      card={"title": "Toy", "description": ""})


def test_keys_with_dots_are_refused(tmp_path):
    def bad(i):
        return Sample(key="toy-1.5", image=np.zeros((4, 4, 3), np.uint8), label=0)

    with pytest.raises(ValueError, match="no dots"):
        write_dataset(tmp_path, "toy", {"train": [0]}, bad, classes=["c"], build_params={},
                      card={"title": "t", "description": ""})
    assert not list(tmp_path.rglob("*.partial"))  # the tar was open when the key was refused: its partial is gone


def test_a_sample_that_fails_mid_shard_leaves_complete_shards_and_no_partial_file(tmp_path):
    def failing(i):
        if i == 6:
            raise RuntimeError("source went away")
        return _make(i)

    with pytest.raises(RuntimeError, match="went away"):
        write_dataset(tmp_path, "toy", _candidates(10), failing, classes=["even", "odd"], build_params={"n": 10},
                      card={"title": "Toy", "description": ""}, image_format="png", samples_per_shard=4)
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [".build-started.json", "train-000000.parquet", "train-000000.tar"]
    # the interrupted build's parameters are on record: resuming it with others would mix two kinds of shards
    with pytest.raises(InpaintbenchError, match="other parameters"):
        write_dataset(tmp_path, "toy", _candidates(10), _make, classes=["even", "odd"], build_params={"n": 11},
                      card={"title": "Toy", "description": ""}, image_format="png", samples_per_shard=4)
    _build(tmp_path)  # the same build without the failure completes and keeps the first shard
    assert len(read_split(tmp_path, "train")) == 9
    assert not (tmp_path / ".build-started.json").exists()  # dataset.json holds the parameters now


def test_read_split_of_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(InpaintbenchError, match="no dataset"):
        read_split(tmp_path / "nope", "train")


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_encoding_a_pillow_image_gives_the_bytes_of_its_array(fmt):
    # Builders that resize with Pillow encode the image itself; a shard must not change with that shortcut.
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert encode_image(Image.fromarray(pixels), fmt) == encode_image(pixels, fmt)
    with pytest.raises(ValueError, match="RGB"):
        encode_image(Image.fromarray(pixels).convert("L"), fmt)


def test_an_unknown_image_format_is_refused_before_anything_is_written(tmp_path):
    # the builders encode in make_sample, where an image error means a rejected row: the format must fail first
    with pytest.raises(InpaintbenchError, match="unknown image format 'webp'"):
        write_dataset(tmp_path / "out", "toy", _candidates(3), _make, classes=["even", "odd"], build_params={},
                      card={"title": "t", "description": ""}, image_format="webp")
    assert not (tmp_path / "out").exists()


def test_a_damaged_dataset_json_is_a_one_line_error_naming_the_file(tmp_path):
    (tmp_path / "dataset.json").write_text('{"source": "toy", ')  # cut mid-write by another tool
    with pytest.raises(InpaintbenchError, match=r"dataset.json is damaged \(JSONDecodeError: .*\); rebuild"):
        read_info(tmp_path)
