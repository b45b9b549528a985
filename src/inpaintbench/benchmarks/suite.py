"""Benchmark suites: a TOML file -> a validated plan (dataset x mask levels x models)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._registry import InpaintbenchError
from ..masks.levels import MASK_PRESETS
from ..models.base import MODELS, resolve_config
from ..models.train import TrainConfig, resolve_train_config
from .metrics import DEFAULT_METRICS, METRICS


@dataclass(frozen=True)
class DatasetRef:
    """Where the evaluation images are, and how to build them when missing."""

    path: str
    split: str = "test"
    source: str | None = None  # a SOURCES name: build the dataset with `build` options when missing
    build: dict[str, Any] = field(default_factory=dict)
    requires: str = ""  # the command that provides the dataset when it cannot be built automatically


@dataclass(frozen=True)
class Published:
    """Numbers a paper or a model zoo published for one row of the leaderboard, with their source.

    ``level`` is the mask level (or set) they belong to ("" = every level of the suite); ``values`` maps our
    metric names to the published value on our scale (e.g. MMagic's "l1 error" / 100 is our ``l1_hole``).
    """

    source: str
    values: dict[str, float]
    level: str = ""
    note: str = ""


@dataclass(frozen=True)
class ModelRun:
    """One row of the leaderboard: a registered model, its options and its training budget."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None  # None for models that need no training (or that load a stored checkpoint)
    train_split: str = "train"
    checkpoint: str | None = None  # a checkpoint-store entry to evaluate instead of training (imported weights)
    requires: str = ""  # the command that puts ``checkpoint`` into the store
    published: tuple[Published, ...] = ()  # the paper's / zoo's numbers for this row


@dataclass(frozen=True)
class Suite:
    """A validated benchmark plan."""

    name: str
    output: str
    dataset: DatasetRef
    levels: tuple[str, ...]
    mask_count: int
    models: tuple[ModelRun, ...]
    metrics: tuple[str, ...]
    seed: int = 0
    description: str = ""
    samples_per_grid: int = 6
    weights_dir: str | None = None  # where metric networks are looked for (default: the torch hub cache)
    verify_weights: bool = True  # False only for tests that plug in randomly initialised networks
    strict: bool = False  # stop before anything runs when a metric's network is missing (published protocols)
    mask_requires: dict[str, str] = field(default_factory=dict)  # mask set folder -> the command that makes it


def _table(data: dict[str, Any], where: str, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InpaintbenchError(f"{where} must be a table")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InpaintbenchError(f"unknown key {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise InpaintbenchError(f"missing key {', '.join(missing)} in {where}")
    return data


def parse_suite(data: dict[str, Any], origin: str = "suite") -> Suite:
    """Validate a suite given as a dict (the parsed TOML); errors name the offending key."""
    top = _table(data, origin, {"name", "description", "seed", "output", "dataset", "masks", "models", "metrics",
                                "samples_per_grid", "weights_dir", "verify_weights", "strict"},
                 {"name", "dataset", "masks", "models"})
    ds = _table(top["dataset"], f"{origin} [dataset]", {"path", "split", "source", "build", "requires"}, {"path"})
    dataset = DatasetRef(path=str(ds["path"]), split=str(ds.get("split", "test")), source=ds.get("source"),
                         build=dict(ds.get("build", {})), requires=str(ds.get("requires", "")))
    masks = _table(top["masks"], f"{origin} [masks]", {"levels", "count", "requires"}, {"levels"})
    levels = tuple(masks["levels"])
    for level in levels:
        if not is_set_folder(level):  # a frozen set folder (an imported set) is checked before the run
            MASK_PRESETS.get(level)
    mask_requires = dict(masks.get("requires", {}))
    count = int(masks.get("count", 100))
    if count < 1:
        raise InpaintbenchError(f"{origin} [masks] count must be at least 1")
    if not isinstance(top["models"], list) or not top["models"]:
        raise InpaintbenchError(f"{origin} needs at least one [[models]] entry")
    runs = []
    seed = int(top.get("seed", 0))
    for i, entry in enumerate(top["models"]):
        where = f"{origin} [[models]] #{i + 1}"
        entry = _table(entry, where, {"name", "label", "options", "train", "train_split", "checkpoint", "requires",
                                      "published"}, {"name"})
        model = MODELS.get(entry["name"])
        options = dict(entry.get("options", {}))
        resolve_config(entry["name"], **options)
        train = None
        checkpoint = entry.get("checkpoint")
        if checkpoint is not None:
            if "train" in entry or options:
                raise InpaintbenchError(f"{where}: a stored checkpoint brings its own config; remove [train] and "
                                        "options")
        elif model.model_cls.trainable:
            train = resolve_train_config(**{"seed": seed, **entry.get("train", {})})
        elif "train" in entry:
            raise InpaintbenchError(f"{where}: model {entry['name']!r} needs no training; remove [train]")
        published = tuple(_published(item, f"{where} published #{j + 1}", levels)
                          for j, item in enumerate(entry.get("published", [])))
        runs.append(ModelRun(label=str(entry.get("label", entry["name"])), name=entry["name"], options=options,
                             train=train, train_split=str(entry.get("train_split", "train")),
                             checkpoint=None if checkpoint is None else str(checkpoint),
                             requires=str(entry.get("requires", "")), published=published))
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise InpaintbenchError(f"{origin}: model labels must be unique, got {labels}; set `label`")
    metrics = tuple(top.get("metrics", DEFAULT_METRICS))
    for metric in metrics:
        METRICS.get(metric)
    return Suite(name=str(top["name"]), output=str(top.get("output", f"reports/{top['name']}")), dataset=dataset,
                 levels=levels, mask_count=count, models=tuple(runs), metrics=metrics, seed=seed,
                 description=str(top.get("description", "")), samples_per_grid=int(top.get("samples_per_grid", 6)),
                 weights_dir=top.get("weights_dir"), verify_weights=bool(top.get("verify_weights", True)),
                 strict=bool(top.get("strict", False)), mask_requires=mask_requires)


def is_set_folder(level: str) -> bool:
    """Whether a ``levels`` entry names a frozen mask-set folder (a path) rather than a level or preset."""
    return "/" in level


def _published(item: Any, where: str, levels: tuple[str, ...]) -> Published:
    """A ``[[models.published]]`` table: ``source``, optional ``level`` and ``note``, and metric values."""
    if not isinstance(item, dict):
        raise InpaintbenchError(f"{where} must be a table")
    values = {k: v for k, v in item.items() if k not in ("source", "level", "note")}
    for key, value in values.items():
        METRICS.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InpaintbenchError(f"{where}: {key} must be a number, got {value!r}")
    if "source" not in item:
        raise InpaintbenchError(f"{where} needs a source (where the numbers were published)")
    level = str(item.get("level", ""))
    if level and level not in levels:
        raise InpaintbenchError(f"{where}: level {level!r} is not one of the suite's levels {list(levels)}")
    return Published(source=str(item["source"]), values={k: float(v) for k, v in values.items()}, level=level,
                     note=str(item.get("note", "")))


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite TOML file."""
    path = Path(path)
    if not path.is_file():
        raise InpaintbenchError(f"suite file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InpaintbenchError(f"suite file {path} is not valid TOML: {err}") from None
    return parse_suite(data, origin=str(path))
