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
