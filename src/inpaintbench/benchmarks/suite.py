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


@dataclass(frozen=True)
class ModelRun:
    """One row of the leaderboard: a registered model, its options and its training budget."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None  # None for models that need no training
    train_split: str = "train"


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
                                "samples_per_grid", "weights_dir", "verify_weights"},
                 {"name", "dataset", "masks", "models"})
    ds = _table(top["dataset"], f"{origin} [dataset]", {"path", "split", "source", "build"}, {"path"})
    dataset = DatasetRef(path=str(ds["path"]), split=str(ds.get("split", "test")), source=ds.get("source"),
                         build=dict(ds.get("build", {})))
    masks = _table(top["masks"], f"{origin} [masks]", {"levels", "count"}, {"levels"})
    levels = tuple(masks["levels"])
    for level in levels:
        MASK_PRESETS.get(level)
    count = int(masks.get("count", 100))
    if count < 1:
        raise InpaintbenchError(f"{origin} [masks] count must be at least 1")
    if not isinstance(top["models"], list) or not top["models"]:
        raise InpaintbenchError(f"{origin} needs at least one [[models]] entry")
    runs = []
    seed = int(top.get("seed", 0))
    for i, entry in enumerate(top["models"]):
        where = f"{origin} [[models]] #{i + 1}"
        entry = _table(entry, where, {"name", "label", "options", "train", "train_split"}, {"name"})
        model = MODELS.get(entry["name"])
        options = dict(entry.get("options", {}))
        resolve_config(entry["name"], **options)
        train = None
        if model.model_cls.trainable:
            train = resolve_train_config(**{"seed": seed, **entry.get("train", {})})
        elif "train" in entry:
            raise InpaintbenchError(f"{where}: model {entry['name']!r} needs no training; remove [train]")
        runs.append(ModelRun(label=str(entry.get("label", entry["name"])), name=entry["name"], options=options,
                             train=train, train_split=str(entry.get("train_split", "train"))))
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise InpaintbenchError(f"{origin}: model labels must be unique, got {labels}; set `label`")
    metrics = tuple(top.get("metrics", DEFAULT_METRICS))
    for metric in metrics:
        METRICS.get(metric)
    return Suite(name=str(top["name"]), output=str(top.get("output", f"reports/{top['name']}")), dataset=dataset,
                 levels=levels, mask_count=count, models=tuple(runs), metrics=metrics, seed=seed,
                 description=str(top.get("description", "")), samples_per_grid=int(top.get("samples_per_grid", 6)),
                 weights_dir=top.get("weights_dir"), verify_weights=bool(top.get("verify_weights", True)))


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
