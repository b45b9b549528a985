"""A fake iNaturalist API v1 plus a fake photo host, for scraper tests and benchmarks.

Two aiohttp apps on 127.0.0.1 with OS-chosen ports:

* the API host, ``GET {api_url}/observations`` (``api_url`` ends in ``/v1``) with the filters, paging, ordering,
  ``per_page`` clamp and 10,000-result window of the real API (the project's reference notes, data_anchors.md
  section 1), answering with the real response shape (envelope ``total_results, page, per_page, results``, as in
  pyinaturalist's recorded ``v1/get_observations_page1.json``);
* a photo host (stands in for ``inaturalist-open-data.s3.amazonaws.com`` and ``static.inaturalist.org``),
  ``GET {photo_base}/photos/<id>/<size>.jpg`` serving deterministic synthetic JPEGs at the real size rules.

Both hosts log every request and can inject faults (``Faults``). ``make_world`` builds the observations.

Start it with ``async with FakeINat(world) as fake`` (inside a loop), ``with FakeINat(world).running() as fake``
(from synchronous code: the servers run on a background thread), or as a process::

    python -m tests.fakes.inat_server --counts 118552=300,47144=300,3=300 --photo-latency 0.02 --port-file F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
from aiohttp import web
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------------------------------------------
# Constants of the real service
# --------------------------------------------------------------------------------------------------------------

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 30
MAX_RESULT_WINDOW = 10_000
WINDOW_ERROR = (
    f"Result window is too large, page x size must be less than or equal to [{MAX_RESULT_WINDOW}]. "
    "Please narrow your search, or use a sliding window approach with id_above or id_below params."
)

#: Longest side of each photo size; ``square`` is exactly 75x75 (centre crop). Sizes are never upscaled.
PHOTO_SIZES: dict[str, int] = {"original": 2048, "large": 1024, "medium": 500, "small": 240, "thumb": 100, "square": 75}

#: All photo licence codes of the API (lowercase); ``None`` means all rights reserved.
PHOTO_LICENSES = ("cc-by", "cc-by-nc", "cc-by-sa", "cc0", "cc-by-nd", "cc-by-nc-nd", "cc-by-nc-sa")
_LICENSE_WEIGHTS = {
    None: 0.15,
    "cc-by-nc": 0.40,
    "cc-by": 0.14,
    "cc0": 0.08,
    "cc-by-sa": 0.07,
    "cc-by-nc-nd": 0.08,
    "cc-by-nd": 0.04,
    "cc-by-nc-sa": 0.04,
}

#: Placeholder host of photo URLs in a world built by ``make_world``; the server rewrites it to ``photo_base``.
PLACEHOLDER_PHOTO_BASE = "http://photos.inat.invalid"
_PHOTO_HOST_RE = re.compile(r'https?://[^/"\s]+(?=/photos/\d+/)')

CAT, DOG, BIRDS = 118552, 47144, 3

# --------------------------------------------------------------------------------------------------------------
# Taxonomy. Life/Animalia/Chordata/Vertebrata/Mammalia/Aves, the cat, the dog and the bird species ids are iNat's;
# the intermediate (order/family/genus) ids are illustrative only.
# --------------------------------------------------------------------------------------------------------------

_ANIMAL_ROOT = (48460, 1, 2, 355675)
_RANK_LEVELS = {"kingdom": 70, "phylum": 60, "class": 50, "order": 40, "family": 30, "genus": 20, "species": 10}


@dataclasses.dataclass(frozen=True)
class _Species:
    id: int
    name: str
    common: str
    ancestors: tuple[int, ...]  # root .. parent
    iconic_id: int
    iconic_name: str


_MAMMAL_PATH = (*_ANIMAL_ROOT, 40151, 848317, 848320, 848323, 41573)
_CAT = _Species(CAT, "Felis catus", "Domestic Cat", (*_MAMMAL_PATH, 41661, 41662, 41663), 40151, "Mammalia")
_DOG = _Species(DOG, "Canis familiaris", "Domestic Dog", (*_MAMMAL_PATH, 42043, 42044, 42051), 40151, "Mammalia")
_AVES = (*_ANIMAL_ROOT, BIRDS)
_PASSERIFORMES = 7251
_ANSERIFORMES = 6888
_PASSER = (*_AVES, _PASSERIFORMES)
#: Bird species and their share of bird observations (skewed: the first one is about half).
_BIRD_SPECIES: tuple[tuple[_Species, float], ...] = (
    (_Species(13858, "Passer domesticus", "House Sparrow", (*_PASSER, 13685, 13857), 3, "Aves"), 0.50),
    (_Species(12727, "Turdus migratorius", "American Robin", (*_PASSER, 12705, 12716), 3, "Aves"), 0.15),
    (_Species(6930, "Anas platyrhynchos", "Mallard", (*_AVES, _ANSERIFORMES, 6912, 6929), 3, "Aves"), 0.10),
    (_Species(9083, "Cardinalis cardinalis", "Northern Cardinal", (*_PASSER, 9079, 9082), 3, "Aves"), 0.08),
    (_Species(3017, "Columba livia", "Rock Pigeon", (*_AVES, 2708, 2715, 3016), 3, "Aves"), 0.06),
    (_Species(14850, "Sturnus vulgaris", "European Starling", (*_PASSER, 14795, 14849), 3, "Aves"), 0.05),
    (_Species(4956, "Ardea herodias", "Great Blue Heron", (*_AVES, 67563, 4929, 4954), 3, "Aves"), 0.03),
    (_Species(7089, "Branta canadensis", "Canada Goose", (*_AVES, _ANSERIFORMES, 6912, 7086), 3, "Aves"), 0.03),
)
#: Bird species taxon ids, most common first.
BIRD_SPECIES_IDS = tuple(s.id for s, _ in _BIRD_SPECIES)

_USER_NAMES = (
    "samroom:|birdnerd_ke:Kevin E.|ana_lopes:Ana Lopes|jmh:|wren_watch:Priya S.|tomcat77:|mkowalski:Marta Kowalski|"
    "h_okafor:H. Okafor|pawprints:|lichenlover:Ruth Baker|gsandoval:Gabriel Sandoval|yuki_n:|fieldnotes:Ola Nordmann|"
    "dogwalker_22:|c_dubois:Camille Dubois|ebird4ever:|leafpeeper:Sam Green|n_ivanova:Nadia Ivanova|kiwi_obs:|"
    "marsh_hen:L. Tran"
)
#: ``(user id, login, name or None)``; ``name`` is None for some users, as in the real API.
_USERS = [
    (101 + 37 * i, login, name or None)
    for i, (login, _, name) in enumerate(item.partition(":") for item in _USER_NAMES.split("|"))
]


def _taxon_dict(sp: _Species) -> dict[str, Any]:
    ancestor_ids = [*sp.ancestors, sp.id]
    return {
        "id": sp.id,
        "name": sp.name,
        "rank": "species",
        "rank_level": _RANK_LEVELS["species"],
        "ancestor_ids": ancestor_ids,
        "ancestry": "/".join(map(str, sp.ancestors)),
        "min_species_ancestry": ",".join(map(str, ancestor_ids)),
        "min_species_taxon_id": sp.id,
        "parent_id": sp.ancestors[-1],
        "iconic_taxon_id": sp.iconic_id,
        "iconic_taxon_name": sp.iconic_name,
        "preferred_common_name": sp.common,
        "is_active": True,
        "endemic": False,
        "threatened": False,
        "introduced": sp.id in (CAT, DOG, 13858, 14850, 3017),
        "native": sp.id not in (CAT, DOG),
        "extinct": False,
    }


# --------------------------------------------------------------------------------------------------------------
# World generator
# --------------------------------------------------------------------------------------------------------------


class World(list):
    """The observations of a fake world (a ``list`` of observation dicts sorted by id) plus ground truth.

    Attributes:
        seed: the seed it was built from.
        duplicates: ``{photo_id: source_photo_id}`` for photos whose bytes are identical to an earlier photo's
            (also available as ``world_duplicates``).
        tiny_photo_ids: ids of photos whose original is tiny (sides under 100 px).
    """

    def __init__(self, observations: Iterable[dict], *, seed: int, duplicates: dict[int, int], tiny: set[int]):
        super().__init__(observations)
        self.seed = seed
        self.duplicates = duplicates
        self.tiny_photo_ids = tiny

    @property
    def world_duplicates(self) -> dict[int, int]:
        """Alias of ``duplicates``."""
        return self.duplicates

    def iter_photos(self) -> Iterator[tuple[dict, dict]]:
        """Yield ``(observation, photo)`` for every entry of every observation's ``photos`` list."""
        for obs in self:
            for photo in obs["photos"]:
                yield obs, photo


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _details(t: dt.datetime) -> dict[str, int | str]:
    return {
        "date": t.date().isoformat(),
        "week": t.isocalendar()[1],
        "month": t.month,
        "hour": t.hour,
        "year": t.year,
        "day": t.day,
    }


def _attribution(name: str, license_code: str | None) -> str:
    if license_code is None:
        return f"(c) {name}, all rights reserved"
    if license_code == "cc0":
        return f"(c) {name}, no rights reserved (CC0)"
    return f"(c) {name}, some rights reserved ({license_code.upper().replace('CC-', 'CC ')})"


def _draw_license(rng: random.Random) -> str | None:
    return rng.choices(list(_LICENSE_WEIGHTS), weights=list(_LICENSE_WEIGHTS.values()))[0]


#: ``(cumulative probability, quality_grade, captive)``: pets are mostly casual because captive; birds mostly wild.
_GRADES_PETS = ((0.85, "casual", True), (0.92, "research", False), (0.95, "needs_id", False), (1.0, "casual", False))
_GRADES_BIRDS = ((0.60, "research", False), (0.90, "needs_id", False), (0.97, "casual", False), (1.0, "casual", True))


def _draw_grade(rng: random.Random, table: Sequence[tuple[float, str, bool]]) -> tuple[str, bool]:
    u = rng.random()
    for cum, grade, captive in table:
        if u < cum:
            return grade, captive
    return table[-1][1], table[-1][2]


def _draw_dims(rng: random.Random, large_rate: float) -> tuple[int, int]:
    if rng.random() < large_rate:
        long_side = rng.randint(1100, 1600)
    else:
        long_side = rng.randint(400, 800)
    ratio = rng.choice([1.0, 4 / 3, 3 / 2, 16 / 9, 5 / 4])
    short_side = min(long_side, max(320, round(long_side / ratio)))
    return (long_side, short_side) if rng.random() < 0.65 else (short_side, long_side)


def make_world(
    counts: dict[int, int],
    *,
    seed: int = 0,
    first_id: int = 150_000_000,
    dup_rate: float = 0.01,
    tiny_rate: float = 0.01,
    large_rate: float = 0.02,
    start: dt.datetime | None = None,
) -> World:
    """Build a deterministic fake world of observations.

    Args:
        counts: number of observations per class taxon: ``118552`` (domestic cat), ``47144`` (domestic dog) and
            ``3`` (Aves: spread over 8 species, the commonest about half of them; see ``BIRD_SPECIES_IDS``).
        seed: everything (ids, licences, dims, which photos are duplicates) follows from it.
        first_id: the first observation id is a little above this; ids then increase with random gaps.
        dup_rate: share of photos that are byte-identical re-uploads of an earlier photo (``World.duplicates``).
        tiny_rate: share of photos with a tiny original (sides 40-90 px; ``World.tiny_photo_ids``).
        large_rate: share of photos with an original longer than 1024 px (so ``large`` is a real downscale).
        start: ``created_at`` of the first observation (default 2024-01-01 UTC).

    Returns:
        A ``World`` (a list of observation dicts in the API's shape, sorted by id). Photo URLs point at
        ``PLACEHOLDER_PHOTO_BASE``; ``FakeINat`` rewrites them to its photo host.
    """
    unknown = set(counts) - {CAT, DOG, BIRDS}
    if unknown:
        raise ValueError(f"unknown class taxa {sorted(unknown)}; use {CAT} (cat), {DOG} (dog), {BIRDS} (Aves)")
    rng = random.Random(f"inat-world-{seed}")
    kinds = [k for k, n in counts.items() for _ in range(int(n))]
    rng.shuffle(kinds)
    species, weights = zip(*_BIRD_SPECIES, strict=True)
    taxa = {sp.id: _taxon_dict(sp) for sp in (_CAT, _DOG, *species)}

    created = start or dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    obs_id, photo_id, obs_photo_id = first_id, first_id + 60_000_000, first_id - 10_000_000
    out: list[dict] = []
    duplicates: dict[int, int] = {}
    tiny: set[int] = set()
    sources: list[tuple[int, int, tuple[int, int]]] = []  # (photo id, content id, dims) of non-duplicate photos

    for kind in kinds:
        obs_id += rng.randint(1, 40)
        created += dt.timedelta(seconds=rng.uniform(5, 900))
        observed = created - dt.timedelta(seconds=rng.uniform(60, 20 * 86400))
        sp = _CAT if kind == CAT else _DOG if kind == DOG else rng.choices(species, weights=weights)[0]
        grade, captive = _draw_grade(rng, _GRADES_BIRDS if kind == BIRDS else _GRADES_PETS)
        user_id, login, name = rng.choice(_USERS)
        base_license = _draw_license(rng)
        stamp = int(created.timestamp())

        photos, obs_photos = [], []
        for position in range(rng.choice((1, 1, 1, 2, 2, 3))):
            photo_id += rng.randint(1, 25)
            obs_photo_id += rng.randint(1, 25)
            license_code = base_license if rng.random() < 0.7 else _draw_license(rng)
            content_id = photo_id
            if sources and rng.random() < dup_rate:
                src_id, content_id, (w, h) = rng.choice(sources)
                duplicates[photo_id] = src_id
            else:
                if rng.random() < tiny_rate:
                    w, h = rng.choice(((60, 60), (64, 48), (48, 64), (90, 60), (40, 40)))
                    tiny.add(photo_id)
                else:
                    w, h = _draw_dims(rng, large_rate)
                sources.append((photo_id, content_id, (w, h)))
            photo = {
                "id": photo_id,
                "license_code": license_code,
                "url": f"{PLACEHOLDER_PHOTO_BASE}/photos/{photo_id}/square.jpg?{stamp + rng.randint(0, 120)}",
                "attribution": _attribution(name or login, license_code),
                "original_dimensions": {"width": w, "height": h},
                "flags": [],
            }
            if content_id != photo_id:
                photo["_content_id"] = content_id  # private: stripped from API responses
            photos.append(photo)
            obs_photos.append(
                {
                    "id": obs_photo_id,
                    "position": position,
                    "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "photo": dict(photo),
                }
            )
        lat, lon = rng.uniform(-45, 60), rng.uniform(-150, 150)
        taxon = taxa[sp.id]
        out.append(
            {
                "id": obs_id,
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "quality_grade": grade,
                "captive": captive,
                "license_code": _draw_license(rng),
                "observed_on": observed.date().isoformat(),
                "observed_on_details": _details(observed),
                "observed_on_string": observed.strftime("%Y-%m-%d %H:%M:%S"),
                "time_observed_at": _iso(observed),
                "observed_time_zone": "Etc/UTC",
                "created_at": _iso(created),
                "created_at_details": _details(created),
                "created_time_zone": "Etc/UTC",
                "updated_at": _iso(created + dt.timedelta(hours=rng.uniform(0, 48))),
                "time_zone_offset": "+00:00",
                "species_guess": taxon["preferred_common_name"],
                "taxon": taxon,
                "community_taxon_id": sp.id if grade != "casual" else None,
                "ident_taxon_ids": list(taxon["ancestor_ids"]),
                "identifications_count": rng.randint(0, 4),
                "num_identification_agreements": rng.randint(0, 3),
                "num_identification_disagreements": 0,
                "owners_identification_from_vision": rng.random() < 0.5,
                "comments_count": rng.randint(0, 2),
                "faves_count": rng.randint(0, 3),
                "geojson": {"coordinates": [round(lon, 6), round(lat, 6)], "type": "Point"},
                "location": f"{lat:.6f},{lon:.6f}",
                "place_guess": None,
                "positional_accuracy": rng.choice((None, 5, 12, 30, 120)),
                "geoprivacy": None,
                "taxon_geoprivacy": "open",
                "obscured": False,
                "mappable": True,
                "spam": False,
                "description": None,
                "tags": [],
                "sounds": [],
                "flags": [],
                "outlinks": [],
                "uri": f"https://www.inaturalist.org/observations/{obs_id}",
                "user": {"id": user_id, "login": login, "name": name, "spam": False, "suspended": False},
                "photos": photos,
                "observation_photos": obs_photos,
            }
        )
    return World(out, seed=seed, duplicates=duplicates, tiny=tiny)


# --------------------------------------------------------------------------------------------------------------
# Photo bytes
# --------------------------------------------------------------------------------------------------------------


def variant_dims(size: str, width: int, height: int) -> tuple[int, int]:
    """Pixel size of photo ``size`` for an original of ``width`` x ``height`` (the real iNat rules).

    Args:
        size: one of ``PHOTO_SIZES``.
        width: original width.
        height: original height.

    Returns:
        ``(w, h)``: ``square`` is always 75x75; other sizes scale the longest side down to their limit and are
        never upscaled.
    """
    if size == "square":
        return 75, 75
    limit = PHOTO_SIZES[size]
    longest = max(width, height)
    if longest <= limit:
        return width, height
    scale = limit / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_photo(seed: int, content_id: int, width: int, height: int, size: str = "original") -> Image.Image:
    """Render one size of a synthetic photo: a soft gradient/texture background and random shapes.

    The scene is drawn in coordinates relative to the image, so every size shows the same picture (``square`` is
    the centre crop); it is rasterised directly at the requested size, which keeps small sizes cheap.

    Args:
        seed: server seed.
        content_id: the photo whose content this is (a duplicate photo renders its source's content).
        width: original width (from ``original_dimensions``).
        height: original height.
        size: one of ``PHOTO_SIZES``.

    Returns:
        An RGB image, deterministic in its arguments.
    """
    if size == "square":
        scale = 75 / min(width, height)
        tw, th = max(75, round(width * scale)), max(75, round(height * scale))
    else:
        tw, th = variant_dims(size, width, height)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, content_id & 0xFFFFFFFF, 7])
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    t = xs / 64 * math.cos(angle) + ys / 48 * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    background = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    texture = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((64, 48), Image.BILINEAR)
    background = np.clip(background * 0.8 + np.asarray(texture, dtype=np.float32) * 0.2, 0, 255).astype(np.uint8)
    im = Image.fromarray(background, "RGB").resize((tw, th), Image.BILINEAR)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(4, 11))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, 2) * tw)
        y0, y1 = sorted(rng.uniform(-0.1, 1.1, 2) * th)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse((x0, y0, x1 + 1, y1 + 1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
        else:
            n = int(rng.integers(3, 7))
            draw.polygon([(float(x) * tw, float(y) * th) for x, y in rng.uniform(0, 1, (n, 2))], fill=colour)
    if size == "square":
        left, top = (tw - 75) // 2, (th - 75) // 2
        im = im.crop((left, top, left + 75, top + 75))
    return im


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """Encode an image as a baseline JPEG."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def corrupt_jpeg(data: bytes, key: int) -> bytes:
    """Keep a JPEG's headers but garble and cut its entropy-coded data, so a full decode fails.

    ``Image.open`` still works (the header is intact); ``Image.load()`` raises ``OSError`` (unless the caller set
    ``ImageFile.LOAD_TRUNCATED_IMAGES``).
    """
    sos = data.find(b"\xff\xda")
    if sos < 0:
        return data[: len(data) // 2]
    start = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    keep = start + max(8, int((len(data) - start) * 0.35))
    out = bytearray(data[:keep])
    rng = random.Random(key)
    for _ in range(8):
        pos = rng.randrange(start, keep)
        if out[pos - 1] != 0xFF:
            out[pos] = rng.randrange(0, 0xFF)
    return bytes(out)


_QUOTA_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Google Drive - Quota exceeded</title>
<style>body{font-family:Arial,sans-serif;margin:40px;color:#202124}h1{font-size:22px;font-weight:normal}</style>
</head><body><div class="uc-main"><div id="uc-text">
<h1>Sorry, you can't view or download this file at this time.</h1>
<p class="uc-warning-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing
the file again later. If the file you are trying to access is particularly large or is shared with many people,
it may take up to 24 hours to be able to view or download the file. If you still can't access a file after
24 hours, contact your domain administrator.</p></div></div>
<div class="uc-footer">&copy; Google - <a href="https://www.google.com/intl/en/policies/privacy/">Privacy</a></div>
</body></html>
"""

# --------------------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------------------

_API_FAULTS = ("api_429", "api_500", "api_503", "api_slow", "api_reset")
_PHOTO_TRANSIENT = ("photo_429", "photo_500", "photo_503", "photo_slow", "photo_reset", "photo_truncated")
_PHOTO_PERMANENT = ("photo_html", "photo_wrong_type", "photo_corrupt")


@dataclasses.dataclass
class Faults:
    """Fault probabilities (per request for transient faults, per photo id for permanent ones); all default 0.

    Transient faults are drawn from a seeded RNG (one draw per request), but never more than
    ``max_consecutive_faults`` times in a row for the same URL (path plus sorted query), so a client making
    ``max_consecutive_faults + 1`` attempts always succeeds. Permanent photo faults are a fixed property of a photo
    id (hash of seed and id): every request for any size of that photo gets the same bad answer. Where the
    probabilities of one group (API, photo transient, photo permanent) sum to more than 1 they are scaled to sum to 1.

    Attributes:
        api_429: HTTP 429 with ``Retry-After: <retry_after>`` and a JSON error body.
        api_500: HTTP 500 with a JSON error body.
        api_503: HTTP 503 with ``Retry-After`` and a JSON error body.
        api_slow: wait ``slow_seconds`` before answering normally (a client timeout should fire first).
        api_reset: abort the TCP connection (RST) without a response.
        photo_429: like ``api_429`` on the photo host (plain-text body).
        photo_500: HTTP 500 (S3-style XML body).
        photo_503: HTTP 503 ``SlowDown`` with ``Retry-After`` (S3-style XML body).
        photo_slow: wait ``slow_seconds`` before answering.
        photo_reset: abort the connection without a response.
        photo_truncated: full ``Content-Length`` header, then only part of the body, then close.
        photo_html: permanent; 200 with ``Content-Type: image/jpeg`` but the body is an HTML quota page.
        photo_wrong_type: permanent; the correct JPEG bytes but ``Content-Type: text/html; charset=utf-8``.
        photo_corrupt: permanent; 200 ``image/jpeg`` whose entropy data is garbled and cut (PIL ``load()`` fails).
        retry_after: seconds in ``Retry-After`` headers.
        slow_seconds: delay of the slow faults.
        max_consecutive_faults: cap on transient faults in a row for one URL.
    """

    api_429: float = 0.0
    api_500: float = 0.0
    api_503: float = 0.0
    api_slow: float = 0.0
    api_reset: float = 0.0
    photo_429: float = 0.0
    photo_500: float = 0.0
    photo_503: float = 0.0
    photo_slow: float = 0.0
    photo_reset: float = 0.0
    photo_truncated: float = 0.0
    photo_html: float = 0.0
    photo_wrong_type: float = 0.0
    photo_corrupt: float = 0.0
    retry_after: int = 1
    slow_seconds: float = 30.0
    max_consecutive_faults: int = 2

    @classmethod
    def everything(
        cls, p: float, *, slow_seconds: float = 30.0, retry_after: int = 1, max_consecutive_faults: int = 2
    ) -> Faults:
        """Every fault kind with probability ``p`` (pass a short ``slow_seconds`` to keep tests fast)."""
        probs = {name: p for name in (*_API_FAULTS, *_PHOTO_TRANSIENT, *_PHOTO_PERMANENT)}
        return cls(
            **probs, slow_seconds=slow_seconds, retry_after=retry_after, max_consecutive_faults=max_consecutive_faults
        )


class LogRecord(NamedTuple):
    """One request as the server saw it.

    ``t`` is ``time.monotonic()`` at arrival; ``status`` is 0 when the connection was aborted without a response;
    ``nbytes`` is the number of body bytes sent (partial for truncated responses).
    """

    t: float
    path_qs: str
    status: int
    nbytes: int
    user_agent: str


def max_requests_in_window(log: Sequence[LogRecord | tuple], window: float = 10.0) -> int:
    """Largest number of logged requests whose arrival times fall within any ``window``-second span."""
    times = sorted(r[0] for r in log)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class _Gate:
    """Draws transient faults with the per-URL consecutive cap (probabilities summing over 1 are scaled to 1)."""

    def __init__(self, faults: Faults, names: Sequence[str], seed: int, salt: str):
        table = [(n, float(getattr(faults, n))) for n in names if getattr(faults, n) > 0]
        total = sum(p for _, p in table)
        self.table = [(n, p / total) for n, p in table] if total > 1 else table
        self.cap = faults.max_consecutive_faults
        self.rng = random.Random(f"{salt}-{seed}")
        self.streak: dict[str, int] = {}

    def draw(self, key: str) -> str | None:
        if not self.table:
            return None
        r = self.rng.random()
        choice = None
        acc = 0.0
        for name, p in self.table:
            acc += p
            if r < acc:
                choice = name
                break
        if choice is None or self.streak.get(key, 0) >= self.cap:
            self.streak.pop(key, None)
            return None
        self.streak[key] = self.streak.get(key, 0) + 1
        return choice


def _url_key(request: web.Request) -> str:
    return request.path + "?" + "&".join(sorted(f"{k}={v}" for k, v in request.query.items()))


def _hash_unit(*parts: object) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --------------------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------------------


class _BadParam(ValueError):
    """A query parameter the real API would refuse (answered with 422)."""


@dataclasses.dataclass
class _Row:
    id: int
    created_at: str
    updated_at: str
    observed_on: str
    ancestors: frozenset[int]
    iconic: str
    licenses: frozenset[str | None]
    quality: str
    captive: bool
    obs_license: str | None
    n_photos: int
    json: str = ""


@dataclasses.dataclass(frozen=True)
class _PhotoInfo:
    content_id: int
    width: int
    height: int


def _public(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [_public(v) for v in obj]
    return obj


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    return True if v == "true" else False if v == "false" else None


def _multi(query: Any, name: str) -> list[str] | None:
    values = query.getall(name, None)
    if values is None:
        return None
    items = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return items or None


def _ints(query: Any, name: str) -> list[int] | None:
    items = _multi(query, name)
    if items is None:
        return None
    try:
        return [int(s) for s in items]
    except ValueError:
        raise _BadParam(f"{name} must be an integer or a comma-separated list of integers") from None


def _one_int(query: Any, name: str, default: int | None) -> int | None:
    value = query.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default


def _json_response(payload: dict, status: int, headers: dict | None = None) -> tuple[int, bytes, dict]:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})}


class FakeINat:
    """Fake iNaturalist API v1 host plus photo host (see the module docstring).

    Attributes:
        api_url: ``http://127.0.0.1:<port>/v1`` once started.
        photo_base: ``http://127.0.0.1:<port>`` once started; photos are at ``{photo_base}/photos/<id>/<size>.jpg``.
        observations: the served observations as the API returns them (photo URLs on ``photo_base``) once
            started; the input observations before.
        api_log: ``LogRecord`` per request that reached the API host (faulted and 404 ones included).
        photo_log: the same for the photo host.
        faults: the ``Faults`` in force.
    """

    def __init__(
        self,
        observations: Sequence[dict],
        *,
        faults: Faults | None = None,
        seed: int = 0,
        photo_latency: float = 0.0,
        api_latency: float = 0.0,
        cache_bytes: int = 256 << 20,
    ):
        self.faults = faults or Faults()
        self.seed = seed
        self.photo_latency = photo_latency
        self.api_latency = api_latency
        self.observations: list[dict] = list(observations)
        self.api_log: list[LogRecord] = []
        self.photo_log: list[LogRecord] = []
        self.api_url = ""
        self.photo_base = ""
        self._cache_budget = cache_bytes
        self._cache: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._cache_size = 0
        self._lock = threading.Lock()
        self._api_gate = _Gate(self.faults, _API_FAULTS, seed, "api")
        self._photo_gate = _Gate(self.faults, _PHOTO_TRANSIENT, seed, "photo")
        self._random_order = random.Random(f"order-{seed}")
        self._photos: dict[int, _PhotoInfo] = {}
        self._rows: list[_Row] = []
        for obs in self.observations:
            photos = obs.get("photos") or []
            all_photos = [*photos, *(op["photo"] for op in obs.get("observation_photos") or [])]
            for p in all_photos:
                dims = p.get("original_dimensions") or {}
                info = _PhotoInfo(int(p.get("_content_id", p["id"])), int(dims["width"]), int(dims["height"]))
                self._photos.setdefault(int(p["id"]), info)
            taxon = obs.get("taxon") or {}
            self._rows.append(
                _Row(
                    id=int(obs["id"]),
                    created_at=obs.get("created_at") or "",
                    updated_at=obs.get("updated_at") or obs.get("created_at") or "",
                    observed_on=obs.get("observed_on") or "",
                    ancestors=frozenset(taxon.get("ancestor_ids") or ([taxon["id"]] if taxon.get("id") else [])),
                    iconic=(taxon.get("iconic_taxon_name") or "unknown").lower(),
                    licenses=frozenset(
                        p.get("license_code").lower() if p.get("license_code") else None for p in photos
                    ),
                    quality=obs.get("quality_grade") or "casual",
                    captive=bool(obs.get("captive")),
                    obs_license=(obs.get("license_code") or None),
                    n_photos=len(photos),
                )
            )
        self._rows.sort(key=lambda r: r.id)
        self._orders = {
            "id": self._rows,
            "created_at": sorted(self._rows, key=lambda r: (r.created_at, r.id)),
            "updated_at": sorted(self._rows, key=lambda r: (r.updated_at, r.id)),
            "observed_on": sorted(self._rows, key=lambda r: (r.observed_on, r.id)),
        }
        self._runners: list[web.AppRunner] = []
        self._closing: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeINat:
        """Bind both hosts on 127.0.0.1 (OS-chosen ports) and start serving."""
        self._closing = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-inat-photo")
        api_app = web.Application()
        api_app.router.add_get("/v1/observations", self._handle_observations)
        api_app.router.add_route("*", "/{tail:.*}", self._handle_api_404)
        photo_app = web.Application()
        photo_app.router.add_get("/photos/{pid}/{name}", self._handle_photo)
        photo_app.router.add_route("*", "/{tail:.*}", self._handle_photo_404)
        ports = []
        for app in (api_app, photo_app):
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            sock.setblocking(False)
            await web.SockSite(runner, sock, backlog=256).start()
            self._runners.append(runner)
            ports.append(sock.getsockname()[1])
        self.api_url = f"http://127.0.0.1:{ports[0]}/v1"
        self.photo_base = f"http://127.0.0.1:{ports[1]}"
        self._publish()
        return self

    def _publish(self) -> None:
        """Serialise observations once, with photo URLs on this photo host."""
        texts = []
        ordered = sorted(self.observations, key=lambda o: o["id"])
        for row, obs in zip(self._rows, ordered, strict=True):
            text = _PHOTO_HOST_RE.sub(self.photo_base, json.dumps(_public(obs), ensure_ascii=False))
            row.json = text
            texts.append(text)
        self.observations = json.loads("[" + ",".join(texts) + "]")

    async def stop(self) -> None:
        """Stop both hosts (in-flight slow responses are cut short)."""
        if self._closing is not None:
            self._closing.set()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> FakeINat:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeINat]:
        """Serve from an event loop on a background thread, for synchronous callers.

        Yields:
            This server, started (``api_url`` and ``photo_base`` set).
        """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name="fake-inat", daemon=True)
        thread.start()
        started.wait()
        if errors:
            thread.join()
            loop.close()
            raise errors[0]
        self._thread_loop = loop
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
            self._thread_loop = None

    # ---------------------------------------------------------------- helpers for tests

    def clear_logs(self) -> None:
        """Empty ``api_log`` and ``photo_log``."""
        self.api_log.clear()
        self.photo_log.clear()

    def photo_ids(self) -> list[int]:
        """Ids of every photo the photo host serves."""
        return sorted(self._photos)

    def permanent_fault(self, photo_id: int) -> str | None:
        """The permanent fault of a photo (``"photo_html"``, ``"photo_wrong_type"``, ``"photo_corrupt"``) or None."""
        u = _hash_unit(self.seed, photo_id, "permanent")
        probs = [(name, float(getattr(self.faults, name))) for name in _PHOTO_PERMANENT]
        total = sum(p for _, p in probs)
        acc = 0.0
        for name, p in probs:
            acc += p / total if total > 1 else p
            if u < acc:
                return name
        return None

    def photo_bytes(self, photo_id: int, size: str = "original") -> bytes:
        """The correct JPEG bytes of a photo size (what a fault-free request returns); cached.

        Raises:
            KeyError: unknown photo id or size.
        """
        info = self._photos[photo_id]
        if size not in PHOTO_SIZES:
            raise KeyError(size)
        key = (info.content_id, size)
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        data = encode_jpeg(render_photo(self.seed, info.content_id, info.width, info.height, size))
        with self._lock:
            if key not in self._cache:
                self._cache[key] = data
                self._cache_size += len(data)
                while self._cache_size > self._cache_budget and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cache_size -= len(old)
        return data

    def prewarm(self, sizes: Iterable[str] = ("medium",), workers: int = 8) -> None:
        """Generate (and cache) the given sizes of every photo now, so serving them later costs nothing."""
        jobs = [(pid, size) for size in sizes for pid in self._photos]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: self.photo_bytes(*job), jobs))

    # ---------------------------------------------------------------- request plumbing

    def _log(self, log: list[LogRecord], request: web.Request, t0: float, status: int, nbytes: int) -> None:
        log.append(LogRecord(t0, request.path_qs, status, nbytes, request.headers.get("User-Agent", "")))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._closing is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    @staticmethod
    def _abort(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)  # never reaches the client

    async def _handle_api_404(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        status, body, headers = _json_response({"error": "Not found", "status": 404}, 404)
        self._log(self.api_log, request, t0, status, len(body))
        return web.Response(status=status, body=body, headers=headers)

    async def _handle_photo_404(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
        self._log(self.photo_log, request, t0, 404, len(body))
        return web.Response(status=404, body=body, content_type="application/xml")

    # ---------------------------------------------------------------- API host

    async def _handle_observations(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        fault = self._api_gate.draw(_url_key(request))
        ra = {"Retry-After": str(int(self.faults.retry_after))}
        if fault == "api_reset":
            self._log(self.api_log, request, t0, 0, 0)
            await self._sleep(self.api_latency)
            return self._abort(request)
        if fault == "api_429":
            status, body, headers = _json_response({"error": "Too Many Requests", "status": 429}, 429, ra)
        elif fault == "api_500":
            status, body, headers = _json_response({"error": "Internal Server Error", "status": 500}, 500)
        elif fault == "api_503":
            status, body, headers = _json_response({"error": "Service Unavailable", "status": 503}, 503, ra)
        else:
            status, body, headers = self._search(request.query)
        self._log(self.api_log, request, t0, status, len(body))
        delay = self.api_latency + (self.faults.slow_seconds if fault == "api_slow" else 0.0)
        await self._sleep(delay)
        return web.Response(status=status, body=body, headers=headers)

    def _search(self, q: Any) -> tuple[int, bytes, dict]:
        per_page = _one_int(q, "per_page", DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 0), MAX_PER_PAGE)
        page = max(_one_int(q, "page", 1), 1)
        if page * per_page > MAX_RESULT_WINDOW:
            return _json_response({"error": WINDOW_ERROR, "status": 403}, 403)
        try:
            rows = self._filter(q)
        except _BadParam as exc:
            return _json_response({"error": str(exc), "status": 422}, 422)
        total = len(rows)
        if per_page == 0:
            results = ""
        else:
            window = rows[(page - 1) * per_page : page * per_page]
            if _bool(q.get("only_id")):
                results = ",".join(f'{{"id": {r.id}}}' for r in window)
            else:
                results = ",".join(r.json for r in window)
        body = f'{{"total_results": {total}, "page": {page}, "per_page": {per_page}, "results": [{results}]}}'
        return 200, body.encode(), {"Content-Type": "application/json; charset=utf-8"}

    def _filter(self, q: Any) -> list[_Row]:
        preds = []
        taxa = _ints(q, "taxon_id")
        if taxa:
            wanted = frozenset(taxa)
            preds.append(lambda r: not r.ancestors.isdisjoint(wanted))
        without = _ints(q, "without_taxon_id")
        if without:
            unwanted = frozenset(without)
            preds.append(lambda r: r.ancestors.isdisjoint(unwanted))
        iconic = _multi(q, "iconic_taxa")
        if iconic:
            names = {s.lower() for s in iconic}
            preds.append(lambda r: r.iconic in names)
        grades = _multi(q, "quality_grade")
        if grades:
            gset = {g.lower() for g in grades}
            if "any" not in gset:
                preds.append(lambda r: r.quality in gset)
        verifiable = _bool(q.get("verifiable"))
        if verifiable is not None:
            preds.append(lambda r: (r.quality in ("needs_id", "research")) == verifiable)
        captive = _bool(q.get("captive"))
        if captive is not None:
            preds.append(lambda r: r.captive == captive)
        has_photos = _bool(q.get("photos"))
        if has_photos is not None:
            preds.append(lambda r: (r.n_photos > 0) == has_photos)
        plicense = _multi(q, "photo_license")
        if plicense:
            lset = {s.lower() for s in plicense}
            preds.append(lambda r: not r.licenses.isdisjoint(lset))
        plicensed = _bool(q.get("photo_licensed"))
        if plicensed is not None:
            preds.append(lambda r: any(r.licenses - {None}) == plicensed)
        olicense = _multi(q, "license")
        if olicense:
            oset = {s.lower() for s in olicense}
            preds.append(lambda r: (r.obs_license or "").lower() in oset)
        for name, cmp in (("id_above", int.__gt__), ("id_below", int.__lt__)):
            bound = q.get(name)
            if bound is not None and bound.strip():
                try:
                    b = int(bound)
                except ValueError:
                    raise _BadParam(f"{name} must be an integer") from None
                preds.append(lambda r, b=b, cmp=cmp: cmp(r.id, b))
        ids = _ints(q, "id")
        if ids:
            idset = frozenset(ids)
            preds.append(lambda r: r.id in idset)

        order_by = (q.get("order_by") or "created_at").lower()
        if order_by == "random":
            rows = list(self._rows)
            self._random_order.shuffle(rows)
        else:
            rows = self._orders.get(order_by, self._orders["created_at"])
            if (q.get("order") or "desc").lower() != "asc":
                rows = rows[::-1]
        return [r for r in rows if all(p(r) for p in preds)]

    # ---------------------------------------------------------------- photo host

    async def _handle_photo(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        pid_s, name = request.match_info["pid"], request.match_info["name"]
        size, _, ext = name.partition(".")
        info = self._photos.get(int(pid_s)) if pid_s.isdigit() else None
        if info is None or size not in PHOTO_SIZES or ext.lower() != "jpg":
            return await self._handle_photo_404(request)
        pid = int(pid_s)
        fault = self._photo_gate.draw(_url_key(request))
        if fault == "photo_reset":
            self._log(self.photo_log, request, t0, 0, 0)
            await self._sleep(self.photo_latency)
            return self._abort(request)
        ra = {"Retry-After": str(int(self.faults.retry_after))}
        if fault == "photo_429":
            body = b"Too Many Requests"
            self._log(self.photo_log, request, t0, 429, len(body))
            await self._sleep(self.photo_latency)
            return web.Response(status=429, body=body, content_type="text/plain", headers=ra)
        if fault in ("photo_500", "photo_503"):
            status = 500 if fault == "photo_500" else 503
            code = "InternalError" if status == 500 else "SlowDown"
            body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>".encode()
            self._log(self.photo_log, request, t0, status, len(body))
            await self._sleep(self.photo_latency)
            return web.Response(
                status=status, body=body, content_type="application/xml", headers=ra if status == 503 else None
            )

        permanent = self.permanent_fault(pid)
        content_type = "image/jpeg"
        if permanent == "photo_html":
            body = _QUOTA_HTML
        else:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(self._executor, self.photo_bytes, pid, size)
            if permanent == "photo_wrong_type":
                content_type = "text/html; charset=utf-8"
            elif permanent == "photo_corrupt":
                body = corrupt_jpeg(body, pid)
        headers = {
            "Content-Type": content_type,
            "ETag": '"' + hashlib.md5(body).hexdigest() + '"',
            "Cache-Control": "max-age=31536000",
        }
        delay = self.photo_latency + (self.faults.slow_seconds if fault == "photo_slow" else 0.0)
        if fault == "photo_truncated" and request.method == "GET":
            part = body[: max(1, len(body) // 3)]
            self._log(self.photo_log, request, t0, 200, len(part))
            await self._sleep(delay)
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(part)
            if request.transport is not None:
                request.transport.close()
            return resp
        self._log(self.photo_log, request, t0, 200, len(body))
        await self._sleep(delay)
        return web.Response(status=200, body=body, headers=headers)


# --------------------------------------------------------------------------------------------------------------
# Standalone process
# --------------------------------------------------------------------------------------------------------------


def parse_counts(text: str) -> dict[int, int]:
    """Parse ``"118552=300,47144=300,3=300"`` into ``{118552: 300, 47144: 300, 3: 300}``."""
    counts = {}
    for item in text.split(","):
        if item.strip():
            key, _, value = item.partition("=")
            counts[int(key)] = int(value)
    return counts


def read_port_file(path: str | os.PathLike, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> dict:
    """Wait for a standalone server's port file and return it (``api_url``, ``photo_base``, ``pid``, ...).

    Args:
        path: the ``--port-file`` given to the server.
        timeout: seconds to wait.
        proc: the server process, to fail fast if it exits.

    Returns:
        The decoded JSON.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"fake iNat server exited with {proc.returncode} before writing {path}")
        time.sleep(0.02)
    raise TimeoutError(f"no port file at {path} after {timeout} s")


def _build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.inat_server", description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="118552=300,47144=300,3=300", help="class taxon=count list")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photo-latency", type=float, default=0.0, help="seconds per photo request")
    ap.add_argument("--api-latency", type=float, default=0.0, help="seconds per API request")
    ap.add_argument("--port-file", help="write {api_url, photo_base, pid, observations, photos} JSON here")
    ap.add_argument("--faults", type=float, default=0.0, help="Faults.everything(P)")
    ap.add_argument("--fault", action="append", default=[], metavar="NAME=P", help="one fault probability")
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--max-consecutive-faults", type=int, default=2)
    ap.add_argument(
        "--prewarm",
        default="medium",
        help="comma list of photo sizes to generate before the port file is written ('' for none; default medium)",
    )
    ap.add_argument("--log-file", help="on SIGTERM/SIGINT, write api_log and photo_log here as JSON")
    return ap


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults.everything(
        args.faults,
        slow_seconds=args.slow_seconds,
        retry_after=args.retry_after,
        max_consecutive_faults=args.max_consecutive_faults,
    )
    for item in args.fault:
        name, _, value = item.partition("=")
        if not hasattr(faults, name):
            raise SystemExit(f"unknown fault {name!r}")
        setattr(faults, name, float(value))
    world = make_world(parse_counts(args.counts), seed=args.seed)
    fake = FakeINat(
        world, faults=faults, seed=args.seed, photo_latency=args.photo_latency, api_latency=args.api_latency
    )
    if args.prewarm:
        fake.prewarm([s.strip() for s in args.prewarm.split(",") if s.strip()])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await fake.start()
    try:
        if args.port_file:
            info = {
                "api_url": fake.api_url,
                "photo_base": fake.photo_base,
                "pid": os.getpid(),
                "observations": len(world),
                "photos": len(fake.photo_ids()),
            }
            tmp = f"{args.port_file}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                json.dump(info, fh)
            os.replace(tmp, args.port_file)
        print(json.dumps({"api_url": fake.api_url, "photo_base": fake.photo_base}), flush=True)
        await stop.wait()
    finally:
        await fake.stop()
        if args.log_file:
            with open(args.log_file, "w") as fh:
                json.dump({"api_log": fake.api_log, "photo_log": fake.photo_log}, fh)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake servers until SIGTERM/SIGINT (see ``--help``)."""
    asyncio.run(_serve(_build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
