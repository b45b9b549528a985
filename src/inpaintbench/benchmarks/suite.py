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
from .schema import Field, Problems, Range, SuiteInvalid, fields_of

__all__ = ["DatasetRef", "ModelRun", "Published", "Suite", "SuiteInvalid", "is_set_folder", "load_suite",
           "parse_suite"]


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
    published_note: str = ""  # why a published protocol's row has no numbers yet (where to copy them from)


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


POSITIVE, NON_NEGATIVE = Range(1), Range(0)
TOP_FIELDS = {
    "name": Field(str, required=True), "description": Field(str), "seed": Field(int, range=NON_NEGATIVE),
    "output": Field(str), "dataset": Field(dict, required=True), "masks": Field(dict, required=True),
    "models": Field(list, required=True), "metrics": Field(list[str]),
    "samples_per_grid": Field(int, range=NON_NEGATIVE), "weights_dir": Field(str), "verify_weights": Field(bool),
    "strict": Field(bool),
}
DATASET_FIELDS = {"path": Field(str, required=True), "split": Field(str), "source": Field(str),
                  "build": Field(dict), "requires": Field(str)}
MASKS_FIELDS = {"levels": Field(list[str], required=True), "count": Field(int, range=POSITIVE),
                "requires": Field(dict[str, str])}
MODEL_FIELDS = {"name": Field(str, required=True), "label": Field(str), "options": Field(dict), "train": Field(dict),
                "train_split": Field(str), "checkpoint": Field(str), "requires": Field(str),
                "published": Field(list[dict]), "published_note": Field(str)}
# The ranges of TrainConfig's fields (its own __post_init__ checks the combinations, e.g. batch_size/accumulate).
TRAIN_RANGES = {"steps": NON_NEGATIVE, "batch_size": POSITIVE, "lr": Range(0, low_open=True),
                "betas": Range(0, 1, high_open=True), "seed": NON_NEGATIVE, "checkpoint_every": NON_NEGATIVE,
                "log_every": POSITIVE, "workers": Range(-1), "accumulate": POSITIVE, "clip_norm": NON_NEGATIVE,
                "ema": Range(0, 1, high_open=True), "sample_every": NON_NEGATIVE}
SPLITS = ("train", "val", "test")


def parse_suite(data: dict[str, Any], origin: str = "suite") -> Suite:
    """Validate a suite given as a dict (the parsed TOML) against its typed schema.

    Every key is checked before anything runs: unknown keys, missing ones, values of the wrong type (nothing is
    converted: ``count = "32"``, ``32.7`` or ``true`` is not an integer) and values out of range, then the names
    (models, levels, metrics, sources) against their registries.

    Raises:
        SuiteInvalid: one line per problem, each naming ``origin`` (the file), the key and what is expected.

    """
    problems = Problems(origin)
    top = problems.table(data, "", TOP_FIELDS)
    ds = problems.table(top.get("dataset", {}), "[dataset]", DATASET_FIELDS) if "dataset" in top else {}
    _check_dataset(ds, problems)
    masks = problems.table(top.get("masks", {}), "[masks]", MASKS_FIELDS) if "masks" in top else {}
    levels = tuple(masks.get("levels", ()))
    if "levels" in masks and not levels:
        problems.add("[masks] levels", "expected at least one level")
    if top.get("name") == "":
        problems.add("name", "expected a non-empty string")
    _check_levels(levels, masks.get("requires", {}), problems)
    seed = top.get("seed", 0)
    if "models" in top and not top["models"]:
        problems.add("[[models]]", "the suite needs at least one [[models]] entry")
    runs = [run for i, entry in enumerate(top.get("models", []))
            if (run := _model_run(entry, i, seed, levels, problems)) is not None]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        problems.add("[[models]] label", f"model labels must be unique, got {', '.join(twice)} twice; set `label`")
    metrics = tuple(top.get("metrics", DEFAULT_METRICS))
    for metric in metrics:
        problems.registry("metrics", lambda m=metric: METRICS.get(m))
    problems.raise_if_any()
    name = top["name"]
    return Suite(name=name, output=top.get("output", f"reports/{name}"),
                 dataset=DatasetRef(path=ds["path"], split=ds.get("split", "test"), source=ds.get("source"),
                                    build=dict(ds.get("build", {})), requires=ds.get("requires", "")),
                 levels=levels, mask_count=masks.get("count", 100), models=tuple(runs), metrics=metrics, seed=seed,
                 description=top.get("description", ""), samples_per_grid=top.get("samples_per_grid", 6),
                 weights_dir=top.get("weights_dir"), verify_weights=top.get("verify_weights", True),
                 strict=top.get("strict", False), mask_requires=dict(masks.get("requires", {})))


def _check_dataset(ds: dict[str, Any], problems: Problems) -> None:
    """The [dataset] table's split, source and build options (typed by the source builder's signature)."""
    from ..datasets import SOURCES

    if "split" in ds and ds["split"] not in SPLITS:
        problems.add("[dataset] split", f"expected one of {', '.join(SPLITS)}, got {ds['split']!r}")
    if "source" not in ds:
        if "build" in ds:
            problems.add("[dataset] build", "build options need a source (the builder they are passed to)")
        return
    builder = problems.registry("[dataset] source", lambda: SOURCES.get(ds["source"]))
    if builder is not None:
        problems.table(ds.get("build", {}), "[dataset] build", fields_of(builder, skip=("out",)),
                       f" for source {ds['source']!r}")


def _check_levels(levels: tuple[str, ...], requires: dict[str, str], problems: Problems) -> None:
    """Each level is a registered level or preset, or a frozen set folder; requires names only set folders."""
    for level in levels:
        if not is_set_folder(level):  # a frozen set folder (an imported set) is checked before the run
            problems.registry("[masks] levels", lambda lv=level: MASK_PRESETS.get(lv))
    if len(set(levels)) != len(levels):
        problems.add("[masks] levels", f"each level once, got {list(levels)}")
    for folder in requires:
        if folder not in levels or not is_set_folder(folder):
            problems.add(f"[masks] requires.{folder}", "expected a mask-set folder that is one of the levels")


def _model_run(entry: Any, i: int, seed: int, levels: tuple[str, ...], problems: Problems) -> ModelRun | None:
    """One [[models]] entry: its keys typed, its options against the model's config, its training options."""
    name = entry.get("name") if isinstance(entry, dict) else None
    where = f"[[models]] #{i + 1}" + (f" ({name})" if isinstance(name, str) else "")
    before = len(problems.lines)
    entry = problems.table(entry, where, MODEL_FIELDS)
    model = problems.registry(f"{where} name", lambda: MODELS.get(entry["name"])) if "name" in entry else None
    options = dict(entry.get("options", {}))
    if model is not None:
        fields = fields_of(type(model.config), required=False)  # the registered config supplies every value
        problems.table(options, f"{where} options", fields, f" for model {entry['name']!r}")
        if len(problems.lines) == before:
            problems.registry(f"{where} options", lambda: resolve_config(entry["name"], **options))
    train, checkpoint = None, entry.get("checkpoint")
    if checkpoint is not None:
        inference_only = model.model_cls.inference_options if model is not None else ()
        if "train" in entry or set(options) - set(inference_only):
            problems.add(f"{where} checkpoint", "a stored checkpoint brings its own config; remove [train] and the "
                         "options (only inference options such as EdgeConnect's edges may be set)")
    elif model is not None and model.model_cls.trainable:
        train = _train_config(entry.get("train", {}), f"{where} train", seed, problems)
    elif model is not None and "train" in entry:
        problems.add(f"{where} train", f"model {entry['name']!r} needs no training; remove [train]")
    published = tuple(p for j, item in enumerate(entry.get("published", []))
                      if (p := _published(item, f"{where} published #{j + 1}", levels, problems)) is not None)
    if len(problems.lines) != before or "name" not in entry:
        return None
    return ModelRun(label=entry.get("label", entry["name"]), name=entry["name"], options=options, train=train,
                    train_split=entry.get("train_split", "train"), checkpoint=checkpoint,
                    requires=entry.get("requires", ""), published=published,
                    published_note=entry.get("published_note", ""))


def _train_config(options: dict[str, Any], where: str, seed: int, problems: Problems) -> TrainConfig | None:
    """A TrainConfig from a [train] table, typed and bounded field by field before it is built."""
    before = len(problems.lines)
    good = problems.table(options, where, fields_of(TrainConfig, TRAIN_RANGES))
    for level in good.get("masks", ()):
        if not is_set_folder(level):
            problems.registry(f"{where}.masks", lambda lv=level: MASK_PRESETS.get(lv))
    if len(problems.lines) != before:
        return None
    return problems.registry(where, lambda: resolve_train_config(**{"seed": seed, **options}))


def is_set_folder(level: str) -> bool:
    """Whether a ``levels`` entry names a frozen mask-set folder (a path) rather than a level or preset."""
    return "/" in level


PUBLISHED_FIELDS = {"source": Field(str, required=True), "level": Field(str), "note": Field(str)}


def _published(item: Any, where: str, levels: tuple[str, ...], problems: Problems) -> Published | None:
    """A ``[[models.published]]`` table: ``source``, optional ``level`` and ``note``, and metric values."""
    if not isinstance(item, dict):
        problems.add(where, "expected a table")
        return None
    before = len(problems.lines)
    metrics = {k: Field(float) for k in item if k not in PUBLISHED_FIELDS and k in METRICS}
    for key in item:
        if key not in PUBLISHED_FIELDS and key not in METRICS:
            problems.registry(f"{where}.{key}", lambda k=key: METRICS.get(k))
    good = problems.table({k: v for k, v in item.items() if k in PUBLISHED_FIELDS or k in METRICS}, where,
                          {**PUBLISHED_FIELDS, **metrics})
    level = good.get("level", "")
    if level and level not in levels:
        problems.add(f"{where}.level", f"expected one of the suite's levels {list(levels)}, got {level!r}")
    if len(problems.lines) != before:
        return None
    return Published(source=good["source"], values={k: float(good[k]) for k in metrics}, level=level,
                     note=good.get("note", ""))


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
