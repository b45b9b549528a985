import torch
from torch.utils.data import DataLoader

from inpaintbench.datasets import open_dataset


def _batches(ds, workers):
    return list(DataLoader(ds, batch_size=8, num_workers=workers, shuffle=False))


def test_loader_yields_images_and_masks(sample32):
    ds = open_dataset(sample32, "train", masks=["L1", "L3"], seed=3)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert 0.05 < item["mask"].mean() < 0.35


def test_masks_do_not_depend_on_workers(sample32):
    ds = open_dataset(sample32, "train", masks=["L2", "L3"], seed=1)
    one, two = _batches(ds, 0), _batches(ds, 2)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["image"], b["image"])


def test_epochs_draw_new_masks(sample32):
    ds = open_dataset(sample32, "train", masks=["L3"], seed=1)
    first = ds.draw_mask(0)
    ds.set_epoch(1)
    assert not torch.equal(first, ds.draw_mask(0))
