"""Talking to iNaturalist: observation listing by id_above pages, and photo download, verification and cache.

Both keep what they fetched in the dataset's ``.inat/`` folder as they go (listing pages and photo decisions
in JSONL files that a crash can only cut at the last line), so a rerun never asks for them again.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..._registry import InpaintbenchError
from ..polite import PermanentError, PoliteClient, TransientError
from ..shards import MAX_IMAGE_PIXELS, encode_image
from .recipe import ClassQuery, Recipe

PER_PAGE = 200  # the API's maximum
IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}  # iNaturalist stores jpg, jpeg, png and gif
RESIZE_NOTE = "centre square crop, then Pillow Lanczos (antialiased; reducing_gap=3)"


def _trim(observation: dict[str, Any]) -> dict[str, Any]:
    """The fields of an API observation that the build uses (the listing cache stays small)."""
    taxon = observation.get("taxon") or {}
    by_position = sorted(observation.get("observation_photos") or [], key=lambda p: p.get("position") or 0)
    photos = [p["photo"] for p in by_position if p.get("photo")] or observation.get("photos") or []
    user = observation.get("user") or {}
    return {
        "id": int(observation["id"]),
        "quality_grade": observation.get("quality_grade"),
        "captive": observation.get("captive"),
        "taxon": {k: taxon.get(k) for k in ("id", "name", "rank", "preferred_common_name")},
        "user": user.get("login"),
        "photos": [{k: p.get(k) for k in ("id", "license_code", "url", "attribution", "original_dimensions")}
                   for p in photos],
    }


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSONL file (a line cut by a crash is ignored)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().split("\n"):
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one line and make it durable before going on (a crash loses at most the line being written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


class Listing:
    """The observations of one class in id order: cached pages first, then the API, one page when needed."""

    def __init__(self, client: PoliteClient, api_url: str, cls: ClassQuery, licenses: tuple[str, ...],
                 cache: Path, limit: int | None) -> None:
        self.client, self.url, self.cache, self.limit = client, api_url.rstrip("/") + "/observations", cache, limit
        self.params = {"taxon_id": str(cls.taxon_id), "photos": "true", "photo_license": ",".join(licenses),
                       **dict(cls.query), "per_page": str(PER_PAGE), "order_by": "id", "order": "asc"}
        self.name = cls.name

    async def __aiter__(self):
        seen, last_id, exhausted = 0, 0, False
        for page in _read_jsonl(self.cache):
            for observation in page["results"]:
                if self.limit is not None and seen >= self.limit:
                    return
                seen += 1
                yield observation
            last_id, exhausted = page["last_id"], page["exhausted"]
        while not exhausted and (self.limit is None or seen < self.limit):
            id_above = last_id
            try:
                data = await self.client.get_json(self.url, {**self.params, "id_above": str(id_above)})
            except PermanentError as err:
                raise InpaintbenchError(f"the iNaturalist API refused the query of class {self.name!r}: {err}") \
                    from None
            except TransientError as err:
                raise InpaintbenchError(f"the iNaturalist API did not answer (class {self.name!r}, after retries): "
                                        f"{err}; what was fetched is kept, run the same command again") from None
            results = [_trim(o) for o in data.get("results", [])]
            ids = [o["id"] for o in results]
            if any(b <= a for a, b in zip([last_id, *ids], ids, strict=False)):
                raise InpaintbenchError(f"the API at {self.url} ignored id_above/order_by=id (ids not increasing)")
            exhausted = len(results) < PER_PAGE
            last_id = ids[-1] if ids else last_id
            _append_jsonl(self.cache, {"id_above": id_above, "last_id": last_id,
                                       "exhausted": exhausted, "results": results})
            for observation in results:
                if self.limit is not None and seen >= self.limit:
                    return
                seen += 1
                yield observation


def photo_url(square_url: str, size: str) -> str:
    """The URL of another size of a photo: the API gives the square one, the size word is swapped."""
    swapped, n = re.subn(r"/square(\.[A-Za-z0-9]+)(?=\?|$)", rf"/{size}\1", square_url)
    if n != 1:
        raise ValueError(f"unexpected photo URL {square_url!r}")
    return swapped


def process_photo(body: bytes, size: int, min_side: int, image_format: str, dest: Path) -> dict[str, Any]:
    """Verify downloaded bytes and write the centre-cropped, resized image to ``dest`` (atomically).

    Returns the decision: ``{"status": "ok", "sha256", "width", "height"}`` or ``{"status": "rejected",
    "reason"}``. The content decides, never the Content-Type header.
    """
    sha256 = hashlib.sha256(body).hexdigest()
    try:
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
            if image.format not in IMAGE_FORMATS:
                return {"status": "rejected", "reason": f"not a photo: {image.format} content"}
            if width * height > MAX_IMAGE_PIXELS:
                return {"status": "rejected", "reason": f"decompression bomb: {width}x{height} pixels"}
            if min(width, height) < min_side:
                return {"status": "rejected", "reason": f"too small: shorter side below {min_side} px"}
            image.load()  # the whole file: a cut or garbled photo fails here
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        head = body[:64].lstrip().lower()
        what = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not a recognised image format"
        return {"status": "rejected", "reason": f"not an image: {what}"}
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # "image file is truncated (17 bytes not processed)": drop the count, so reasons group in the card
        return {"status": "rejected", "reason": "corrupt image: " + re.sub(r"\s*\(\d+ bytes not processed\)", "",
                                                                         str(err))}
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    if side != size:
        square = square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    data = encode_image(square, image_format)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return {"status": "ok", "sha256": sha256, "width": width, "height": height}


class Photos:
    """Downloads, verifies and caches photos; the decision of every completed photo survives a crash."""

    def __init__(self, client: PoliteClient, recipe: Recipe, work: Path, workers: int) -> None:
        self.client, self.recipe = client, recipe
        self.folder = work / "photos"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = work / "photos.jsonl"
        self.known = {row["photo_id"]: row for row in _read_jsonl(self.log)}
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="inat-decode")
        self.downloaded = 0

    def path(self, photo_id: int) -> Path:
        """The cached, resized image of a photo."""
        return self.folder / f"{photo_id}.{self.recipe.image_format}"

    async def fetch(self, photo: dict[str, Any]) -> dict[str, Any]:
        """The decision for a photo: from the log when it was completed before, else download and verify."""
        photo_id = int(photo["id"])
        if photo_id in self.known and (self.known[photo_id]["status"] != "ok" or self.path(photo_id).exists()):
            return self.known[photo_id]
        try:
            url = photo_url(photo["url"], self.recipe.photo_size)
            body, _ = await self.client.get_media(url)
        except ValueError as err:
            outcome = {"status": "rejected", "reason": str(err)}
        except PermanentError as err:
            outcome = {"status": "rejected", "reason": f"download refused: {err}"}
        except TransientError as err:  # not remembered: a later run tries again
            return {"status": "failed", "reason": f"download failed after "
                                                  f"{self.client.politeness.max_retries + 1} tries: {err}"}
        else:
            self.downloaded += 1
            r = self.recipe
            outcome = await asyncio.get_running_loop().run_in_executor(
                self.pool, process_photo, body, r.size, r.min_side, r.image_format, self.path(photo_id))
        outcome = {"photo_id": photo_id, **outcome}
        _append_jsonl(self.log, outcome)
        self.known[photo_id] = outcome
        return outcome
