"""Places2 (Places365-Standard, small 256x256 images) into shards, with category subsets.

Reads the official files as distributed, without extracting them:
``train_256_places365standard.tar`` (members ``data_256/a/airfield/00000001.jpg``), ``val_256.tar``
(members ``val_256/Places365_val_00000001.jpg``), and the file lists, either inside
``filelist_places365-standard.tar`` or loose (``categories_places365.txt``, whose last line has no newline,
``places365_train_standard.txt``, ``places365_val.txt``). The "easyformat" folder layout
``places365_standard/{train,val}/<category>/<file>.jpg`` is read too.

Splits: the official val set (100 images per category) is the test split; a deterministic held-out part of
train (``val_per_class`` images per category) is the val split. Members are looked up by name from the
tar's header index and read by offset; no member name is ever used as a path.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._registry import InpaintbenchError
from .shards import IMAGE_ERRORS, MAX_IMAGE_PIXELS, Rejected, Sample, encode_image, image_error, write_dataset

TRAIN_TAR, VAL_TAR = "train_256_places365standard.tar", "val_256.tar"
FILELIST_TAR = "filelist_places365-standard.tar"
LISTS = ("categories_places365.txt", "places365_train_standard.txt", "places365_val.txt")
EASY = "places365_standard"


def _parse_list(text: str, name: str) -> list[tuple[str, int]]:
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise InpaintbenchError(f"{name}: malformed line {line!r}")
        rows.append((fields[0], int(fields[1])))
    return rows


MAX_LIST_BYTES = 1 << 30


def _read_lists(source: Path) -> dict[str, list[tuple[str, int]]]:
    """The three file lists, from the loose files or from the filelist tar."""
    if all((source / n).is_file() for n in LISTS):
        return {n: _parse_list((source / n).read_text(), n) for n in LISTS}
    if (source / FILELIST_TAR).is_file():
        with tarfile.open(source / FILELIST_TAR) as tar:
            found = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [n for n in LISTS if n not in found]
            if missing:
                raise InpaintbenchError(f"{FILELIST_TAR} lacks {', '.join(missing)}")
            # the train list is about 70 MB; a member declaring more than a gigabyte is no Places365 list
            large = [n for n in LISTS if found[n].size > MAX_LIST_BYTES]
            if large:
                raise InpaintbenchError(f"{FILELIST_TAR}: {large[0]} declares {found[large[0]].size} bytes; "
                                        "refused as a possible decompression bomb")
            return {n: _parse_list(tar.extractfile(found[n]).read().decode(), n) for n in LISTS}
    raise InpaintbenchError(f"Places365 file lists not found in {source}: need {FILELIST_TAR} or {', '.join(LISTS)}")


class _TarImages:
    """Image bytes by member name from an uncompressed tar: one header scan, then reads by offset.

    Each process opens its own handle (forked workers must not share a file offset).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with tarfile.open(path) as tar:
                self.members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError) as err:
            raise InpaintbenchError(f"{path} is not a readable tar archive (truncated download?): {err}") from None
        self._tar, self._pid = None, None

    def read(self, name: str) -> bytes | None:
        member = self.members.get(name)
        if member is None:
            return None
        if member.size > 64 << 20:
            raise ValueError(f"member of {member.size} bytes (not a 256 px image)")
        if self._pid != os.getpid():
            self._tar, self._pid = tarfile.open(self.path), os.getpid()
        return self._tar.extractfile(member).read()


class _FolderImages:
    """Image bytes by relative name from a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None


def _rank(seed: int, name: str) -> str:
    """A deterministic, seeded order of file names (for held-out and per-class subsets)."""
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _check_val_share(by_class: dict[int, list[str]], val_per_class: int, category_names: list[str]) -> None:
    """Refuse a val share that would hold out every training image of a category (an empty training split).

    Raises:
        InpaintbenchError: before anything is written, naming the categories and the largest share that works.

    """
    if val_per_class < 0:
        raise InpaintbenchError(f"places2 val_per_class must be >= 0, got {val_per_class}")
    short = {label: len(paths) for label, paths in by_class.items() if len(paths) <= val_per_class}
    if not short:
        return
    fewest = min(len(paths) for paths in by_class.values())
    named = ", ".join(f"{category_names[label]} ({n} images)" for label, n in sorted(short.items())[:3])
    raise InpaintbenchError(f"places2: holding out val_per_class={val_per_class} training images per category "
                            f"leaves {len(short)} categor{'y' if len(short) == 1 else 'ies'} with no training image "
                            f"({named}{', ...' if len(short) > 3 else ''}); pass --val-per-class "
                            f"{max(fewest - 1, 0)} or less (0 keeps no val split), or add images")


def build_places2(out: str | Path, source_dir: str | Path, size: int = 256, image_format: str = "jpg",
                  categories: list[str] | str | None = None, per_class: int | None = None,
                  val_per_class: int = 10, seed: int = 0, workers: int = 1) -> dict[str, Any]:
    """Build Places365-Standard shards from the official files in ``source_dir``; return dataset.json's content.

    Args:
        out: dataset folder (resumable: complete shards are kept).
        source_dir: folder with the official tars and file lists, or the easyformat folder layout.
        size: output side (images are 256x256; other sizes are resized with antialiased Lanczos).
        image_format: ``jpg`` (quality 95, 4:4:4) or ``png``.
        categories: category names to keep (``a/airfield`` or ``/a/airfield``; comma-separated text works).
        per_class: at most this many training images per category, chosen deterministically (balanced).
        val_per_class: training images per category held out as the val split; a share that would leave a
            category with no training image is an error (nothing is written).
        seed: seed of the held-out and per-class choices.
        workers: decoding processes.

    """
    source = Path(source_dir)
    if not source.is_dir():
        raise InpaintbenchError(f"Places2 source {source} is not a folder")
    easy = source / EASY
    if easy.is_dir():
        names = sorted({p.parent.name for p in (easy / "train").glob("*/*.jpg")})
        category_names = [f"/{n[0]}/{n}" for n in names]
        # easyformat folders are named by the leaf (nested names joined with "-"), ids follow sorted names
        train_rows = [(str(p.relative_to(easy)), names.index(p.parent.name))
                      for p in sorted((easy / "train").glob("*/*.jpg"))]
        val_rows = [(str(p.relative_to(easy)), names.index(p.parent.name))
                    for p in sorted((easy / "val").glob("*/*.jpg"))]
        train_images = val_images = _FolderImages(easy)
    else:
        lists = _read_lists(source)
        category_names = [name for name, _ in sorted(lists[LISTS[0]], key=lambda r: r[1])]
        train_rows = [(f"data_256/{path.lstrip('/')}", label) for path, label in lists[LISTS[1]]]
        val_rows = [(f"val_256/{path.lstrip('/')}", label) for path, label in lists[LISTS[2]]]
        for tar_name in (TRAIN_TAR, VAL_TAR):
            if not (source / tar_name).is_file():
                raise InpaintbenchError(f"{tar_name} not found in {source}")
        train_images, val_images = _TarImages(source / TRAIN_TAR), _TarImages(source / VAL_TAR)
    if isinstance(categories, str):
        categories = [c for c in categories.split(",") if c]
    keep = set(range(len(category_names)))
    if categories:
        wanted = {"/" + c.strip().lstrip("/") for c in categories}
        unknown = sorted(wanted - set(category_names))
        if unknown:
            raise InpaintbenchError(f"unknown Places365 categories: {', '.join(unknown)}")
        keep = {i for i, n in enumerate(category_names) if n in wanted}
    by_class: dict[int, list[str]] = {}
    for path, label in train_rows:
        if label in keep:
            by_class.setdefault(label, []).append(path)
    _check_val_share(by_class, val_per_class, category_names)
    candidates: dict[str, list[tuple[str, int, str]]] = {"train": [], "val": [], "test": []}
    for label in sorted(by_class):
        ranked = sorted(by_class[label], key=lambda p: _rank(seed, p))
        held, rest = ranked[:val_per_class], ranked[val_per_class:]
        if per_class is not None:
            rest = rest[:per_class]
        candidates["val"] += [(p, label, "train") for p in sorted(held)]
        candidates["train"] += [(p, label, "train") for p in sorted(rest)]
    candidates["test"] = [(p, label, "val") for p, label in val_rows if label in keep]

    def make(candidate: tuple[str, int, str]) -> Sample | Rejected:
        path, label, archive = candidate
        key = "places2-" + re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(Path(path).with_suffix("").parts[1:]))
        about = {"label": label, "label_name": category_names[label], "file": path}
        try:
            data = (train_images if archive == "train" else val_images).read(path)
        except ValueError as err:
            return Rejected(key, str(err), about)
        if data is None:
            return Rejected(key, "listed in the file list but missing from the archive", about)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    return Rejected(key, "decompression bomb", about)
                original = [image.width, image.height]
                # An RGB JPEG already at the output size is stored as it is, never re-encoded (no second
                # generation of JPEG loss). It is checked by decoding it at 1/8 scale: libjpeg still parses
                # every entropy-coded block, so a cut or garbled file fails as in a full decode, at half the cost.
                keep_bytes = image_format == "jpg" and image.format == "JPEG" and image.mode == "RGB" and \
                    image.size == (size, size)
                if keep_bytes:
                    image.draft("RGB", (size // 8, size // 8))
                    image.load()
                    rgb = None
                else:
                    rgb = image.convert("RGB")
                    if rgb.size != (size, size):
                        side = min(rgb.size)
                        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
                        rgb = rgb.crop((left, top, left + side, top + side)).resize(
                            (size, size), Image.Resampling.LANCZOS, reducing_gap=None)
        except IMAGE_ERRORS as err:
            return Rejected(key, image_error(err), about)
        encoded = data if rgb is None else encode_image(rgb, image_format)  # from Pillow directly: no numpy copies
        meta = {"label_name": category_names[label], "file": path, "original_size": original,
                "license": "Places2: research and education only; images belong to their owners",
                "attribution": "Zhou et al., Places: A 10 million Image Database for Scene Recognition, TPAMI 2017",
                "url": "http://places2.csail.mit.edu"}
        # encoded already: the image field only carries the height and width
        return Sample(key=key, image=np.empty((size, size, 0), np.uint8), label=label, meta=meta, encoded=encoded)

    return write_dataset(
        Path(out), "places2", candidates, make, classes=category_names,
        build_params={"source": "places2", "size": size, "image_format": image_format,
                      "categories": sorted(category_names[i] for i in keep) if categories else "all",
                      "per_class": per_class, "val_per_class": val_per_class, "seed": seed,
                      "storage": "original JPEG bytes when already RGB at the output size, else Lanczos + JPEG q95"},
        card={"title": f"Places365-Standard, {size}x{size}",
              "description": "Places365-Standard small images (Zhou et al. 2017). The official validation set "
                             "(100 images per category) is the test split; `val_per_class` training images per "
                             "category, chosen by a seeded hash, are the val split.",
              "license": "The copyright of the images belongs to their owners; for research and education."},
        image_format=image_format,
        samples_per_shard=1000,
        workers=workers,
    )
