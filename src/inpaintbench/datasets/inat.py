"""iNaturalist: a balanced, openly licensed image dataset from the iNaturalist API v1 (cats, dogs, birds).

The recipe (``datasets/inat-cats-dogs-birds.toml``) names the classes (taxon ids and per-class query
options), the allowed photo licenses, the image size and the split fractions. The build runs in three steps:

1. **Listing.** ``GET /observations`` per class with ``photos=true``, the license filter, ``per_page=200`` and
   ``order_by=id&order=asc&id_above=<last id>`` (page numbers stop at 10,000 results). Every page is cached
   in ``.inat/listing/<class>.jsonl`` as it arrives, and pages are only requested when candidates run out.
2. **Selection and download.** Observations are taken in id order; per observation the first photo (by
   position) whose own ``license_code`` is allowed (null = all rights reserved = excluded), optionally at most
   ``max_per_species`` per species, duplicates removed by photo id and by content hash, until the class has
   its count. Photos download concurrently (bounded) but are decided in id order, so the selection does not
   depend on timing. Each photo is verified (an image by content, fully decodable, a minimum size, no
   decompression bomb), centre-cropped and resized; the result and the decision are kept in
   ``.inat/photos/`` and ``.inat/photos.jsonl``, so a rerun never downloads a completed photo again.
   Transient failures (5xx, 429, timeouts, resets, cut bodies) are retried and, when the retries run out,
   skipped without being remembered, so a later run tries them again.
3. **Shards.** Splits by observation, stratified per class, deterministic (a seeded hash of the observation
   id); shards through datasets/shards.py, ``ATTRIBUTION.csv`` and a dataset card with counts per class,
   split, license and species.

Politeness (datasets/polite.py): at most ``requests_per_second`` API requests (default 1), at most
``requests_per_day`` in any 24 hours (default 10,000, counted across runs), a media budget (default 5 GB per
hour), a User-Agent naming inpaintbench and the user's contact, Retry-After honoured.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import hashlib
import io
import json
import os
import re
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._registry import InpaintbenchError
from .polite import PermanentError, PoliteClient, Politeness, TransientError
from .shards import MAX_IMAGE_PIXELS, Rejected, Sample, encode_image, write_dataset

OFFICIAL_API = "https://api.inaturalist.org/v1"
DEFAULT_RECIPE = "datasets/inat-cats-dogs-birds.toml"
PER_PAGE = 200  # the API's maximum
PHOTO_SIZES = ("square", "small", "medium", "large", "original")
# Photo licenses as the API spells them (photo.license_code); null means all rights reserved.
LICENSES = ("cc0", "cc-by", "cc-by-sa", "cc-by-nc", "cc-by-nc-sa", "cc-by-nd", "cc-by-nc-nd")
LICENSE_URLS = {"cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
                **{code: f"https://creativecommons.org/licenses/{code[3:]}/4.0/" for code in LICENSES[1:]}}
IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}  # iNaturalist stores jpg, jpeg, png and gif
RESIZE_NOTE = "centre square crop, then Pillow Lanczos (antialiased; reducing_gap=3)"


# ----------------------------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class ClassQuery:
    """One class of the recipe: its taxon and the extra API parameters of its query."""

    name: str
    taxon_id: int
    query: tuple[tuple[str, str], ...] = ()
    max_per_species: int | None = None


@dataclass(frozen=True)
class Recipe:
    """What to build: classes, image count, licenses, sizes, splits, and how politely to fetch."""

    name: str
    classes: tuple[ClassQuery, ...]
    total: int = 20_000
    size: int = 256
    image_format: str = "jpg"
    photo_size: str = "large"
    min_side: int = 256
    licenses: tuple[str, ...] = ("cc0", "cc-by", "cc-by-sa", "cc-by-nc", "cc-by-nc-sa")
    photos_per_observation: int = 1
    splits: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.1), ("test", 0.1))
    seed: int = 0
    samples_per_shard: int = 1000
    politeness: Politeness = field(default_factory=Politeness)

    def per_class(self) -> dict[str, int]:
        """Images wanted per class: ``total`` split as evenly as possible, the first classes get the rest."""
        base, extra = divmod(self.total, len(self.classes))
        return {c.name: base + (i < extra) for i, c in enumerate(self.classes)}

    def output_params(self) -> dict[str, Any]:
        """Everything that determines the built dataset (not the politeness settings)."""
        params = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "politeness"}
        params["classes"] = [{"name": c.name, "taxon_id": c.taxon_id, "query": dict(c.query),
                              "max_per_species": c.max_per_species} for c in self.classes]
        params["splits"] = dict(self.splits)
        return params


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe TOML file (see datasets/inat-cats-dogs-birds.toml for every key)."""
    path = Path(path)
    if not path.is_file():
        raise InpaintbenchError(f"recipe {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InpaintbenchError(f"recipe {path} is not valid TOML: {err}") from None
    return recipe_from_dict(data, str(path))


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    """Build a Recipe from its TOML content, with one-line errors for unknown keys and bad values."""
    data = dict(data)
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InpaintbenchError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    classes = []
    for name, spec in (data.pop("classes", None) or {}).items():
        spec = dict(spec)
        bad = sorted(set(spec) - {"taxon_id", "query", "max_per_species"})
        if bad or "taxon_id" not in spec:
            raise InpaintbenchError(f"{where}: class {name!r} needs taxon_id and takes query, max_per_species "
                                    f"(unknown: {', '.join(bad) or 'none'})")
        query = tuple(sorted((str(k), _query_value(v)) for k, v in (spec.get("query") or {}).items()))
        classes.append(ClassQuery(name, int(spec["taxon_id"]), query, spec.get("max_per_species")))
    if not classes:
        raise InpaintbenchError(f"{where}: no [classes.<name>] tables")
    politeness = Politeness(**data.pop("politeness", {}))
    splits = tuple((str(k), float(v)) for k, v in (data.pop("splits", None) or {"train": .8, "val": .1,
                                                                                  "test": .1}).items())
    recipe = Recipe(classes=tuple(classes), politeness=politeness, splits=splits,
                    licenses=tuple(data.pop("licenses", Recipe.licenses)), **data)
    _check(recipe, where)
    return recipe


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _check(recipe: Recipe, where: str) -> None:
    bad = sorted(set(recipe.licenses) - set(LICENSES))
    if bad or not recipe.licenses:
        raise InpaintbenchError(f"{where}: licenses must be among {', '.join(LICENSES)} (got {bad or 'none'})")
    if recipe.photo_size not in PHOTO_SIZES:
        raise InpaintbenchError(f"{where}: photo_size must be one of {', '.join(PHOTO_SIZES)}")
    if {name for name, _ in recipe.splits} - {"train", "val", "test"} or abs(
            sum(f for _, f in recipe.splits) - 1) > 1e-9 or any(f < 0 for _, f in recipe.splits):
        raise InpaintbenchError(f"{where}: splits must be train/val/test fractions that sum to 1")
    if recipe.total < len(recipe.classes) or recipe.size < 8 or recipe.min_side < 1:
        raise InpaintbenchError(f"{where}: total must cover every class, size >= 8, min_side >= 1")
    if recipe.image_format not in ("jpg", "png") or recipe.photos_per_observation < 1:
        raise InpaintbenchError(f"{where}: image_format is jpg or png; photos_per_observation >= 1")
    if len({c.name for c in recipe.classes}) != len(recipe.classes) or any(
            not re.fullmatch(r"[a-z0-9_]+", c.name) for c in recipe.classes):
        raise InpaintbenchError(f"{where}: class names must be unique lowercase words")


# ---------------------------------------------------------------------------------------------- listing


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


# ------------------------------------------------------------------------------------------- photos


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
    data = encode_image(np.asarray(square), image_format)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return {"status": "ok", "sha256": sha256, "width": width, "height": height}


@dataclass
class Candidate:
    """One observation (and one of its photos) considered for a class, with the decision."""

    label: int
    observation: dict[str, Any]
    photo: dict[str, Any] | None
    reason: str = ""
    outcome: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """``inat-<photo id>``, or ``inat-o<observation id>`` for an observation without a usable photo."""
        return f"inat-{self.photo['id']}" if self.photo else f"inat-o{self.observation['id']}"

    @property
    def species(self) -> str:
        """The species the per-species cap counts (the taxon's name; subspecies count as their species)."""
        taxon = self.observation["taxon"]
        name = taxon.get("name") or "unknown"
        # subspecies and varieties count towards their species
        return " ".join(name.split()[:2]) if taxon.get("rank") in ("subspecies", "variety", "form") else name


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


def _photos_of(observation: dict[str, Any], licenses: tuple[str, ...], count: int) -> tuple[list[dict], str]:
    """The first ``count`` photos (by position) with an allowed license, or a reason why there are none."""
    photos = observation["photos"]
    allowed = [p for p in photos if p.get("license_code") in licenses]
    if allowed:
        return allowed[:count], ""
    if not photos:
        return [], "observation without photos"
    codes = sorted({p.get("license_code") or "all rights reserved" for p in photos})
    return [], f"no photo with an allowed license ({', '.join(codes)})"


async def select_class(label: int, cls: ClassQuery, target: int, listing: Listing, photos: Photos,
                       recipe: Recipe, seen_photos: set[int], seen_hashes: dict[str, str],
                       ) -> tuple[list[Candidate], list[Candidate]]:
    """Accept photos of one class in observation-id order until ``target``; return (accepted, rejected).

    Downloads run ahead of the decisions in a window (bounded by the client's concurrency), but each
    candidate is decided in order, so the result does not depend on which download finishes first.
    ``seen_photos`` and ``seen_hashes`` carry the photo ids and content hashes of the classes decided
    before, so one picture never appears twice, not even under two classes.
    """
    accepted: list[Candidate] = []
    rejected: list[Candidate] = []
    per_species: collections.Counter[str] = collections.Counter()
    pending_species: collections.Counter[str] = collections.Counter()
    window: collections.deque[tuple[Candidate, asyncio.Task | None]] = collections.deque()
    cap = cls.max_per_species
    ahead = 4 * recipe.politeness.concurrency  # deep enough that one photo in its retries does not stall the rest
    source = listing.__aiter__()
    exhausted = False

    def start(candidate: Candidate) -> asyncio.Task | None:
        if candidate.reason or (cap is not None and per_species[candidate.species]
                                + pending_species[candidate.species] >= cap):
            return None
        pending_species[candidate.species] += 1
        return asyncio.ensure_future(photos.fetch(candidate.photo))

    async def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(window) < ahead and sum(t is not None for _, t in window) < (
                target - len(accepted)) * 1.25 + 4:
            try:
                observation = await source.__anext__()
            except StopAsyncIteration:
                exhausted = True
                return
            chosen, reason = _photos_of(observation, recipe.licenses, recipe.photos_per_observation)
            for photo in chosen or [None]:
                candidate = Candidate(label, observation, photo, reason)
                if photo is not None and int(photo["id"]) in seen_photos:
                    candidate.reason = "duplicate photo id"
                elif photo is not None:
                    seen_photos.add(int(photo["id"]))
                window.append((candidate, start(candidate)))

    try:
        while len(accepted) < target:
            await refill()
            if not window:
                break
            candidate, task = window.popleft()
            if task is not None:
                pending_species[candidate.species] -= 1
            if not candidate.reason and cap is not None and per_species[candidate.species] >= cap:
                candidate.reason = f"species cap of {cap} reached ({candidate.species})"
            if candidate.reason:
                rejected.append(candidate)
                continue
            candidate.outcome = await (task or asyncio.ensure_future(photos.fetch(candidate.photo)))
            sha = candidate.outcome.get("sha256")
            if candidate.outcome["status"] != "ok":
                candidate.reason = candidate.outcome["reason"]
            elif sha in seen_hashes:
                candidate.reason = f"duplicate content of {seen_hashes[sha]}"
            if candidate.reason:
                rejected.append(candidate)
                continue
            seen_hashes[sha] = candidate.key
            per_species[candidate.species] += 1
            accepted.append(candidate)
    finally:
        unneeded = [task for _, task in window if task is not None]  # downloads beyond the target
        for task in unneeded:
            task.cancel()
        await asyncio.gather(*unneeded, return_exceptions=True)
    return accepted, rejected


# ---------------------------------------------------------------------------------------------- build


def _rank(seed: int, observation_id: int) -> str:
    return hashlib.sha256(f"{seed}:{observation_id}".encode()).hexdigest()


def assign_splits(accepted: list[Candidate], rejected: list[Candidate], recipe: Recipe) -> dict[str, list]:
    """Split by observation, stratified per class, deterministic.

    Within a class, observations ranked by a seeded hash fill train, val and test to their fractions (all
    photos of an observation stay together); rejected candidates go where their observation's hash falls.
    """
    names = [name for name, _ in recipe.splits]
    splits: dict[str, list[Candidate]] = {name: [] for name in names}
    by_class: dict[int, list[Candidate]] = collections.defaultdict(list)
    for candidate in accepted:
        by_class[candidate.label].append(candidate)
    for items in by_class.values():
        order = sorted({c.observation["id"] for c in items}, key=lambda o: _rank(recipe.seed, o))
        quotas, cumulative = [], 0.0
        for _, fraction in recipe.splits:
            cumulative += fraction
            quotas.append(round(cumulative * len(items)))
        photos_of = collections.defaultdict(list)
        for c in items:
            photos_of[c.observation["id"]].append(c)
        filled, split_index = 0, 0
        for observation_id in order:
            while split_index < len(names) - 1 and filled >= quotas[split_index]:
                split_index += 1
            splits[names[split_index]] += photos_of[observation_id]
            filled += len(photos_of[observation_id])
    edges = np.cumsum([f for _, f in recipe.splits])
    for candidate in rejected:
        u = int(_rank(recipe.seed, candidate.observation["id"])[:12], 16) / 16**12
        splits[names[min(int(np.searchsorted(edges, u, side="right")), len(names) - 1)]].append(candidate)
    # shards mix the classes: a seeded order of (observation, key) inside each split
    return {name: sorted(items, key=lambda c: (_rank(recipe.seed, c.observation["id"]), c.key))
            for name, items in splits.items()}


def _meta(candidate: Candidate, recipe: Recipe, photo_size: str) -> dict[str, Any]:
    observation, photo, taxon = candidate.observation, candidate.photo or {}, candidate.observation["taxon"]
    dims = photo.get("original_dimensions") or {}
    return {
        "label_name": recipe.classes[candidate.label].name,
        "observation_id": observation["id"],
        "observation_url": f"https://www.inaturalist.org/observations/{observation['id']}",
        "photo_id": photo.get("id"),
        "taxon_id": taxon.get("id"),
        "taxon_name": taxon.get("name"),
        "species": candidate.species,
        "common_name": taxon.get("preferred_common_name"),
        "quality_grade": observation.get("quality_grade"),
        "captive": observation.get("captive"),
        "observer": observation.get("user"),
        "license": photo.get("license_code") or "all rights reserved",
        "attribution": photo.get("attribution"),
        "url": photo_url(photo["url"], photo_size) if photo.get("url") else None,
        "original_width": dims.get("width"),
        "original_height": dims.get("height"),
    }


def write_attribution(path: Path, accepted: list[Candidate], recipe: Recipe) -> None:
    """ATTRIBUTION.csv: per image what CC licenses ask for: creator, source, license and link, changes made."""
    rows = []
    for c in sorted(accepted, key=lambda c: c.key):
        meta = _meta(c, recipe, recipe.photo_size)
        rows.append({"key": c.key, "creator_attribution": meta["attribution"], "observer": meta["observer"],
                     "source_url": meta["observation_url"], "photo_url": meta["url"], "license": meta["license"],
                     "license_url": LICENSE_URLS.get(meta["license"], ""), "taxon_name": meta["taxon_name"],
                     "changes": f"{RESIZE_NOTE} to {recipe.size}x{recipe.size}, re-encoded as {recipe.image_format}"})
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["key"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _card(recipe: Recipe, accepted: list[Candidate], shortfall: dict[str, int], api_url: str) -> dict[str, str]:
    from tabulate import tabulate

    species = collections.Counter((recipe.classes[c.label].name, c.species) for c in accepted)
    top = [[cls, name, n] for (cls, name), n in sorted(species.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))]
    by_class: dict[str, list] = collections.defaultdict(list)
    for row in top:
        by_class[row[0]].append(row)
    shown = [row for rows in by_class.values() for row in rows[:10]]
    lines = [
        f"Photos of {', '.join(c.name for c in recipe.classes)} from iNaturalist observations ({api_url}), "
        f"selected in observation-id order with photo licenses {', '.join(recipe.licenses)}; "
        f"{recipe.photos_per_observation} photo(s) per observation; {recipe.photo_size} photos, {RESIZE_NOTE}, "
        f"to {recipe.size}x{recipe.size}. Splits are by observation, stratified per class.",
        "",
        "Every image keeps its own license: see ATTRIBUTION.csv (creator, source, license, changes) and the "
        "`license`/`attribution` fields of each sample. Follow the iNaturalist terms and each license "
        "(NC: no commercial use; SA: share derivatives alike).",
        "",
        "## Classes",
        "",
        tabulate([[c.name, c.taxon_id, ", ".join(f"{k}={v}" for k, v in c.query) or "-",
                   c.max_per_species or "-", len({s for (n, s) in species if n == c.name})]
                  for c in recipe.classes],
                 headers=["class", "taxon id", "query", "max per species", "species"], tablefmt="github"),
        "",
        "## Most frequent species (up to 10 per class)",
        "",
        tabulate(shown, headers=["class", "species", "images"], tablefmt="github") if shown else "(none)",
    ]
    if any(shortfall.values()):
        lines += ["", "## Shortfall", "", "The source ran out before these classes reached their count:", "",
                  tabulate(sorted(shortfall.items()), headers=["class", "missing images"], tablefmt="github")]
    return {"title": f"Dataset card: {recipe.name}", "description": "\n".join(lines),
            "license": "Images: per-image Creative Commons licenses (see the table above and ATTRIBUTION.csv)."}


def user_agent(contact: str) -> str:
    """The User-Agent of every request: the tool, its version and who to contact."""
    import inpaintbench

    return f"inpaintbench/{inpaintbench.__version__} (inpainting research dataset builder; contact: {contact})"


async def _scrape(recipe: Recipe, work: Path, api_url: str, targets: dict[str, int], limit: int | None,
                  workers: int) -> tuple[list[Candidate], list[Candidate], dict[str, Any]]:
    async with PoliteClient(recipe.politeness, user_agent(recipe.politeness.contact),
                            work / "api_requests.log") as client:
        photos = Photos(client, recipe, work, workers)
        try:
            # Classes one after the other (downloads are concurrent within a class), so that a picture found
            # under two classes is always kept by the first one.
            seen_photos: set[int] = set()
            seen_hashes: dict[str, str] = {}
            results = []
            for i, c in enumerate(recipe.classes):
                listing = Listing(client, api_url, c, recipe.licenses, work / "listing" / f"{c.name}.jsonl", limit)
                results.append(await select_class(i, c, targets[c.name], listing, photos, recipe, seen_photos,
                                                  seen_hashes))
        finally:
            photos.pool.shutdown(wait=True)
        stats = {"api_requests": client.api_requests, "media_bytes": client.media_bytes,
                 "photos_downloaded": photos.downloaded}
    accepted = [c for a, _ in results for c in a]
    rejected = [c for _, r in results for c in r]
    return accepted, rejected, stats


def build_inat(out: str | Path, recipe: str | Path = DEFAULT_RECIPE, api_url: str = OFFICIAL_API,
               per_class: int | None = None, limit_per_class: int | None = None, contact: str | None = None,
               size: int | None = None, seed: int | None = None, image_format: str | None = None,
               concurrency: int | None = None, workers: int = 2) -> dict[str, Any]:
    """Scrape the recipe's classes from the iNaturalist API into shards; return dataset.json's content.

    Args:
        out: dataset folder. Its ``.inat/`` subfolder caches listing pages and photos, so rerunning the same
            command after a crash or a spent daily budget continues where it stopped.
        recipe: recipe TOML (classes, licenses, sizes, splits, politeness).
        api_url: API root; point it at a local server for tests and benchmarks.
        per_class: images per class instead of the recipe's total (small runs).
        limit_per_class: list at most this many observations per class (small runs; a shortfall is reported).
        contact: e-mail or URL sent in the User-Agent; required for the official API.
        size: output side instead of the recipe's (also its minimum photo side, when that was larger).
        seed: split seed instead of the recipe's.
        image_format: ``jpg`` or ``png`` instead of the recipe's.
        concurrency: downloads in flight instead of the recipe's.
        workers: threads that verify, crop and resize photos.

    """
    spec = load_recipe(recipe)
    politeness = replace(spec.politeness, **{k: v for k, v in {"contact": contact, "concurrency": concurrency}.items()
                                             if v is not None})
    overrides = {k: v for k, v in {"size": size, "seed": seed, "image_format": image_format}.items() if v is not None}
    if size is not None:
        overrides["min_side"] = min(spec.min_side, size)
    if per_class is not None:
        if per_class < 1:
            raise InpaintbenchError(f"per_class must be >= 1, got {per_class}")
        overrides["total"] = per_class * len(spec.classes)
    spec = replace(spec, politeness=politeness, **overrides)
    _check(spec, str(recipe))
    if api_url.rstrip("/") == OFFICIAL_API and not politeness.contact.strip():
        raise InpaintbenchError("set a contact (--contact EMAIL_OR_URL, or politeness.contact in the recipe): "
                                "iNaturalist asks API clients to identify themselves")
    out = Path(out)
    work = out / ".inat"
    params = {**spec.output_params(), "api_url": api_url.rstrip("/"), "limit_per_class": limit_per_class}
    work.mkdir(parents=True, exist_ok=True)
    params_path = work / "params.json"
    if params_path.exists() and json.loads(params_path.read_text()) != json.loads(json.dumps(params)):
        raise InpaintbenchError(f"{out} holds an iNaturalist build with other parameters; choose another --out")
    params_path.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")

    targets = spec.per_class()
    accepted, rejected, stats = asyncio.run(_scrape(spec, work, api_url, targets, limit_per_class, workers))
    counts = collections.Counter(spec.classes[c.label].name for c in accepted)
    shortfall = {name: targets[name] - counts[name] for name in targets}
    splits = assign_splits(accepted, rejected, spec)

    def make_sample(candidate: Candidate) -> Sample | Rejected:
        meta = _meta(candidate, spec, spec.photo_size)
        if candidate.reason:
            return Rejected(candidate.key, candidate.reason, {"label": candidate.label, **meta})
        data = (work / "photos" / f"{candidate.photo['id']}.{spec.image_format}").read_bytes()
        return Sample(candidate.key, np.empty((spec.size, spec.size, 0), np.uint8), candidate.label, meta,
                      encoded=data)

    info = write_dataset(out, "inat", splits, make_sample, classes=[c.name for c in spec.classes],
                         build_params=params, card=_card(spec, accepted, shortfall, api_url),
                         image_format=spec.image_format, samples_per_shard=spec.samples_per_shard)
    write_attribution(out / "ATTRIBUTION.csv", accepted, spec)
    info["shortfall"] = {k: v for k, v in shortfall.items() if v}
    info["scrape"] = stats  # this run's traffic (not stored in dataset.json: it differs between runs)
    return info
