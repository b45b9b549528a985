"""Frozen evaluation mask sets: ``<root>/<name>/NNNNNN.png`` plus manifest.parquet and set.json."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from .._io import AlreadyThere, atomic_folder, remove_stale_partials
from .._registry import InpaintbenchError
from .generators import count_holes, touches_border
from .levels import draw_masks, resolve_spec
from .spec import MaskSpec

DEFAULT_ROOT = Path("masks/sets")
WRITE_ATTEMPTS = 5  # a set deleted by another process while this one freezes it: written again, at most this often


def mask_png(mask: np.ndarray) -> bytes:
    """Encode an H x W 0/1 mask as an 8-bit PNG with 255 = hole, with fixed settings (same bytes everywhere)."""
    buf = io.BytesIO()
    Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L").save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def _render_chunk(args: tuple[MaskSpec, int, int, int]) -> list[tuple[bytes, dict[str, Any]]]:
    spec, seed, start, n = args
    rows = []
    for i, mask in enumerate(draw_masks(spec, n, seed=seed, start=start)[:, 0]):
        data = mask_png(mask)
        rows.append((data, {"index": start + i, "area_ratio": float(mask.mean()), "components": count_holes(mask),
                            "touches_border": touches_border(mask), "sha256": hashlib.sha256(data).hexdigest()}))
    return rows


def default_set_name(level: str, size: int, count: int, seed: int, version: int = 1) -> str:
    """The conventional folder name of a frozen set; a spec past its first drawing version adds ``-v<version>``.

    The version in the name keeps the sets of a corrected preset apart from those made before the correction:
    a new set is drawn next to the old one, never mistaken for it (harness run ids hash the set's content).
    """
    tag = f"-v{version}" if version > 1 else ""
    return f"{level}{tag}-{size}px-n{count}-seed{seed}"


def make_mask_set(level_or_spec: str | MaskSpec, count: int = 1000, size: int | None = None, seed: int = 0,
                  out: str | Path | None = None, workers: int = 1) -> Path:
    """Generate and freeze a mask set; return its folder. An existing identical set is kept as it is.

    Args:
        level_or_spec: a level or preset name, or a MaskSpec.
        count: number of masks.
        size: resolution (default: the spec's).
        seed: the set's seed; mask i depends only on (spec, size, seed, i).
        out: the set's folder (default masks/sets/<level>[-v<version>]-<size>px-n<count>-seed<seed>).
        workers: processes; the bytes do not depend on it.

    """
    spec = resolve_spec(level_or_spec).with_size(size)
    name = level_or_spec if isinstance(level_or_spec, str) else "custom"
    if count < 1:
        raise InpaintbenchError(f"--count must be at least 1, got {count}")
    folder = Path(out) if out is not None else DEFAULT_ROOT / default_set_name(name, spec.size, count, seed,
                                                                               spec.version)
    info = {"name": name, "spec": spec.to_dict(), "count": count, "size": spec.size, "seed": seed,
            "polarity": "255 = hole, 0 = known"}
    existing = _read_info_if_there(folder)
    if existing is not None:
        if isinstance(existing.get("spec"), dict):
            existing["spec"].setdefault("version", 1)  # sets written before specs had versions are version 1
        if existing == info:
            return folder
        old = existing.get("spec", {}).get("version") if isinstance(existing.get("spec"), dict) else None
        why = f" (drawing version {old}, this spec draws version {spec.version})" if old != spec.version else ""
        raise InpaintbenchError(f"{folder} holds a different mask set{why}; choose another --out or delete it")
    chunk = max(1, min(256, -(-count // max(1, workers))))
    jobs = [(spec, seed, start, min(chunk, count - start)) for start in range(0, count, chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = [row for part in pool.map(_render_chunk, jobs) for row in part]
    else:
        results = [row for job in jobs for row in _render_chunk(job)]
    _write_set(folder, [data for data, _ in results], [row for _, row in results], info)
    return folder


_SET_FILE = re.compile(r"\d{6}\.png|manifest\.parquet")  # what a set holds besides set.json


def _write_set(folder: Path, pngs: list[bytes], rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """Write a set into a temporary folder and rename it: a set is either complete or absent.

    Several processes may freeze the same set at once (two suites sharing masks/sets/): each writes its own
    temporary folder, the first rename wins, and the others keep the winner's set when it is the same one.
    """
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    remove_stale_partials(folder.parent, prefix=folder.name)
    if folder.is_dir() and not (folder / "set.json").exists():
        foreign = sorted(p.name for p in folder.iterdir() if not _SET_FILE.fullmatch(p.name))
        if foreign:  # not a set being deleted (its PNGs and manifest): the user's own folder, left as it is
            raise InpaintbenchError(f"{folder} is a folder of other files ({', '.join(foreign[:3])}), not a mask set: "
                                    "choose another --out")
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with atomic_folder(folder, "writing the mask set", replace=False) as tmp:
                for row, png in zip(rows, pngs, strict=True):
                    (tmp / f"{row['index']:06d}.png").write_bytes(png)
                pd.DataFrame(rows).to_parquet(tmp / "manifest.parquet", index=False)
                (tmp / "set.json").write_text(text)
            return
        except AlreadyThere:
            try:
                theirs = (folder / "set.json").read_text()
            except (FileNotFoundError, NotADirectoryError):  # the winner's set is being deleted: write ours again
                time.sleep(0.05 * (attempt + 1))
                continue
            if theirs != text:
                raise InpaintbenchError(f"{folder} holds a different mask set; choose another --out or delete it"
                                        ) from None
            return
    raise InpaintbenchError(f"{folder} is there without its set.json (being deleted, or a set half-deleted): "
                            "delete it and freeze the set again")


def _read_info_if_there(folder: Path) -> dict[str, Any] | None:
    """The set.json of a frozen set at ``folder``, or None when there is none (or it vanished while read)."""
    try:
        return json.loads((folder / "set.json").read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None


class MaskSetMismatch(InpaintbenchError):
    """A frozen set whose files differ from what its manifest recorded when it was frozen.

    ``path`` is the first file that differs (a mask, the manifest or set.json).
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def _read_part(path: Path, read: Any) -> Any:
    """Read one file of a set, an unreadable one (truncated, not JSON or parquet) being a MaskSetMismatch."""
    try:
        return read(path)
    except (OSError, ValueError) as err:  # pyarrow's and json's decoding errors are ValueError or OSError
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise MaskSetMismatch(f"mask set {path.parent}: {path} is unreadable ({first})", path) from None


def _read_set(folder: str | Path) -> tuple[list[bytes], pd.DataFrame, dict[str, Any]]:
    """The PNG bytes, manifest and set.json of a frozen set, each mask checked against its manifest sha256."""
    folder = Path(folder)
    if not (folder / "set.json").exists():
        raise InpaintbenchError(
            f"no mask set at {folder} (set.json is missing); make it with `inpaintbench masks make`")
    info = _read_part(folder / "set.json", lambda p: json.loads(p.read_text()))
    manifest = _read_part(folder / "manifest.parquet", pd.read_parquet)
    if "sha256" not in manifest or "index" not in manifest:
        raise MaskSetMismatch(f"mask set {folder}: manifest.parquet has no index/sha256 columns",
                              folder / "manifest.parquet")
    if isinstance(info.get("count"), int) and info["count"] != len(manifest):
        raise MaskSetMismatch(f"mask set {folder}: manifest.parquet lists {len(manifest)} masks, set.json says "
                              f"{info['count']}", folder / "manifest.parquet")
    pngs = []
    for index, expected in zip(manifest["index"], manifest["sha256"], strict=True):
        path = folder / f"{int(index):06d}.png"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MaskSetMismatch(f"mask set {folder}: {path} is missing (its manifest lists it)", path) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise MaskSetMismatch(f"mask set {folder}: {path} does not match the manifest (sha256 {actual[:12]}..., "
                                  f"recorded {str(expected)[:12]}...): it changed after the set was frozen", path)
        pngs.append(data)
    return pngs, manifest, info


def verify_mask_set(folder: str | Path) -> None:
    """Check every mask of a frozen set against the sha256 its manifest recorded when the set was frozen.

    Raises:
        MaskSetMismatch: naming the first file that is missing, unreadable or changed.
        InpaintbenchError: when there is no set at ``folder``.

    """
    _read_set(folder)


def load_mask_set(folder: str | Path) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Read a frozen set: masks (uint8 N x 1 x H x W, 1 = hole), its manifest and set.json.

    Every mask is checked against the sha256 its manifest recorded (see :func:`verify_mask_set`), so a file
    replaced after the set was frozen, even by another valid PNG, is an error naming it, never other numbers.
    """
    pngs, manifest, info = _read_set(folder)
    masks = np.stack([(np.asarray(Image.open(io.BytesIO(data))) > 127).astype(np.uint8)[None] for data in pngs])
    return masks, manifest, info


def set_fingerprint(folder: str | Path) -> str:
    """A short hash of a frozen set's content (from the per-mask sha256 in its manifest)."""
    manifest = pd.read_parquet(Path(folder) / "manifest.parquet")
    return hashlib.sha256("".join(manifest["sha256"]).encode()).hexdigest()[:16]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAX_MEMBER_BYTES = 64 << 20  # a mask file larger than this is refused (zip-bomb guard)
# all the files of one import are read into memory: more than this in all is refused before any is read (NVIDIA's
# 12,000 test masks, the largest published set, hold well under a tenth of it)
MAX_SET_BYTES = 2 << 30


def area_bin(area: float) -> int:
    """NVIDIA's hole-ratio bin: 1 for (0.01, 0.1], 2 for (0.1, 0.2], ..., 6 for (0.5, 0.6]; 0 outside."""
    from .levels import NVIDIA_BINS

    for k, (lo, hi) in enumerate(NVIDIA_BINS):
        if lo < area <= hi:
            return k + 1
    return 0


def nvidia_label(name: str) -> tuple[int, str] | None:
    """NVIDIA's published bin and border label of a test-mask file, from its number (None off that layout).

    test_mask.zip numbers its 12,000 masks 00000-11999: 2,000 per area bin in bin order, the first 1,000 of
    each "with border", the next 1,000 "no border".
    """
    stem = Path(name).stem
    if len(stem) != 5 or not stem.isdigit() or int(stem) >= 12000:
        return None
    number = int(stem)
    return number // 2000 + 1, "with border" if number % 2000 < 1000 else "no border"


def _nvidia_selection(members: list[tuple[str, bytes]], nvidia_bin: int | None, border: str | None,
                      source: Path) -> list[tuple[str, bytes]]:
    """The members of one published NVIDIA bin and/or border label (chosen by file number, before decoding)."""
    if nvidia_bin is not None and not 1 <= nvidia_bin <= 6:
        raise InpaintbenchError(f"--nvidia-bin must be 1-6 (NVIDIA's six area bins), got {nvidia_bin}")
    if border is not None and border not in ("with", "no"):
        raise InpaintbenchError(f"--nvidia-border must be 'with' or 'no', got {border!r}")
    kept = []
    for name, data in members:
        label = nvidia_label(name)
        if label and (nvidia_bin is None or label[0] == nvidia_bin) \
                and (border is None or label[1] == f"{border} border"):
            kept.append((name, data))
    if not kept:
        raise InpaintbenchError(f"{source}: no file of NVIDIA's test-mask layout (00000-11999) is in bin "
                                f"{nvidia_bin or 'any'} with border label {border or 'any'}")
    return kept


def _external_members(source: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of the image files of a folder or a zip, sorted by name; nothing is extracted."""
    import zipfile

    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        sizes = [path.stat().st_size for path in files]
        for path, size in zip(files, sizes, strict=True):
            if size > MAX_MEMBER_BYTES:
                raise InpaintbenchError(f"{path} is larger than {MAX_MEMBER_BYTES >> 20} MiB; not a mask file")
        _check_set_bytes(source, sum(sizes))
        return [(str(p.relative_to(source)), p.read_bytes()) for p in files]
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            infos = [info for info in sorted(archive.infolist(), key=lambda i: i.filename)
                     if not info.is_dir() and info.filename.lower().endswith(IMAGE_SUFFIXES)]
            for info in infos:
                if info.file_size > MAX_MEMBER_BYTES:
                    raise InpaintbenchError(f"{source}: member {info.filename} declares {info.file_size} bytes; "
                                            "refused as a possible zip bomb")
            _check_set_bytes(source, sum(info.file_size for info in infos))
            # zipfile checks each member's CRC and stops at its declared size: a member cannot inflate past it
            return [(info.filename, archive.read(info)) for info in infos]
    if source.exists():
        raise InpaintbenchError(f"{source} is neither a folder nor a zip archive")
    raise InpaintbenchError(f"{source} does not exist")


def _check_set_bytes(source: Path, total: int) -> None:
    if total > MAX_SET_BYTES:
        raise InpaintbenchError(f"{source} holds {total} bytes of mask files in all, more than "
                                f"{MAX_SET_BYTES >> 30} GiB; refused as a possible zip bomb")


def import_masks(source: str | Path, holes: str, out: str | Path | None = None, size: int | None = None,
                 threshold: int = 127, nvidia_bin: int | None = None, nvidia_border: str | None = None) -> Path:
    """Bring an external mask set (a folder or zip of images) into a frozen set; return its folder.

    Each image is read as 8-bit grey, binarised at ``threshold`` with the stated polarity, resized to
    ``size`` x ``size`` with nearest-neighbour sampling (never interpolated, so masks stay binary), and measured
    (area ratio, components, border contact, NVIDIA area bin). On NVIDIA's test-mask layout (files
    00000-11999) each row also gets the file's published bin and border label (``nvidia_bin``,
    ``nvidia_border``), which can differ from ``area_bin`` near the bin edges once resized. Member names are
    only read, never used as paths. Example: the NVIDIA irregular test masks,
    ``import_masks("test_mask.zip", holes="white", size=256)``.

    Args:
        source: folder or zip file of mask images.
        holes: ``white`` if holes are the bright pixels, ``black`` if they are the dark ones.
        out: the set's folder (default masks/sets/imported-<source name>-<size>px).
        size: output side in pixels (default: keep the images' size; then all must be square and equal).
        threshold: grey level separating the two classes (pixels above it are white).
        nvidia_bin: keep only the files of this published NVIDIA area bin (1-6, by file number): one bin per set,
            as PConv's protocol reports them.
        nvidia_border: keep only the files labelled ``with border`` or ``no border`` (``with`` / ``no``).

    """
    from ..datasets.shards import IMAGE_ERRORS, MAX_IMAGE_PIXELS

    if holes not in ("white", "black"):
        raise InpaintbenchError(f"--holes must be 'white' or 'black' (the polarity of the source), got {holes!r}")
    if not 0 <= threshold <= 254:  # outside it one class is empty: every mask would be frozen all hole or none
        raise InpaintbenchError(f"--threshold must be a grey level from 0 to 254, got {threshold}")
    if size is not None and size < 1:
        raise InpaintbenchError(f"--size must be a positive number of pixels, got {size}")
    source = Path(source)
    members = _external_members(source)
    if not members:
        raise InpaintbenchError(f"{source} holds no mask images ({', '.join(IMAGE_SUFFIXES)})")
    if nvidia_bin is not None or nvidia_border is not None:
        members = _nvidia_selection(members, nvidia_bin, nvidia_border, source)
    rows, pngs = [], []
    for index, (name, data) in enumerate(members):
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise InpaintbenchError(f"{source}: {name} has {image.width}x{image.height} pixels; refused")
                grey = image.convert("L")
        except InpaintbenchError:
            raise  # the pixel guard's own message (an InpaintbenchError is a ValueError too)
        except IMAGE_ERRORS as err:
            raise InpaintbenchError(f"{source}: {name} is not a readable image ({err})") from None
        target = size or grey.width
        if size is None and grey.width != grey.height:
            raise InpaintbenchError(f"{source}: {name} is {grey.width}x{grey.height}; pass --size for a square")
        if grey.size != (target, target):
            grey = grey.resize((target, target), Image.Resampling.NEAREST)
        pixels = np.asarray(grey)
        mask = pixels > threshold if holes == "white" else pixels <= threshold
        png = mask_png(mask)
        area = float(mask.mean())
        rows.append({"index": index, "source_name": name, "area_ratio": area, "components": count_holes(mask),
                     "touches_border": touches_border(mask), "area_bin": area_bin(area),
                     "sha256": hashlib.sha256(png).hexdigest()})
        pngs.append(png)
    labels = [nvidia_label(row["source_name"]) for row in rows]
    if all(labels):  # NVIDIA's layout: its published bin and border label next to the measured bin
        for row, (nvidia_bin, border) in zip(rows, labels, strict=True):
            row["nvidia_bin"], row["nvidia_border"] = nvidia_bin, border
    sizes = {Image.open(io.BytesIO(p)).size for p in pngs}
    if len(sizes) != 1:
        raise InpaintbenchError(f"{source}: masks of several sizes {sorted(sizes)}; pass --size")
    side = sizes.pop()[0]
    folder = Path(out) if out is not None else DEFAULT_ROOT / f"imported-{source.stem}-{side}px"
    if folder.exists():
        raise InpaintbenchError(f"{folder} already exists; choose another --out or delete it")
    info = {"name": folder.name, "source": source.name, "polarity": f"source holes are {holes}", "threshold": threshold,
            "count": len(rows), "size": side, "resize": "nearest" if size else "none"}
    _write_set(folder, pngs, rows, info)
    return folder
