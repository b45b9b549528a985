"""The streaming reader: a split of a shard dataset as an IterableDataset of (image, mask) samples.

``ShardStream`` (what ``open_dataset`` returns) streams the webdataset shards, reads and decodes only the
samples of its own (DDP rank, DataLoader worker) part, resizes on the fly and filters classes; memory does not
grow with the dataset. It shares the sample format, the integrity checks and the mask draws of
:mod:`.loader`'s map-style ``InpaintDataset``: mask ``i`` of epoch ``e`` comes from (seed, epoch, index),
whatever the number of workers or ranks.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .._registry import InpaintbenchError
from ..masks.spec import MaskSpec
from .loader import Entry, check_digest, decode_pixels, draw_mask, mask_sources, split_table
from .shards import read_info, shard_paths

DEFAULT_SHUFFLE_BUFFER = 1000  # samples held by the shuffle buffer when ``shuffle=True``
IMAGE_MEMBERS = ("jpg", "png")


def distributed_rank() -> tuple[int, int]:
    """(rank, world size): from torch.distributed when initialised, else env RANK / WORLD_SIZE, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def partition(entries: Sequence[Entry], parts: int, part: int, rng: np.random.Generator | None = None) -> list[Entry]:
    """Part ``part`` of ``parts`` disjoint parts of ``entries`` whose union is ``entries``.

    Whole shards when there are at least ``parts`` shards (shard ``k`` of the list, in its order, goes to
    part ``k % parts``), else single samples (sample ``j`` goes to part ``j % parts``, or to part
    ``rng.permutation(n)[j] % parts`` when an ``rng`` is given, so shuffled epochs also mix the parts).
    The order of ``entries`` is kept inside a part.
    """
    if parts == 1:
        return list(entries)
    shards = list(dict.fromkeys(e.shard for e in entries))
    if len(shards) >= parts:
        mine = set(shards[part::parts])
        return [e for e in entries if e.shard in mine]
    if rng is None:
        return list(entries[part::parts])
    keep = rng.permutation(len(entries)) % parts == part
    return [e for e, k in zip(entries, keep, strict=True) if k]


class ShardStream(IterableDataset):
    """A split of a shard dataset streamed from its webdataset shards, as (image, mask) dicts.

    Items hold ``image`` (3 x H x W float32 in [0, 1]), ``mask`` (1 x H x W float, 1 = hole; zeros when
    ``masks`` is None), ``label`` (int), ``key`` (str) and ``index`` (the position of the sample in the
    split, in shard order; class filtering does not renumber, so a sample keeps its index and its masks).

    **Partitioning.** Every (DDP rank, DataLoader worker) slot reads a disjoint part of the split and the
    parts together are the whole split (after class filtering), so no sample is seen twice in an epoch.
    The split is cut in two levels with ``partition``: first across ranks, then the rank's part across
    its workers. At each level the cut is by whole shards when there are at least as many shards as
    parts (each slot opens only its own shards), else by sample (sample ``j`` to part ``j % parts``): every
    slot then reads the shared shards through, but only the members of its own samples are copied out of
    the tar and decoded. Two levels keep a rank's part independent of its worker count, so ``len`` is
    exact per rank. Parts can differ by up to one shard (or one sample); with DDP, ranks may then run a
    different number of batches: cap the steps, or use shards of equal size and a multiple of the world size.
    The rank and world size come from torch.distributed when initialised, else the RANK and WORLD_SIZE
    environment variables (torchrun sets them), else 0 and 1; pass ``rank`` and ``world_size`` to override.

    **Order.** With ``shuffle`` off, the samples of a slot come in shard order, so iterating in one process
    (or a DataLoader with ``num_workers=0``) gives the canonical split order, the same on every run. With
    several workers, a DataLoader takes batches from the workers in turn, so the stream interleaves the
    workers' parts: still deterministic, but not the split order; sort by ``index`` to recover it.
    With ``shuffle=N``, the shard order is permuted per epoch and a buffer of N samples shuffles each slot's
    stream, both seeded by (seed, epoch): the order is the same for the same seed, epoch, world size and
    worker count. Call ``set_epoch`` before each epoch (with ``persistent_workers=True`` the workers keep
    the epoch they started with).

    **Resize.** ``size=S`` resizes every image to S x S on the fly with Pillow's Lanczos filter
    (antialiased, ``reducing_gap=None``, the filter the builders use); masks are drawn at S. Upscaling is
    refused, and so are non-square images.

    Args:
        path: dataset folder.
        split: ``train``, ``val`` or ``test``.
        masks: level or preset names, MaskSpecs or frozen mask-set folders (pools), drawn from uniformly;
            None gives no mask.
        seed: seed of the mask draws and of the shuffles.
        size: output side in pixels (at most the smallest image side); None keeps the stored size.
        classes: class names (``dataset.json`` "classes") or label ints to keep; None keeps all.
        shuffle: shuffle-buffer size for training (True: DEFAULT_SHUFFLE_BUFFER); None or 0 keeps shard order.
        epoch: the first epoch (masks and shuffles depend on it).
        rank: DDP rank override (default: see Partitioning).
        world_size: DDP world-size override.
        uint8: deliver ``image`` and ``mask`` as uint8 (0-255, and 0/1) instead of float; convert on the device
            (``image.float() / 255``). Handing float32 256x256 batches between processes is the loader's
            bottleneck on a small CPU (see benchmarks/README.md).

    """

    def __init__(self, path: str | Path, split: str, masks: Sequence[str | MaskSpec] | None = None, seed: int = 0,
                 *, size: int | None = None, classes: Sequence[str | int] | str | int | None = None,
                 shuffle: int | bool | None = None, epoch: int = 0, rank: int | None = None,
                 world_size: int | None = None, uint8: bool = False) -> None:
        super().__init__()
        self.uint8 = uint8
        self.path, self.split, self.seed, self.epoch = Path(path), split, int(seed), int(epoch)
        self.classes: list[str] = list(read_info(path).get("classes", []))
        self._shards = {p.name: str(p) for p in shard_paths(path, split)}
        table = split_table(self.path, split, self._shards)
        if classes is not None:
            table = table[table["label"].isin(_class_ids(classes, self.classes, self.path))]
        columns = zip(table.index, table["key"], table["shard"], table["label"], table["digest"], strict=True)
        self.entries = [Entry(int(i), key, shard, int(label), int(d)) for i, key, shard, label, d in columns]
        self.keys = [e.key for e in self.entries]
        self.size = _output_size(table, size, split)
        if masks and self.size is None:
            raise InpaintbenchError(f"split {split!r} of {path} mixes image sizes; pass size= to draw masks")
        self.specs = mask_sources(masks, self.size)
        self.shuffle = DEFAULT_SHUFFLE_BUFFER if shuffle is True else int(shuffle or 0)
        if self.shuffle < 0:
            raise InpaintbenchError(f"shuffle must be a buffer size >= 0, got {shuffle}")
        self.rank, self.world_size = rank, world_size
        self._memory: torch.Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: its masks, and with ``shuffle`` its shard order and buffer shuffle."""
        self.epoch = int(epoch)

    def world(self) -> tuple[int, int]:
        """The (rank, world size) this dataset reads for (see Partitioning)."""
        rank, world = distributed_rank()
        rank = rank if self.rank is None else self.rank
        world = world if self.world_size is None else self.world_size
        if not 0 <= rank < world:
            raise InpaintbenchError(f"rank {rank} is outside a world of size {world}")
        return rank, world

    def __getstate__(self) -> dict[str, Any]:
        # Spawned DataLoader workers have no process group: pin the rank where the dataset is pickled (the
        # training process), so they read the same part as forked workers would.
        state = dict(self.__dict__)
        state["rank"], state["world_size"] = self.world()
        state["_memory"] = None
        return state

    def plan(self, rank: int = 0, world_size: int = 1, worker: int = 0, num_workers: int = 1,
             epoch: int | None = None) -> list[Entry]:
        """The samples one (rank, worker) slot reads in an epoch, in reading order (before the buffer shuffle).

        Args:
            rank: DDP rank.
            world_size: DDP world size.
            worker: DataLoader worker id.
            num_workers: DataLoader workers (0 counts as 1: the main process reads).
            epoch: the epoch (default: the current one); it only matters with ``shuffle``.

        Returns:
            The slot's entries; the plans of all slots are disjoint and together hold every sample.

        """
        epoch = self.epoch if epoch is None else epoch
        entries = self.entries
        if self.shuffle:
            shards = list(dict.fromkeys(e.shard for e in entries))
            order = np.random.default_rng([self.seed, epoch]).permutation(len(shards))
            place = {shards[j]: i for i, j in enumerate(order)}
            entries = sorted(entries, key=lambda e: place[e.shard])  # stable: sample order kept within a shard
        entries = partition(entries, world_size, rank, self._rng(epoch, 0))
        return partition(entries, max(num_workers, 1), worker, self._rng(epoch, 1))

    def _rng(self, epoch: int, level: int) -> np.random.Generator | None:
        """The generator of a partition level: the same in every slot, new each epoch; None without shuffle."""
        return np.random.default_rng([self.seed, epoch, level]) if self.shuffle else None

    def __len__(self) -> int:
        """Samples this rank reads in the current epoch, all its workers together (the whole split for one process).

        With ``shuffle`` and a split by shards of unequal sizes, a rank's count can change from epoch to epoch.
        """
        rank, world = self.world()
        return len(self.plan(rank, world))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        rank, world = self.world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.plan(rank, world, worker, workers)
        if not mine:
            return iter(())
        wanted = {e.key: e for e in mine}

        def is_wanted(name: str) -> bool:
            # Members of other slots' samples, and the json/cls members (the manifest has the label), are
            # skipped inside the tar reader: never copied out, never decoded.
            key, _, ext = name.partition(".")
            return ext in IMAGE_MEMBERS and key in wanted

        stages = [wds.SimpleShardList([self._shards[s] for s in dict.fromkeys(e.shard for e in mine)]),
                  wds.tarfile_to_samples(select_files=is_wanted)]
        if self.shuffle:
            seed = int(np.random.default_rng([self.seed, self.epoch, rank, worker]).integers(2**63))
            stages.append(wds.shuffle(self.shuffle, self.shuffle, rng=random.Random(seed)))
        stages.append(wds.map(lambda raw: self._item(wanted[raw["__key__"]], _image_member(raw))))
        return _counted(iter(wds.DataPipeline(*stages)), len(mine), f"split {self.split!r} of {self.path}")

    def decode(self, data: bytes) -> np.ndarray:
        """Decode image bytes with Pillow to H x W x 3 uint8 RGB at the output size (refusing decompression bombs)."""
        return decode_pixels(data, self.size)

    def draw_mask(self, index: int, epoch: int | None = None) -> torch.Tensor:
        """The mask of the sample at split position ``index`` in ``epoch`` (default: current), 1 x S x S float."""
        return draw_mask(self.specs, self.seed, self.epoch if epoch is None else epoch, index, self.size)

    def _item(self, entry: Entry, data: bytes) -> dict[str, Any]:
        check_digest(data, entry.digest, self._shards[entry.shard], entry.key)
        pixels = self.decode(data)
        if self.uint8:  # a quarter of the bytes to hand from the workers to the training process
            image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
            mask = (self.draw_mask(entry.index).byte() if self.specs
                    else torch.zeros(1, *image.shape[1:], dtype=torch.uint8))
            return {"image": image, "mask": mask, "label": entry.label, "key": entry.key, "index": entry.index}
        # One pass converts and moves channels first; the division matches InpaintDataset bit for bit.
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)).div_(255.0)
        # Without masks the zeros take the image's own size (sizes may then be mixed: no size= given).
        mask = self.draw_mask(entry.index) if self.specs else torch.zeros(1, *image.shape[1:])
        return {"image": image, "mask": mask, "label": entry.label, "key": entry.key, "index": entry.index}

    # Random access, for small splits and inspection: the kept samples of the whole split (every rank),
    # decoded into memory on first use, at the output size.

    @property
    def images(self) -> torch.Tensor:
        """The kept samples as N x 3 x S x S uint8, in split order (decodes the split into memory once)."""
        if self._memory is None:
            if self.size is None:
                raise InpaintbenchError(f"split {self.split!r} of {self.path} mixes image sizes; pass size=")
            arrays = {}
            wanted = {e.key: e for e in self.entries}
            for shard in dict.fromkeys(e.shard for e in self.entries):
                for raw in _read_images(self._shards[shard], set(wanted)):
                    data = _image_member(raw)
                    check_digest(data, wanted[raw["__key__"]].digest, self._shards[shard], raw["__key__"])
                    arrays[raw["__key__"]] = self.decode(data)
            if len(arrays) != len(self.entries):
                raise InpaintbenchError(f"split {self.split!r} of {self.path}: shards hold {len(arrays)} of the "
                                        f"{len(self.entries)} samples the manifest lists")
            stacked = np.stack([arrays[k] for k in self.keys]) if arrays else np.zeros((0, 1, 1, 3), np.uint8)
            self._memory = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
        return self._memory

    def __getitem__(self, position: int) -> dict[str, Any]:
        """The ``position``-th kept sample of the split (its ``index`` field is its split position)."""
        entry = self.entries[position]
        return {"image": self.images[position].float() / 255.0, "mask": self.draw_mask(entry.index),
                "label": entry.label, "key": entry.key, "index": entry.index}


def _image_member(raw: dict[str, Any]) -> bytes:
    return next(raw[ext] for ext in IMAGE_MEMBERS if ext in raw)


def _read_images(shard: str, wanted: set[str]) -> Iterator[dict[str, Any]]:
    """The raw image members of the wanted samples of one shard."""
    import webdataset as wds

    def is_wanted(name: str) -> bool:
        key, _, ext = name.partition(".")
        return ext in IMAGE_MEMBERS and key in wanted

    return iter(wds.DataPipeline(wds.SimpleShardList([shard]), wds.tarfile_to_samples(select_files=is_wanted)))


def _counted(items: Iterator[dict[str, Any]], expected: int, what: str) -> Iterator[dict[str, Any]]:
    """Pass ``items`` through, then fail if the shards held fewer samples than the manifest lists."""
    count = 0
    for item in items:
        count += 1
        yield item
    if count != expected:
        raise InpaintbenchError(f"{what}: the shards hold {count} of the {expected} samples the manifest lists "
                                "for this part; rebuild the dataset")


def _class_ids(classes: Sequence[str | int] | str | int, names: list[str], path: Path) -> list[int]:
    """Label ints of class names or ints, with a one-line error for an unknown one."""
    ids = []
    for c in [classes] if isinstance(classes, (str, int)) else classes:
        if isinstance(c, str) and c in names:
            ids.append(names.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(names):
            ids.append(int(c))
        else:
            raise InpaintbenchError(f"unknown class {c!r} in dataset {path}; classes: {', '.join(names)}")
    return ids


def _output_size(table: pd.DataFrame, size: int | None, split: str) -> int | None:
    """The output side: ``size`` checked against the stored images, else their common square side (or None)."""
    sides = set(zip(table["width"], table["height"], strict=True))
    if size is None:
        (width, height), *others = sides or [(None, None)]
        return width if not others and width == height else None
    size = int(size)
    if any(w != h for w, h in sides):
        raise InpaintbenchError(f"size={size} needs square images; split {split!r} has non-square ones")
    smallest = min((w for w, _ in sides), default=size)
    if size < 1:
        raise InpaintbenchError(f"size={size} must be at least 1")
    if size > smallest:
        raise InpaintbenchError(f"size={size} would upscale: the images of split {split!r} are {smallest} px; "
                                f"choose a size up to {smallest}")
    return size


def open_dataset(path: str | Path, split: str, masks: Sequence[str | MaskSpec] | None = None, seed: int = 0, *,
                 size: int | None = None, classes: Sequence[str | int] | None = None, shuffle: int | bool | None = None,
                 epoch: int = 0, rank: int | None = None, world_size: int | None = None,
                 uint8: bool = False) -> ShardStream:
    """Open a split of a shard dataset as a stream of (image, mask) samples (see ShardStream).

    Args:
        path: dataset folder.
        split: ``train``, ``val`` or ``test``.
        masks: level or preset names, MaskSpecs or frozen mask-set folders (pools), drawn from uniformly;
            None gives no mask.
        seed: seed of the mask draws and shuffles.
        size: output side (downscale only, Lanczos); None keeps the stored size.
        classes: class names or label ints to keep; None keeps all.
        shuffle: shuffle-buffer size for training; None keeps the deterministic shard order (evaluation).
        epoch: the first epoch.
        rank: DDP rank override (default: torch.distributed, else env RANK).
        world_size: DDP world-size override (default: torch.distributed, else env WORLD_SIZE).
        uint8: uint8 images and masks instead of float (faster between processes; convert on the device).

    Returns:
        A ShardStream, an IterableDataset for a DataLoader with any number of workers.

    Example:
        >>> ds = open_dataset("datasets/sample-64", "train", masks=["L1", "L2"], size=32, shuffle=500)  # doctest: +SKIP
        >>> batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2)))  # doctest: +SKIP

    """
    return ShardStream(path, split, masks, seed, size=size, classes=classes, shuffle=shuffle, epoch=epoch,
                       rank=rank, world_size=world_size, uint8=uint8)
