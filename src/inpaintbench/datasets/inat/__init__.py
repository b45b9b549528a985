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
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_write, remove_stale_partials
from ..._registry import InpaintbenchError
from ..polite import PoliteClient
from ..shards import Rejected, Sample, write_dataset
from .fetch import RESIZE_NOTE, Listing, Photos, photo_url, process_photo
from .recipe import DEFAULT_RECIPE, LICENSE_URLS, Recipe, check_recipe, load_recipe, recipe_from_dict
from .select import Candidate, _photos_of, assign_splits, select_class

OFFICIAL_API = "https://api.inaturalist.org/v1"

__all__ = ["OFFICIAL_API", "Recipe", "assign_splits", "build_inat", "load_recipe", "photo_url", "process_photo",
           "recipe_from_dict", "select_class", "_photos_of"]


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
    check_recipe(spec, str(recipe))
    if api_url.rstrip("/") == OFFICIAL_API and not politeness.contact.strip():
        raise InpaintbenchError("set a contact (--contact EMAIL_OR_URL, or politeness.contact in the recipe): "
                                "iNaturalist asks API clients to identify themselves")
    out = Path(out)
    work = out / ".inat"
    params = {**spec.output_params(), "api_url": api_url.rstrip("/"), "limit_per_class": limit_per_class}
    work.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(work)  # params.json or the budget ledger of a run killed while rewriting them
    params_path = work / "params.json"
    if params_path.exists() and json.loads(params_path.read_text()) != json.loads(json.dumps(params)):
        raise InpaintbenchError(f"{out} holds an iNaturalist build with other parameters; choose another --out")
    atomic_write(params_path, lambda tmp: tmp.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n"))

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
