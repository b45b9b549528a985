"""The loader: samples of a shard dataset as (image, mask) tensors, masks drawn on the fly.

Mask ``i`` of epoch ``e`` is drawn from a generator seeded with (seed, epoch, index), so batches are the
same whatever the number of DataLoader workers, and a resumed training run sees the same masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._registry import InpaintbenchError
from ..masks.generators import generate
from ..masks.levels import resolve_spec
from ..masks.spec import MaskSpec
from .shards import read_split


class InpaintDataset(Dataset):
    """A split of a shard dataset held in memory, as a torch Dataset of (image, mask) dicts.

    Items hold ``image`` (3 x H x W float in [0, 1]), ``mask`` (1 x H x W float, 1 = hole), ``label``
    and ``index``. The v0 loader decodes the whole split at construction (small datasets).

    Args:
        path: dataset folder.
        split: ``train``, ``val`` or ``test``.
        masks: level or preset names (or MaskSpecs) to draw from, uniformly; None gives no mask.
        seed: seed of the mask draws.

    """

    def __init__(self, path: str | Path, split: str, masks: Sequence[str | MaskSpec] | None = None,
                 seed: int = 0) -> None:
        samples = read_split(path, split)
        self.keys = [s["key"] for s in samples]
        self.labels = torch.tensor([s["label"] for s in samples])
        sizes = {s["image"].shape for s in samples}
        if len(sizes) != 1:
            raise InpaintbenchError(f"split {split!r} of {path} mixes image sizes {sorted(sizes)}")
        self.images = torch.from_numpy(np.stack([s["image"] for s in samples])).permute(0, 3, 1, 2).contiguous()
        self.size = self.images.shape[-1]
        self.specs = [resolve_spec(m).with_size(self.size) for m in masks or []]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose masks are drawn (call before iterating each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keys)

    def draw_mask(self, index: int, epoch: int | None = None) -> torch.Tensor:
        """The mask of sample ``index`` in ``epoch`` (default: the current epoch), 1 x H x W float."""
        if not self.specs:
            return torch.zeros(1, self.size, self.size)
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])
        spec = self.specs[int(rng.integers(len(self.specs)))]
        return torch.from_numpy(generate(spec, rng)).float()[None]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.images[index].float() / 255.0, "mask": self.draw_mask(index),
                "label": int(self.labels[index]), "index": index}


def open_dataset(path: str | Path, split: str, masks: Sequence[str | MaskSpec] | None = None,
                 seed: int = 0) -> InpaintDataset:
    """Open a split of a shard dataset for training or evaluation (see InpaintDataset).

    Example:
        >>> ds = open_dataset("datasets/sample-64", "train", masks=["L1", "L2"])  # doctest: +SKIP
        >>> batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2)))  # doctest: +SKIP

    """
    return InpaintDataset(path, split, masks=masks, seed=seed)
