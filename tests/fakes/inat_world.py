"""The fake iNaturalist's world: taxonomy, observations (``make_world``) and deterministic photo bytes.

Constants follow the real service (the project's reference notes, data_anchors.md section 1): per_page cap,
10,000-result window and its 403 message, photo size rules, license codes. The server is in inat_server.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import random
import re
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
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
PHOTO_HOST_RE = re.compile(r'https?://[^/"\s]+(?=/photos/\d+/)')

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


QUOTA_HTML = b"""<!DOCTYPE html>
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
