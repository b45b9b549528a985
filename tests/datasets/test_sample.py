import json

import pandas as pd

from inpaintbench.datasets.sample import PHOTOS
from inpaintbench.datasets.shards import read_info, read_split


def test_sample_splits_by_photo_and_sizes(sample32):
    info = read_info(sample32)
    assert info["totals"] == {"train": 60, "val": 4, "test": 16}
    manifest = pd.read_parquet(sample32 / "manifest.parquet")
    photos_per_split = manifest.groupby("split")["label_name"].agg(set)
    # no photo in two splits
    assert not (photos_per_split["train"] & photos_per_split["test"])
    assert not (photos_per_split["train"] & photos_per_split["val"])
    assert not (photos_per_split["val"] & photos_per_split["test"])
    samples = read_split(sample32, "test")
    assert all(s["image"].shape == (32, 32, 3) for s in samples)
    assert {s["meta"]["label_name"] for s in samples} == {n for n, p in PHOTOS.items() if p[2] == "test"}
    assert all(s["meta"]["license"] for s in samples)
    # real photo content, not a constant image
    assert min(s["image"].std() for s in samples) > 1.0
    assert json.loads((sample32 / "dataset.json").read_text())["build_params"]["size"] == 32


def test_a_folder_of_other_files_is_refused_and_left_as_it_was(tmp_path, capsys):
    from inpaintbench.cli import main

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("my notes")  # before, the dataset card replaced it
    assert main(["data", "build", "sample", "--out", str(tmp_path / "notes"), "--size", "16"]) == 2
    assert "notes is a folder of other files (README.md), not a dataset" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["README.md"]
    assert (tmp_path / "notes" / "README.md").read_text() == "my notes"
    (tmp_path / "empty").mkdir()
    assert main(["data", "build", "sample", "--out", str(tmp_path / "empty"), "--size", "16"]) == 0
    assert main(["data", "build", "sample", "--out", str(tmp_path / "empty"), "--size", "16"]) == 0  # built: kept
