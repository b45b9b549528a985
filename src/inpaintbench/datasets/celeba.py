"""CelebA (aligned and cropped faces) into shards, with the official train/val/test partition.

Reads the official files as distributed: ``img_align_celeba.zip`` (read member by member, never extracted)
or the extracted ``img_align_celeba/`` folder, ``list_eval_partition.txt`` (required), and when present
``list_attr_celeba.txt``, ``list_landmarks_align_celeba.txt`` and ``identity_CelebA.txt``. The real files
have CRLF line endings, a count line before the header of the attribute and landmark lists, and runs of
spaces between columns; all are parsed by whitespace.

Each 178x218 image gets the usual inpainting crop: the centred 178x178 square (rows 20-197), resized to
``size`` with Pillow's antialiased Lanczos filter.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._registry import InpaintbenchError
from .shards import IMAGE_ERRORS, MAX_IMAGE_PIXELS, Rejected, Sample, encode_image, image_error, write_dataset

PARTITION = "list_eval_partition.txt"
# The official files: Google Drive ids and md5 (torchvision's list; sizes in TFDS checksums).
OFFICIAL_FILES = {
    "img_align_celeba.zip": ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    "list_eval_partition.txt": ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
    "list_attr_celeba.txt": ("0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c"),
    "list_landmarks_align_celeba.txt": ("0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c"),
    "identity_CelebA.txt": ("1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
}


def official_url(filename: str) -> str:
    """Where an official CelebA file is served (Google Drive, which may answer with a quota page)."""
    return f"https://drive.google.com/uc?export=download&id={OFFICIAL_FILES[filename][0]}"


def download_celeba(source_dir: str | Path) -> None:
    """Fetch the official files into ``source_dir``, resumable and md5-verified (see datasets.download)."""
    from .download import download

    for filename, (_, md5) in OFFICIAL_FILES.items():
        download(official_url(filename), Path(source_dir) / filename, md5=md5)
SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}
ARCHIVE = "img_align_celeba.zip"
FOLDER = "img_align_celeba"


def _lines(path: Path) -> list[list[str]]:
    """Whitespace-split, non-empty lines of a text file (CRLF or LF, any run of spaces)."""
    return [line.split() for line in path.read_text(encoding="ascii", errors="strict").splitlines() if line.strip()]


def read_partition(path: Path) -> dict[str, str]:
    """``000001.jpg -> train|val|test`` from list_eval_partition.txt (no header)."""
    if not path.is_file():
        raise InpaintbenchError(f"{path.name} not found in {path.parent}: CelebA's official partition is required")
    partition = {}
    for fields in _lines(path):
        if len(fields) != 2 or fields[1] not in SPLIT_CODES:
            raise InpaintbenchError(f"{path}: malformed line {' '.join(fields)!r}")
        partition[fields[0]] = SPLIT_CODES[fields[1]]
    return partition


def read_table(path: Path, count_line: bool) -> tuple[list[str], dict[str, list[int]]]:
    """Column names and ``image -> values`` of an annotation list.

    With ``count_line`` (attributes, landmarks), line 1 is the row count and line 2 the column names; the
    count is checked. Without it (identities), there is no header and the one column is named ``identity``.
    """
    rows = _lines(path)
    if count_line:
        if len(rows) < 2 or len(rows[0]) != 1 or not rows[0][0].isdigit():
            raise InpaintbenchError(f"{path}: expected a count line and a header line")
        count, names, body = int(rows[0][0]), rows[1], rows[2:]
        if count != len(body):
            raise InpaintbenchError(f"{path}: the count line says {count} rows, the file has {len(body)}")
    else:
        names, body = ["identity"], rows
    table = {}
    for fields in body:
        if len(fields) != len(names) + 1:
            raise InpaintbenchError(f"{path}: row {fields[0]!r} has {len(fields) - 1} values, expected {len(names)}")
        table[fields[0]] = [int(v) for v in fields[1:]]
    return names, table


class _ImageSource:
    """Image bytes by file name, from the zip (opened lazily, once per process) or the extracted folder."""

    def __init__(self, source: Path) -> None:
        self.zip_path = source / ARCHIVE if (source / ARCHIVE).is_file() else None
        self.folder = source / FOLDER if (source / FOLDER).is_dir() else None
        if self.zip_path is None and self.folder is None:
            raise InpaintbenchError(f"neither {ARCHIVE} nor {FOLDER}/ found in {source}")
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None
        self._members: dict[str, zipfile.ZipInfo] = {}

    def _archive(self) -> zipfile.ZipFile:
        # each process opens its own handle: forked workers must not share a file offset
        if self._zip is None or self._pid != os.getpid():
            self._pid = os.getpid()
            try:
                self._zip = zipfile.ZipFile(self.zip_path)
            except zipfile.BadZipFile:
                raise InpaintbenchError(f"{self.zip_path} is not a valid zip archive (a truncated download, or an "
                                        "HTML page saved under the zip's name?)") from None
            # members are looked up by base name: no member name is ever used as a path
            self._members = {Path(i.filename).name: i for i in self._zip.infolist() if not i.is_dir()}
        return self._zip

    def check(self) -> None:
        """Open the archive now, so a broken one fails before anything is written."""
        if self.zip_path is not None:
            self._archive()

    def read(self, name: str) -> bytes | None:
        """The bytes of image ``name``, or None if the source does not have it."""
        if self.zip_path is not None:
            archive = self._archive()
            info = self._members.get(name)
            if info is None:
                return None
            if info.file_size > 64 << 20:
                raise ValueError(f"member declares {info.file_size} bytes (zip bomb?)")
            return archive.read(info)
        path = self.folder / name
        return path.read_bytes() if path.is_file() else None


def _crop_resize(data: bytes, size: int) -> tuple[Image.Image, tuple[int, int], tuple[int, int, int]]:
    """Decode, take the centred square of the short side and resize it with antialiased Lanczos.

    Returns the RGB image, the original (width, height) and the crop (left, top, side). The image stays a Pillow
    image up to the encoder: a round trip through numpy would copy the pixels twice for nothing.
    """
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"{image.width}x{image.height} pixels exceeds the decompression-bomb limit")
        original = image.size
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert() would copy an RGB image for nothing
        side = min(rgb.size)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        square = rgb.crop((left, top, left + side, top + side))  # decodes the file, then copies the square
        if side != size:
            square = square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=None)
        return square, original, (left, top, side)


def build_celeba(out: str | Path, source_dir: str | Path, size: int = 256, image_format: str = "jpg",
                 limit: int | None = None, download: bool = False, workers: int = 1) -> dict[str, Any]:
    """Build CelebA shards from the official files in ``source_dir``; return dataset.json's content.

    Args:
        out: dataset folder (resumable: complete shards are kept).
        source_dir: folder with img_align_celeba.zip (or img_align_celeba/) and the annotation lists.
        size: output side in pixels.
        image_format: ``jpg`` (quality 95, 4:4:4) or ``png``.
        limit: keep only the first ``limit`` images of each split (for small subsets and tests).
        download: first fetch the official files into ``source_dir`` (resumable, md5-verified).
        workers: decoding processes.

    """
    source = Path(source_dir)
    if download:
        source.mkdir(parents=True, exist_ok=True)
        download_celeba(source)
    if not source.is_dir():
        raise InpaintbenchError(f"CelebA source {source} is not a folder")
    if not 16 <= size <= 1024:
        raise InpaintbenchError(f"--size must be between 16 and 1024, got {size}")
    partition = read_partition(source / PARTITION)
    images = _ImageSource(source)
    images.check()
    annotations: dict[str, tuple[list[str], dict[str, list[int]]]] = {}
    for key, filename, count_line in [("attributes", "list_attr_celeba.txt", True),
                                      ("landmarks", "list_landmarks_align_celeba.txt", True),
                                      ("identity", "identity_CelebA.txt", False)]:
        if (source / filename).is_file():
            annotations[key] = read_table(source / filename, count_line)
    candidates: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for name in sorted(partition):
        candidates[partition[name]].append(name)
    if limit is not None:
        candidates = {split: names[:limit] for split, names in candidates.items()}

    def make(name: str) -> Sample | Rejected:
        key = f"celeba-{Path(name).stem}"
        about = {"label": 0, "label_name": "face", "file": name}
        try:
            data = images.read(name)
        except ValueError as err:
            return Rejected(key, str(err), about)
        if data is None:
            return Rejected(key, "listed in the partition but missing from the images", about)
        try:
            square, original_size, (left, top, side) = _crop_resize(data, size)
        except IMAGE_ERRORS as err:
            return Rejected(key, image_error(err), about)
        encoded = encode_image(square, image_format)
        meta: dict[str, Any] = {"label_name": "face", "file": name, "crop_box": [left, top, left + side, top + side],
                                "license": "CelebA: non-commercial research purposes only",
                                "attribution": "Liu et al., Deep Learning Face Attributes in the Wild, ICCV 2015",
                                "url": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"}
        meta["original_size"] = list(original_size)
        for field, (names, table) in annotations.items():
            values = table.get(name)
            if values is not None:
                meta[field] = values[0] if field == "identity" else dict(zip(names, values, strict=True))
        # encoded already: the image field only carries the height and width
        return Sample(key=key, image=np.empty((size, size, 0), np.uint8), label=0, meta=meta, encoded=encoded)

    return write_dataset(
        Path(out), "celeba", candidates, make, classes=["face"],
        build_params={"source": "celeba", "size": size, "image_format": image_format, "limit": limit,
                      "crop": "centre square of the short side", "resize": "PIL Lanczos (antialiased)",
                      "annotations": sorted(annotations)},
        card={"title": f"CelebA, aligned faces, {size}x{size}",
              "description": "CelebA's aligned and cropped faces (Liu et al. 2015) with the official "
                             "train/val/test partition (list_eval_partition.txt), centre-cropped to a square and "
                             "resized with Pillow's antialiased Lanczos filter. Attributes, landmarks (in the "
                             "aligned 178x218 coordinates) and identities are in each sample's json when the "
                             "source has them.",
              "license": "CelebA is available for non-commercial research purposes only; see its agreement."},
        image_format=image_format,
        samples_per_shard=1000,
        workers=workers,
    )
