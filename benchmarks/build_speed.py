"""Dataset conversion speed: CelebA and Places2 images converted per second, against the raw JPEG decode rate.

    python benchmarks/build_speed.py [--count 600] [--out benchmarks/results/build_speed.md]

Writes a zip of ``count`` 178x218 JPEGs (crops of scikit-image's photos) in CelebA's official layout to a
temporary folder, then measures in the same run: decoding those JPEGs alone (the decode-bound limit, one
process), and `inpaintbench data build celeba` with 1 and 2 workers at 256 (an upscale with Lanczos) and at
178 (the crop alone, no resampling). Then the same for a Places365 train tar of ``count`` 256x256 JPEGs:
decoding alone, and `data build places2` at 256 (the images are stored as they are, after a full decode that
checks them) and at 128 (Lanczos and re-encoding). Target: at least 70% of the decode-bound rate per worker.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import skimage.data
from _table import emit
from PIL import Image

from inpaintbench.datasets import build_dataset


def photo_crops(count: int, height: int, width: int, quality: int, seed: int) -> list[bytes]:
    """``count`` JPEGs of random ``height`` x ``width`` crops of scikit-image's photos."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(seed)
    blobs = []
    for i in range(1, count + 1):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - height), rng.integers(0, photo.shape[1] - width)
        buf = io.BytesIO()
        Image.fromarray(photo[y:y + height, x:x + width]).save(buf, format="JPEG", quality=quality)
        blobs.append(buf.getvalue())
    return blobs


def make_source(folder: Path, count: int) -> list[bytes]:
    """A CelebA-layout source of ``count`` 178x218 images; returns the JPEG bytes."""
    blobs = photo_crops(count, 218, 178, quality=95, seed=0)
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as archive:
        for i, blob in enumerate(blobs, start=1):
            archive.writestr(f"img_align_celeba/{i:06d}.jpg", blob)
    splits = ["0"] * (count * 8 // 10) + ["1"] * (count // 10) + ["2"] * (count - count * 8 // 10 - count // 10)
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{i:06d}.jpg {s}\r\n" for i, s in enumerate(splits, start=1)))
    return blobs


def make_places_source(folder: Path, count: int) -> list[bytes]:
    """A Places365-layout source of ``count`` 256x256 JPEGs (one category), train tar and file lists."""
    blobs = photo_crops(count, 256, 256, quality=90, seed=1)
    names = [f"/a/airfield/{i:08d}.jpg" for i in range(1, count + 1)]
    with tarfile.open(folder / "train_256_places365standard.tar", "w") as tar:
        for name, blob in zip(names, blobs, strict=True):
            info = tarfile.TarInfo(f"data_256{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    tarfile.open(folder / "val_256.tar", "w").close()  # an empty official val tar
    (folder / "categories_places365.txt").write_text("/a/airfield 0")
    (folder / "places365_train_standard.txt").write_text("".join(f"{n} 0\n" for n in names))
    (folder / "places365_val.txt").write_text("")
    return blobs


def decode_rate(blobs: list[bytes], repeat: int = 3) -> float:
    """Images per second of Pillow decoding the blobs to RGB, one process (the best of ``repeat`` passes)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as image:
                image.convert("RGB").load()
        best = min(best, time.perf_counter() - start)
    return len(blobs) / best


def main() -> None:
    """Measure and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blobs = make_source(tmp, args.count)
        decode = decode_rate(blobs)
        rows = [("CelebA: JPEG decode alone (the limit)", 1, decode, decode, "100%")]
        for size, workers in [(256, 1), (256, 2), (178, 1), (178, 2)]:
            start = time.perf_counter()
            build_dataset("celeba", tmp / f"out{size}-{workers}", source_dir=tmp, size=size, workers=workers)
            rate = args.count / (time.perf_counter() - start)
            rows.append((f"inpaintbench data build celeba --size {size}", workers, rate, rate / workers,
                         f"{rate / workers / decode:.0%}"))
        places = tmp / "places"
        places.mkdir()
        blobs = make_places_source(places, args.count)
        decode = decode_rate(blobs)
        rows.append(("Places2: JPEG decode alone (the limit)", 1, decode, decode, "100%"))
        for size, workers in [(256, 1), (256, 2), (128, 1)]:
            start = time.perf_counter()
            build_dataset("places2", tmp / f"places{size}-{workers}", source_dir=places, size=size, workers=workers,
                          val_per_class=10)
            rate = args.count / (time.perf_counter() - start)
            rows.append((f"inpaintbench data build places2 --size {size}", workers, rate, rate / workers,
                         f"{rate / workers / decode:.0%}"))
    emit(f"Conversion speed. CelebA: {args.count} CelebA-layout 178x218 JPEGs read from the zip, centre crop, "
         "Lanczos to 256 (none at 178), JPEG q95 out. Places2: the same number of 256x256 JPEGs (q90) in the "
         "official train tar layout, stored as they are at 256 (decoded in full to check them), Lanczos + q95 at "
         "128. Shards and manifest written; "
         f"{platform.machine()}, {os.cpu_count()} cores).",
         ["what", "workers", "images/s", "per worker", "of the decode rate"],
         [[w, str(n), f"{r:,.0f}", f"{p:,.0f}", f] for w, n, r, p, f in rows], args.out)


if __name__ == "__main__":
    main()
