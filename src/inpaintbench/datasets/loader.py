"""The loader: a split of a shard dataset as (image, mask) samples with random access, masks drawn on the fly.

``InpaintDataset`` is the map-style dataset (used by the Trainer, the harness and the figures). A small split is
decoded into memory once; a large one is read sample by sample from its byte range in the shards
(``ShardImages``), so training on CelebA or Places2 needs no memory per image. The streaming reader that
``open_dataset`` returns, ``ShardStream``, is in :mod:`.stream`; both share the sample format, the integrity
checks (each image against the manifest's sha256) and the mask draws here.

Mask ``i`` of epoch ``e`` is drawn from a generator seeded with (seed, epoch, index), ``index`` being the
position of the sample in its split (shard order, rejected candidates not counted), so masks are the same
whatever the number of DataLoader workers or DDP ranks, and a resumed training run sees the same masks.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from .._registry import InpaintbenchError
from ..masks.generators import generate
from ..masks.levels import resolve_spec
from ..masks.spec import MaskSpec
from .shards import MAX_IMAGE_PIXELS, image_members, shard_paths

IN_MEMORY_BYTES = 2 << 30  # InpaintDataset decodes a split into memory when its pixels take at most this


MaskSource = MaskSpec | np.ndarray  # a spec drawn on the fly, or a frozen set's masks (uint8 N x 1 x S x S)


def mask_sources(masks: Sequence[str | Path | MaskSpec] | None, size: int | None) -> list[MaskSource]:
    """Resolve ``masks``: level and preset names or MaskSpecs, or folders of frozen sets (masks/sets/<name>).

    A frozen set is a pool: each draw picks one of its masks. Pools cost nothing to draw from (a generated L3
    mask at 256 takes about 1 ms), and are how papers train on fixed mask collections (PConv's NVIDIA masks).
    """
    from ..masks.sets import load_mask_set

    sources: list[MaskSource] = []
    for m in masks or []:
        if isinstance(m, (str, Path)) and (Path(m) / "set.json").exists():
            pool, _, _ = load_mask_set(m)
            if size is not None and pool.shape[-1] != size:
                raise InpaintbenchError(f"mask set {m} is {pool.shape[-1]} px, the images are {size} px")
            sources.append(pool)
        else:
            sources.append(resolve_spec(m).with_size(size))
    return sources


def draw_mask(sources: Sequence[MaskSource], seed: int, epoch: int, index: int, size: int) -> torch.Tensor:
    """The mask of sample ``index`` in ``epoch``: 1 x size x size float, 1 = hole (zeros without sources)."""
    if not sources:
        return torch.zeros(1, size, size)
    rng = np.random.default_rng([seed, epoch, index])
    source = sources[int(rng.integers(len(sources)))]
    if isinstance(source, np.ndarray):
        return torch.from_numpy(source[int(rng.integers(len(source)))]).float()
    return torch.from_numpy(generate(source, rng)).float()[None]


class InpaintDataset(Dataset):
    """A split of a shard dataset with random access, as a torch Dataset of (image, mask) dicts.

    Items hold ``image`` (3 x H x W float in [0, 1]), ``mask`` (1 x H x W float, 1 = hole), ``label``
    and ``index``. The images of a small split are decoded into memory at construction; a large split's
    are read from their byte ranges in the shards when asked for (one scan of the tar headers first), so
    memory does not grow with the dataset. Either way the items are the same.

    Args:
        path: dataset folder.
        split: ``train``, ``val`` or ``test``.
        masks: level or preset names, MaskSpecs or frozen mask-set folders (pools), drawn from uniformly;
            None gives no mask.
        seed: seed of the mask draws.
        in_memory: True decodes the split into memory, False reads each image when asked for; None (default)
            decodes into memory when the pixels take at most 2 GiB.

    """

    def __init__(self, path: str | Path, split: str, masks: Sequence[str | MaskSpec] | None = None,
                 seed: int = 0, in_memory: bool | None = None) -> None:
        path = Path(path)
        shards = {p.name: str(p) for p in shard_paths(path, split)}
        table = split_table(path, split, shards)
        sides = sorted(set(zip(table["width"], table["height"], strict=True)))
        if len(sides) != 1:
            what = f"mixes image sizes {sides}" if sides else "has no samples"
            raise InpaintbenchError(f"split {split!r} of {path} {what}")
        (width, height), = sides
        columns = zip(table.index, table["key"], table["shard"], table["label"], table["digest"], strict=True)
        entries = [Entry(int(i), key, shard, int(label), int(d)) for i, key, shard, label, d in columns]
        self.keys = [e.key for e in entries]
        self.labels = torch.tensor([e.label for e in entries])
        self.size = int(width)
        self.specs = mask_sources(masks, self.size)
        self.seed = seed
        self.epoch = 0
        self._files = ShardImages(shards, entries)
        self._memory: torch.Tensor | None = None
        if in_memory or (in_memory is None and len(entries) * width * height * 3 <= IN_MEMORY_BYTES):
            self._memory = self.images

    @property
    def images(self) -> torch.Tensor:
        """Every image of the split as N x 3 x H x W uint8 (decoded into memory on first use)."""
        if self._memory is None:
            self._memory = torch.stack([self._decode(i) for i in range(len(self))]) if len(self) else \
                torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return self._memory

    def images_at(self, indices: Iterable[int]) -> torch.Tensor:
        """The images of the samples at ``indices`` as N x 3 x H x W uint8 (decoding only those when needed)."""
        picked = [self.image(int(i)) for i in indices]
        return torch.stack(picked) if picked else torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)

    def image(self, index: int) -> torch.Tensor:
        """The image of sample ``index`` as 3 x H x W uint8."""
        return self._memory[index] if self._memory is not None else self._decode(index)

    def _decode(self, index: int) -> torch.Tensor:
        data = self._files.read(index, self.keys[index])
        return torch.from_numpy(np.ascontiguousarray(decode_pixels(data).transpose(2, 0, 1)))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose masks are drawn (call before iterating each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keys)

    def draw_mask(self, index: int, epoch: int | None = None) -> torch.Tensor:
        """The mask of sample ``index`` in ``epoch`` (default: the current epoch), 1 x H x W float."""
        return draw_mask(self.specs, self.seed, self.epoch if epoch is None else epoch, index, self.size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.image(index).float() / 255.0, "mask": self.draw_mask(index),
                "label": int(self.labels[index]), "index": index}


class ShardImages:
    """The image bytes of a split's samples by split position, read from their byte ranges in the shards.

    The ranges come from one scan of each shard's tar headers. Each read opens the shard anew (about 10 us,
    against 0.6 ms to decode): nothing to share between forked DataLoader workers, and no limit on open
    files however many shards a split has. Each read is checked against the sha256 the manifest recorded when
    the shard was written (its first 8 bytes, kept per sample; hashing a 256 px JPEG takes about 20 us), so a
    shard changed after its build is an error naming it, never other pixels.
    """

    def __init__(self, shards: dict[str, str], entries: Sequence[Entry]) -> None:
        names = list(dict.fromkeys(e.shard for e in entries))
        members = {name: image_members(shards[name]) for name in names}
        self.paths = [shards[name] for name in names]
        number = {name: i for i, name in enumerate(names)}
        # three flat arrays rather than a tuple per sample: 20 bytes a sample for Places2's 1.8 million
        self.shard = np.empty(len(entries), np.int32)
        self.offset = np.empty(len(entries), np.int64)
        self.size = np.empty(len(entries), np.int64)
        self.digest = np.array([e.digest for e in entries], np.uint64)  # 0 = not recorded (older manifests)
        for i, e in enumerate(entries):
            if e.key not in members[e.shard]:
                raise InpaintbenchError(f"shard {e.shard} has no image for {e.key}, which the manifest lists; "
                                        "rebuild the dataset")
            self.shard[i] = number[e.shard]
            self.offset[i], self.size[i] = members[e.shard][e.key]

    def read(self, index: int, key: str = "") -> bytes:
        """The stored image bytes of sample ``index`` (``key`` names it in the error when they changed)."""
        path = self.paths[self.shard[index]]
        with open(path, "rb") as shard:
            shard.seek(int(self.offset[index]))
            data = shard.read(int(self.size[index]))
        check_digest(data, int(self.digest[index]), path, key or f"sample {index}")
        return data


def decode_pixels(data: bytes, size: int | None = None) -> np.ndarray:
    """Decode image bytes with Pillow to H x W x 3 uint8 RGB, refusing decompression bombs.

    With ``size``, an image of another size is resized to size x size (Lanczos).
    """
    with Image.open(io.BytesIO(data)) as pil:
        if pil.width * pil.height > MAX_IMAGE_PIXELS:
            raise InpaintbenchError(f"image of {pil.width}x{pil.height} pixels exceeds the decompression-bomb "
                                    "limit")
        if pil.mode == "RGB":
            pil.load()  # no convert: it would copy
        else:
            pil = pil.convert("RGB")
    if size is not None and pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=None)
    return np.asarray(pil)


class Entry(NamedTuple):
    """One sample of a split as the manifest describes it (nothing decoded)."""

    index: int  # position in the split, in shard order
    key: str
    shard: str  # shard file name, e.g. ``train-000003.tar``
    label: int
    digest: int = 0  # the first 8 bytes of the image member's sha256 in the manifest (0: not recorded)


def manifest_digest(sha256: Any) -> int:
    """The first 8 bytes of a hex sha256 as an int (0 when the manifest has none)."""
    return int(sha256[:16], 16) if isinstance(sha256, str) and len(sha256) >= 16 else 0


def check_digest(data: bytes, digest: int, shard: str | Path, key: str) -> None:
    """Raise a one-line error naming the shard when ``data`` is not what the manifest recorded (``digest``)."""
    if digest and int.from_bytes(hashlib.sha256(data).digest()[:8], "big") != digest:
        raise InpaintbenchError(f"shard {shard}: the image of {key} does not match the sha256 the manifest recorded "
                                "(the shard changed after it was built); rebuild the dataset with the same "
                                "`inpaintbench data build` command")


def split_table(path: Path, split: str, shards: dict[str, str]) -> pd.DataFrame:
    """The accepted samples of ``split`` from manifest.parquet, in shard order, indexed by split position."""
    manifest_path = path / "manifest.parquet"
    if not manifest_path.exists():
        raise InpaintbenchError(f"no manifest.parquet in {path}; rebuild the dataset with `inpaintbench data build`")
    import pyarrow.parquet as pq

    names = set(pq.read_schema(manifest_path).names)
    wanted = ["key", "split", "shard", "status", "label", "width", "height"]
    table = pd.read_parquet(manifest_path, columns=wanted + (["sha256"] if "sha256" in names else []))
    table = table[(table["split"] == split) & (table["status"] == "ok")]
    table["digest"] = [manifest_digest(h) for h in table["sha256"]] if "sha256" in table else 0
    # Rows are already in shard order (the ledgers are concatenated in order); the stable sort only guards it.
    table = table.sort_values("shard", kind="stable").reset_index(drop=True)
    missing = sorted(set(table["shard"]) - set(shards))
    if missing:
        raise InpaintbenchError(f"the manifest of {path} lists shards that are missing: {', '.join(missing[:3])}")
    return table.astype({"label": int, "width": int, "height": int})


def split_size(path: str | Path, split: str) -> int | None:
    """The image side of a split as :class:`InpaintDataset` reads it, from the manifest alone (None: mixed sizes)."""
    manifest_path = Path(path) / "manifest.parquet"
    if not manifest_path.exists():
        raise InpaintbenchError(f"no manifest.parquet in {path}; rebuild the dataset with `inpaintbench data build`")
    table = pd.read_parquet(manifest_path, columns=["split", "status", "width", "height"])
    table = table[(table["split"] == split) & (table["status"] == "ok")]
    sides = set(zip(table["width"], table["height"], strict=True))
    return int(next(iter(sides))[0]) if len(sides) == 1 else None
