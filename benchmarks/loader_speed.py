"""Loader speed: samples per second streamed from shards, against the JPEG decode rate and a folder of JPEGs.

    python benchmarks/loader_speed.py [--count 512] [--workers 2] [--level L3] [--rounds 5]
        [--out benchmarks/results/loader_speed.md]

Builds a dataset of ``count`` 256x256 JPEG samples (Lanczos crops of scikit-image's photos, q95 4:4:4, 128 per
shard) in a temporary folder, copies the same JPEG bytes into a folder of files, then measures in the same run,
all with ``workers`` processes:

* the decode-bound limit: Pillow decoding the JPEGs alone (bytes in memory, forked processes), and the same
  plus drawing the mask of each sample (the limit once masks are applied);
* ``ib.open_dataset`` streamed through a DataLoader (batch 32), with masks of ``level`` and without masks;
* a plain map-style torch Dataset over the folder of JPEG files, with the same masks, through the same DataLoader;
* ``InpaintDataset`` reading the shards by byte range (random access, how training reads a large split), with
  the same masks;
* both again with the fast options: masks from a frozen set of the level (a pool, no drawing) and uint8 items;
* the same DataLoader moving blank items of the same shapes and dtype (float32 image and mask): the cost of
  getting the batches from the workers to the training process, a ceiling for any loader of float32 items;
* the DataLoader decoding the JPEG bytes held in memory (no storage, no masks), handing back only the index,
  then the uint8 images: how close to the limit decoding in DataLoader workers can get, and what moving the
  pixels to the training process takes off.

Rates are steady state: each row runs one warm-up pass (worker start, page cache), then ``--rounds`` rounds time
one pass of every row in turn (persistent DataLoader workers, a pre-started process pool), so a burst of other
load on the machine hits all rows alike; the best and the median pass are reported. A second table splits one
process's time per sample into its stages. Targets (not asserted): loader at least 85% of the decode limit, and
not slower than the folder of JPEGs.
"""

from __future__ import annotations

import argparse
import datetime
import io
import multiprocessing
import os
import platform
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
import torch
from _table import emit
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from inpaintbench.datasets import open_dataset
from inpaintbench.datasets.loader import InpaintDataset, draw_mask, mask_sources
from inpaintbench.datasets.shards import Sample, write_dataset
from inpaintbench.masks import make_mask_set, resolve_spec

SIDE, BATCH = 256, 32
_BLOBS: list[bytes] = []  # the JPEG bytes, inherited by the forked decode processes
_SPECS: list = []


def build(out: Path, count: int) -> list[bytes]:
    """Write the shard dataset and a folder of the same JPEG files; return the JPEG bytes in split order."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]

    def make(i: int) -> Sample:
        photo = photos[i % len(photos)]
        rng = np.random.default_rng(i)
        side = int(rng.integers(300, min(photo.shape[:2]) + 1))
        y, x = int(rng.integers(0, photo.shape[0] - side + 1)), int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
        return Sample(f"bench-{i:06d}", np.asarray(crop), i % len(photos))

    write_dataset(out / "shards", "bench", {"train": list(range(count))}, make, classes=["a", "b", "c", "d"],
                  build_params={"count": count}, card={"title": "bench", "description": "loader benchmark"},
                  image_format="jpg", samples_per_shard=128, workers=2)
    folder = out / "folder"
    folder.mkdir()
    blobs = []
    for shard in sorted((out / "shards" / "train").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".jpg"):
                    blobs.append(tar.extractfile(member).read())
                    (folder / member.name).write_bytes(blobs[-1])
    return blobs


class JpegFolder(Dataset):
    """The baseline: one JPEG file per sample, decoded in ``__getitem__``, with the loader's masks."""

    def __init__(self, folder: Path, specs: list, uint8: bool = False) -> None:
        self.paths, self.specs, self.uint8 = sorted(folder.glob("*.jpg")), specs, uint8

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        pixels = _decode(self.paths[index].read_bytes())  # the loader's decode, so only the storage differs
        if self.uint8:
            image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
            return {"image": image, "mask": draw_mask(self.specs, 0, 0, index, SIDE).byte(), "index": index}
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)).div_(255.0)
        return {"image": image, "mask": draw_mask(self.specs, 0, 0, index, SIDE), "index": index}


class Blank(IterableDataset):
    """Items of the loader's shape and dtype with nothing read or decoded: what moving them between processes costs."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for index in range(worker, self.count, workers):
            yield {"image": torch.zeros(3, SIDE, SIDE), "mask": torch.zeros(1, SIDE, SIDE), "index": index}


class MemoryJpegs(IterableDataset):
    """The JPEG bytes held in memory, decoded in the DataLoader workers: nothing read, no mask.

    With ``pixels`` each item hands back the uint8 image; without, only its index: the difference is what
    moving the pixels from the workers to the training process costs, whatever the storage.
    """

    def __init__(self, pixels: bool) -> None:
        self.pixels = pixels

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for index in range(worker, len(_BLOBS), workers):
            pixels = _decode(_BLOBS[index])
            if self.pixels:
                yield {"image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), "index": index}
            else:
                yield {"index": index}


def _decode(blob: bytes) -> np.ndarray:
    """Pillow's decode of RGB JPEG bytes to an H x W x 3 uint8 array, as the loader does it."""
    with Image.open(io.BytesIO(blob)) as pil:
        pil.load()
        return np.asarray(pil)


def _one_thread() -> None:
    torch.set_num_threads(1)  # as in DataLoader workers: intra-op threads of two processes would fight for 2 cores


def _decode_part(job: tuple[int, int, bool]) -> int:
    """Decode every ``step``-th blob from ``start`` (and draw its mask): one process's share of the limit."""
    start, step, masks = job
    for i in range(start, len(_BLOBS), step):
        _decode(_BLOBS[i])
        if masks:
            draw_mask(_SPECS, 0, 0, i, SIDE)
    return 0


def measure(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per pass of each run: one warm-up pass each, then ``rounds`` rounds that take turns.

    Taking turns spreads the load of anything else on the machine over all rows alike.
    """
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def drain(loader: DataLoader, expected: int) -> None:
    """Iterate a DataLoader through, checking that it yields every sample once."""
    seen = sorted(i for batch in loader for i in batch["index"].tolist())
    if seen != list(range(expected)):
        raise RuntimeError(f"the loader yielded {len(seen)} samples, not each of the {expected} once")


def stages(folder: Path, shards: Path, specs: list, n: int = 256) -> list[list[str]]:
    """Milliseconds per sample of each stage of a worker's work, batch by batch as in a worker (one thread, CPU time).

    Like a worker, only one batch is alive at a time, so freed buffers are reused as they would be there.
    """
    import webdataset as wds
    from torch.utils.data import default_collate

    torch.set_num_threads(1)
    pipeline = wds.DataPipeline(wds.SimpleShardList(sorted(str(p) for p in shards.glob("*.tar"))),
                                wds.tarfile_to_samples(select_files=lambda name: name.endswith(".jpg")))
    raw = iter(pipeline)
    files = sorted(folder.glob("*.jpg"))
    spent = dict.fromkeys(["tar", "file", "decode", "convert", "mask", "collate"], 0.0)
    last = time.process_time()

    def tick(stage: str) -> None:
        """Charge the CPU time since the previous tick to ``stage``."""
        nonlocal last
        now = time.process_time()
        spent[stage] += now - last
        last = now

    for first in range(0, n, BATCH):
        batch = range(first, min(first + BATCH, n))
        blobs = [next(raw)["jpg"] for _ in batch]
        tick("tar")
        for i in batch:
            files[i].read_bytes()
        tick("file")
        pixels = [_decode(b) for b in blobs]
        tick("decode")
        images = [torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1), dtype=np.float32)).div_(255.0)
                  for p in pixels]
        tick("convert")
        masks = [draw_mask(specs, 0, 0, i, SIDE) for i in batch]
        tick("mask")
        default_collate([{"image": im, "mask": m, "index": i} for im, m, i in zip(images, masks, batch, strict=True)])
        tick("collate")
    names = {"tar": "read a sample's image from the shard (webdataset tar iterator)",
             "file": "read a JPEG file (the folder baseline)", "decode": "JPEG decode (Pillow, to a uint8 array)",
             "convert": "uint8 HWC array to float CHW tensor", "mask": "mask draw",
             "collate": f"collate (batches of {BATCH}, plain memory here, shared memory in a worker)"}
    return [[names[k], f"{v * 1000 / n:.3f}"] for k, v in spent.items()]


def main() -> None:
    """Measure and print (and optionally write) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--level", default="L3")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    global _BLOBS, _SPECS
    specs = [resolve_spec(args.level).with_size(SIDE)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _BLOBS, _SPECS = build(tmp, args.count), specs
        # a frozen set used as a mask pool: what training on fixed masks (PConv's NVIDIA set) costs
        mask_pool = make_mask_set(args.level, count=256, size=SIDE, seed=0, out=tmp / "mask-pool")
        n, w, level = args.count, args.workers, args.level

        def loader(dataset: Dataset) -> Callable[[], object]:
            loader = DataLoader(dataset, batch_size=BATCH, num_workers=w, persistent_workers=True)
            return lambda: drain(loader, n)

        with multiprocessing.get_context("fork").Pool(w, initializer=_one_thread) as pool:
            runs = {
                "JPEG decode alone, one process": lambda: [_decode(b) for b in _BLOBS],
                "JPEG decode alone (the limit)": lambda: pool.map(_decode_part, [(k, w, False) for k in range(w)]),
                f"JPEG decode + {level} mask (the limit with masks)":
                    lambda: pool.map(_decode_part, [(k, w, True) for k in range(w)]),
                f"ib.open_dataset, {level} masks": loader(open_dataset(tmp / "shards", "train", masks=[level])),
                f"folder of JPEGs + torch Dataset, {level} masks": loader(JpegFolder(tmp / "folder", specs)),
                f"InpaintDataset read from the shards by byte range, {level} masks":
                    loader(InpaintDataset(tmp / "shards", "train", masks=[level], in_memory=False)),
                "ib.open_dataset, no masks": loader(open_dataset(tmp / "shards", "train")),
                "folder of JPEGs + torch Dataset, no masks": loader(JpegFolder(tmp / "folder", [])),
                f"ib.open_dataset, frozen {level} pool, uint8":
                    loader(open_dataset(tmp / "shards", "train", masks=[mask_pool], uint8=True)),
                f"folder of JPEGs + torch Dataset, frozen {level} pool, uint8":
                    loader(JpegFolder(tmp / "folder", mask_sources([mask_pool], SIDE), uint8=True)),
                "DataLoader moving blank float32 items (no read, decode or mask)": loader(Blank(n)),
                "DataLoader decoding JPEGs held in memory, handing back only the index": loader(MemoryJpegs(False)),
                "DataLoader decoding JPEGs held in memory, handing back uint8 images": loader(MemoryJpegs(True)),
            }
            times = measure(runs, args.rounds)
        breakdown = stages(tmp / "folder", tmp / "shards" / "train", specs)
    best = {name: n / min(t) for name, t in times.items()}
    limit = best["JPEG decode alone (the limit)"]
    rows = []
    for name, t in times.items():
        folder = name.replace("ib.open_dataset", "folder of JPEGs + torch Dataset")
        if name.startswith("InpaintDataset"):
            folder = f"folder of JPEGs + torch Dataset, {level} masks"
        rows.append([name, "1" if "one process" in name else str(w), f"{best[name]:,.0f}",
                     f"{n / statistics.median(t):,.0f}", "-" if "one process" in name else f"{best[name] / limit:.0%}",
                     f"{best[name] / best[folder]:.2f}x" if folder != name else "-"])
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}, python {platform.python_version()}, "
               f"torch {torch.__version__}, Pillow {Image.__version__}; {datetime.date.today().isoformat()}")
    text = emit(f"Loader speed ({n} samples of {SIDE}x{SIDE} JPEG q95 4:4:4, 128 per shard; DataLoader batch {BATCH}, "
                f"{w} persistent workers; one warm-up pass, then {args.rounds} rounds taking turns; {machine}).",
                ["what", "processes", "samples/s (best)", "samples/s (median)", "of the decode limit",
                 "vs folder (same masks)"], rows, None)
    text += "\n" + emit("Where the time of one process goes (ms per sample, 256x256, one thread, CPU time).",
                        ["stage", "ms per sample"], breakdown, None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
