"""The iNaturalist recipe: classes and their queries, licenses, sizes, splits and politeness (a TOML file)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..._registry import InpaintbenchError
from ..polite import Politeness

DEFAULT_RECIPE = "datasets/inat-cats-dogs-birds.toml"
PHOTO_SIZES = ("square", "small", "medium", "large", "original")
# Photo licenses as the API spells them (photo.license_code); null means all rights reserved.
LICENSES = ("cc0", "cc-by", "cc-by-sa", "cc-by-nc", "cc-by-nc-sa", "cc-by-nd", "cc-by-nc-nd")
LICENSE_URLS = {"cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
                **{code: f"https://creativecommons.org/licenses/{code[3:]}/4.0/" for code in LICENSES[1:]}}


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
    check_recipe(recipe, where)
    return recipe


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def check_recipe(recipe: Recipe, where: str) -> None:
    """One-line errors for a recipe that cannot be built (licenses, sizes, splits, class names)."""
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
