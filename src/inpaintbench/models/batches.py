"""The Trainer's batches: the seeded stream of (epoch, index) positions and the DataLoader that draws them.

The data order is a function of (seed, step): batch ``s`` holds positions ``s*B .. s*B+B-1`` of the stream of
per-epoch permutations, and each sample's mask is drawn from (seed, epoch, index), so a resumed run sees the
batches of an uninterrupted one. Under DDP each process takes a disjoint part of every batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..datasets.loader import InpaintDataset

if TYPE_CHECKING:
    from .train import TrainConfig


class StepSampler(Sampler):
    """Yields batches (lists of (epoch, index)) for steps ``start .. stop-1`` of the seeded stream.

    Under DDP each process gets every ``world_size``-th position of the global batch, starting at its rank.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perms: dict[int, np.ndarray] = {}
        for step in range(self.start, self.stop):
            batch = []
            for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
                epoch = pos // self.n
                if epoch not in perms:
                    perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
                batch.append((epoch, int(perms[epoch][pos % self.n])))
            yield batch[self.rank::self.world_size]  # each DDP process takes a disjoint part of the batch

    def __len__(self) -> int:
        return self.stop - self.start


class EpochIndexed(torch.utils.data.Dataset):
    """Adapts InpaintDataset to (epoch, index) keys so masks follow the epoch of each position.

    ``extra`` (a model's :meth:`~.base.InpaintModel.sample_inputs`) runs here, in the DataLoader workers.
    """

    def __init__(self, dataset: InpaintDataset, extra: Any = None) -> None:
        self.dataset, self.extra = dataset, extra

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        item = {"image": self.dataset.image(index).float() / 255.0, "mask": self.dataset.draw_mask(index, epoch)}
        if self.extra is not None:
            item.update(self.extra(item["image"], item["mask"]))
        return item


def loader_workers(config: TrainConfig, device: torch.device) -> int:
    """DataLoader workers: ``config.workers``, or for -1 (auto) one per spare core on CUDA (at most 8), 0 on CPU.

    On a CPU-only run the workers would compete with the training step for the same cores.
    """
    if config.workers >= 0:
        return config.workers
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1))


PREFETCH = 4  # batches each worker holds ready


def make_loader(dataset: InpaintDataset, config: TrainConfig, device: torch.device, start: int, rank: int = 0,
                world: int = 1, extra: Any = None) -> DataLoader:
    """The Trainer's DataLoader for steps ``start .. config.steps - 1``.

    Masks (and a model's ``extra`` per-sample inputs) are computed in the workers; on CUDA the batches come in
    pinned memory with 4 batches prefetched per worker, so the non-blocking host-to-device copies overlap the step.
    """
    workers = loader_workers(config, device)
    options = {"prefetch_factor": PREFETCH, "persistent_workers": True} if workers else {}
    return DataLoader(EpochIndexed(dataset, extra), num_workers=workers, pin_memory=device.type == "cuda",
                      batch_sampler=StepSampler(len(dataset), config.batch_size, config.seed, start, config.steps,
                                                 rank, world), **options)
