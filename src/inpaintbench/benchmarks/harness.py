"""The harness: run a suite (train what needs training, evaluate on frozen masks), cache and resume.

Each (model, level) evaluation is a *run*, identified by a hash of the dataset content, split, mask set
content, model config, checkpoint content and seed. Its per-image metrics are rows of results.parquet;
a run already recorded is never recomputed. A few composites per run are saved as PNG for the report grids.

Everything read is checked against what was recorded when it was written: the evaluated images against the
dataset manifest's sha256, each mask against its set's manifest (a set the harness made is rebuilt when it
differs), weights against their model card (a run it trained is trained again when they differ). The output
folder is locked while a suite runs, and each run is recorded in one atomic step (:mod:`.results`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .._io import atomic_write, discard_tree, named_os_errors
from .._registry import InpaintbenchError
from ..datasets import SOURCES
from ..datasets.loader import InpaintDataset
from ..datasets.shards import read_info
from ..masks.sets import MaskSetMismatch, load_mask_set, make_mask_set, set_fingerprint, verify_mask_set
from ..models.base import MODELS, InpaintModel, create_model, resolve_config
from ..models.resume import STATE_FILE, load_state
from ..models.store import WEIGHTS_FILE, load_stored, read_card, resolve_entry
from ..models.train import check_training, load_weights, run_folder, train_model
from .layout import (
    HOLDER_FILE,
    LOCK_FILE,
    RESULTS_FILE,
    RUN_METRICS_FILE,
    RUNS_DIR,
    grid_indices,
    hole_distance,
    worst_indices,
)
from .metrics import METRICS, PIXEL_METRICS, MetricContext
from .results import RunStore, locked
from .scoring import build_metrics, evaluate, set_metrics
from .suite import ModelRun, Suite, is_set_folder, load_suite

__all__ = ["RESULTS_FILE", "RUN_METRICS_FILE", "MissingRequirements", "check_requirements", "ensure_dataset",
           "evaluate", "evaluate_checkpoint", "freeze_masks", "grid_indices", "run_benchmark", "weights_identity"]

def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_fingerprint(path: str | Path, split: str) -> str:
    """A short hash of a split's content (the sha256 of every image in its manifest)."""
    manifest = pd.read_parquet(Path(path) / "manifest.parquet", columns=["split", "status", "sha256"])
    ok = manifest[(manifest["split"] == split) & (manifest["status"] == "ok")]
    return hashlib.sha256("".join(ok["sha256"]).encode()).hexdigest()[:16]


def run_id(**parts: Any) -> str:
    """The id of a run: a short hash of everything that determines its numbers."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class MissingRequirements(InpaintbenchError):
    """What a suite needs and does not find, one line per item with the command that provides it."""

    def __init__(self, suite: str, items: list[str]) -> None:
        self.items = items
        super().__init__(f"suite {suite} cannot run: {len(items)} missing item{'s' * (len(items) > 1)} "
                         "(nothing was written)\n" + "\n".join(f"  - {item}" for item in items))


def check_requirements(suite: Suite) -> list[str]:
    """What the suite needs that is not here, one line per item: what, and the command that provides it.

    Checked before anything is written: the dataset (unless the suite can build it), frozen mask-set folders,
    stored checkpoints, what each training run still to make needs before its first step (its loss networks'
    pretrained files, a fixed training size; once the dataset is there), and for a ``strict`` suite (a published
    protocol) the metrics' pretrained networks.
    """
    from .._weights import WeightsUnavailable, locate
    from ..models.store import list_checkpoints

    missing = []
    data = Path(suite.dataset.path)
    if not (data / "dataset.json").exists() and suite.dataset.source is None:
        how = suite.dataset.requires or "a dataset folder with dataset.json (see `inpaintbench data build --help`)"
        missing.append(f"dataset {data}: {how}")
    for level in suite.levels:
        if is_set_folder(level) and not (Path(level) / "manifest.parquet").exists():
            how = suite.mask_requires.get(level, "a frozen mask set (see `inpaintbench masks import --help`)")
            missing.append(f"mask set {level}: {how}")
    stored = {card["name"] for card in list_checkpoints()}
    for run in suite.models:
        if run.checkpoint and run.checkpoint not in stored and not Path(run.checkpoint).is_dir():
            how = run.requires or f"`inpaintbench weights import-model {run.name} FILE --name {run.checkpoint}`"
            missing.append(f"checkpoint {run.checkpoint} ({run.label}): {how}")
    if (data / "dataset.json").exists():  # without the dataset its image size, which some checks need, is unknown
        for run in suite.models:
            if run.train is None or run.checkpoint:
                continue
            options = _training_options(run)
            train_options = dataclasses.asdict(run.train)
            if (run_folder(run.name, data, split=run.train_split, model_options=options, **train_options)
                    / WEIGHTS_FILE).exists():
                continue  # trained already: its loss networks are not needed again
            try:
                check_training(run.name, data, run.train_split, options)
            except InpaintbenchError as err:
                missing.append(f"training {run.label}: {err}")
    if suite.strict:
        needed = dict.fromkeys(w for m in suite.metrics for w in METRICS.get(m).weights)
        for name in needed:
            try:
                locate(name, suite.weights_dir, suite.verify_weights)
            except WeightsUnavailable as err:
                missing.append(f"weights {name}: {err}")
    return missing


def ensure_dataset(suite: Suite) -> Path:
    """The suite's dataset folder, built first when it is missing and the suite names a source.

    The build holds a lock next to the dataset folder (``.<name>.lock``), so two suites that need the same
    dataset build it once: the second waits, then finds it complete.
    """
    from filelock import FileLock

    path = Path(suite.dataset.path)
    if not (path / "dataset.json").exists():
        if suite.dataset.source is None:
            raise InpaintbenchError(f"dataset {path} is missing and the suite names no source to build it from")
        with named_os_errors("building the dataset", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(path.parent / f".{path.name}.lock"):
                if not (path / "dataset.json").exists():
                    SOURCES.get(suite.dataset.source)(out=path, **suite.dataset.build)
    read_info(path)
    return path


def prepare_model(run: ModelRun, data: Path) -> tuple[InpaintModel, str]:
    """Build the model of a run, training it first if needed; return it (in eval mode) and its weights file.

    A run that names a stored ``checkpoint`` (an imported official file, say) loads it from the store instead.
    """
    if run.checkpoint:
        model, card = load_stored(run.checkpoint, model=run.name)
        checkpoint = str(resolve_entry(run.checkpoint) / WEIGHTS_FILE)
        if run.options:  # inference options only (the schema refuses the others on a stored checkpoint)
            model = _with_inference_options(model, card, run.options, checkpoint)
        return model, checkpoint
    if run.train is not None:
        train_options = dataclasses.asdict(run.train)
        inference_only = MODELS.get(run.name).model_cls.inference_options
        options = _training_options(run)
        folder = run_folder(run.name, data, split=run.train_split, model_options=options, **train_options)
        with named_os_errors(f"training {run.label} into", folder):
            checkpoint = str(train_model(run.name, data, out=folder, split=run.train_split, model_options=options,
                                         **train_options))
        model, card = load_stored(checkpoint)  # the trained config (a fixed size may come from the dataset)
        inference = {k: v for k, v in run.options.items() if k in inference_only}
        if inference:  # the same weights, run with the row's inference options
            model = _with_inference_options(model, card, inference, checkpoint)
        return model, checkpoint
    return create_model(run.name, **run.options).eval(), ""


def _training_options(run: ModelRun) -> dict[str, Any]:
    """A run's model options that its training sees (options of inference only make no other training run)."""
    inference_only = MODELS.get(run.name).model_cls.inference_options
    return {k: v for k, v in run.options.items() if k not in inference_only}


def _with_inference_options(model: InpaintModel, card: dict[str, Any], options: dict[str, Any],
                            checkpoint: str) -> InpaintModel:
    """The same weights in a model built with options that change inference only (EdgeConnect's oracle edges)."""
    tuned = create_model(card["model"], **{**card.get("config", {}), **options})
    tuned.load_inference_state_dict(model.inference_state_dict(), source=checkpoint, model_name=card["model"])
    return tuned.eval()


def _label_names(data: Path, keys: list[str]) -> np.ndarray:
    """The class name of each evaluated image, from the dataset manifest ("" when the dataset has none)."""
    manifest = pd.read_parquet(data / "manifest.parquet")
    if "label_name" not in manifest:
        return np.full(len(keys), "", dtype=object)
    names = dict(zip(manifest["key"], manifest["label_name"].fillna("").astype(str), strict=True))
    return np.array([names.get(k, "") for k in keys], dtype=object)


def _difficulty_columns(folder: Path, masks: np.ndarray, manifest: pd.DataFrame,
                        labels: np.ndarray) -> dict[str, np.ndarray]:
    """The per-image difficulty columns of one level (:data:`.layout.DIFFICULTY_COLUMNS`)."""
    n = len(masks)
    spec = json.loads((folder / "set.json").read_text()).get("spec") or {}
    return {"components": manifest["components"].to_numpy() if "components" in manifest else np.full(n, -1),
            "touches_border": manifest["touches_border"].to_numpy() if "touches_border" in manifest
            else np.zeros(n, bool),
            "hole_distance": hole_distance(masks), "shape": np.full(n, str(spec.get("family", "")), dtype=object),
            "label_name": labels}


def freeze_masks(level: str, count: int, size: int, seed: int) -> Path:
    """The frozen mask set of a ``levels`` entry, checked file by file against its manifest.

    A set the harness makes (a level or preset name) that no longer matches its manifest is rebuilt, with a
    warning: its masks depend only on (level, size, seed, index), so the rebuilt set is the one the run ids name.
    A set folder named in the suite (an imported set) cannot be rebuilt: a mismatch is an error naming the file.
    """
    if is_set_folder(level):
        verify_mask_set(level)
        return Path(level)
    folder = make_mask_set(level, count=count, size=size, seed=seed)
    try:
        verify_mask_set(folder)
    except MaskSetMismatch as err:
        warnings.warn(f"{err}; rebuilding the set", stacklevel=2)
        discard_tree(folder)
        folder = make_mask_set(level, count=count, size=size, seed=seed)
        verify_mask_set(folder)
    return folder


def weights_identity(run: ModelRun, data: Path) -> tuple[dict[str, Any], str] | None:
    """The config and weights sha256 a run will evaluate, read from model cards without loading any weights.

    None when the weights are still to be made (a training run not finished yet, or its card is unreadable):
    then the model is prepared first. With the identity known, a model whose runs are all recorded is not
    touched at all, so a truncated weights file does not stop a suite whose results exist.
    """
    if run.train is None and not run.checkpoint:
        return dataclasses.asdict(resolve_config(run.name, **run.options)), ""
    try:
        if run.checkpoint:
            card = read_card(resolve_entry(run.checkpoint))
        else:
            card = read_card(run_folder(run.name, data, split=run.train_split, model_options=_training_options(run),
                                        **dataclasses.asdict(run.train)))
            if card.get("train", {}).get("steps", -1) < run.train.steps:
                return None
        # the config the weights were made with, as prepare_model loads it (a fixed size may come from the dataset),
        # with the row's inference-only options on top
        inference_only = MODELS.get(run.name).model_cls.inference_options
        inference = {k: v for k, v in run.options.items() if k in inference_only}
        config = dataclasses.asdict(resolve_config(card["model"], **{**card.get("config", {}), **inference}))
        return (config, card["sha256"]) if isinstance(card.get("sha256"), str) else None
    except (InpaintbenchError, KeyError, TypeError):
        return None


def _train_steps(run: ModelRun, checkpoint: str) -> int:
    """The training steps behind a row: the suite's, or for a stored training run its card's (0 for imported files)."""
    if run.train is not None:
        return run.train.steps
    if not run.checkpoint or not checkpoint:
        return 0
    card = read_card(Path(checkpoint).parent)
    return int(card.get("train", {}).get("steps", 0)) if card.get("source") == "trained" else 0


def _weights_sha(checkpoint: str) -> str:
    """The sha256 of the weights a prepared model was loaded from ("" for none); loading checked it on the card."""
    if not checkpoint:
        return ""
    path = Path(checkpoint)
    if path.name == WEIGHTS_FILE:
        card = read_card(path.parent)
        if isinstance(card.get("sha256"), str):
            return card["sha256"]
    return file_sha256(path)


def run_benchmark(path: str | Path, resume: bool = True, output: str | Path | None = None,
                  weights_dir: str | Path | None = None, wait: bool = False,
                  finish: Callable[[Path, Path, Suite], Any] | None = None) -> Path:
    """Run a benchmark suite's plan and record its results; return the results.parquet path.

    The suite is validated and its requirements checked before anything is written; the output folder is then
    locked (a second run on it stops with a message naming the holder, or waits with ``wait``). Each run is
    recorded in one atomic step (see :mod:`.results`), so the suite can be killed at any moment and resumed.
    ``ib.run_suite`` (:mod:`inpaintbench.bench`) is this plus the report: the harness never imports the
    reports, a later stage.

    Args:
        path: suite TOML file.
        resume: keep the runs already recorded (False recomputes everything).
        output: output folder (default: the suite's ``output``).
        weights_dir: where metric networks are looked for (overrides the suite's ``weights_dir``).
        wait: when another run holds the output folder, wait for it instead of stopping.
        finish: called as ``finish(results_path, output_folder, suite)`` when the runs are recorded, still under
            the folder's lock (so a report matches the results it was made from).

    Example:
        >>> run_benchmark("benchmarks/demo.toml")  # doctest: +SKIP

    """
    suite = load_suite(path)
    if weights_dir is not None:
        suite = dataclasses.replace(suite, weights_dir=str(weights_dir))
    missing = check_requirements(suite)
    if missing:
        raise MissingRequirements(suite.name, missing)
    out = Path(output if output is not None else suite.output)
    data = ensure_dataset(suite)
    created = not out.exists()
    try:
        with locked(out, wait=wait):
            results_path = _run_plan(suite, data, out, resume)
            if finish is not None:
                finish(results_path, out, suite)
    except BaseException:
        if created:
            _remove_if_unused(out)
        raise
    return results_path


def _remove_if_unused(out: Path) -> None:
    """Remove an output folder this run created when it holds nothing but the lock (nothing was recorded)."""
    leftovers = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if leftovers <= {LOCK_FILE, HOLDER_FILE, RUNS_DIR} and not any((out / RUNS_DIR).glob("*")):
        shutil.rmtree(out, ignore_errors=True)


def _run_plan(suite: Suite, data: Path, out: Path, resume: bool) -> Path:
    """Evaluate every (model, level) run of the suite that is not recorded yet (under the folder's lock)."""
    store = RunStore(out, resume=resume)
    images_ds = InpaintDataset(data, suite.dataset.split, in_memory=False)  # only the evaluated images are decoded
    count = min(suite.mask_count, len(images_ds))
    images = images_ds.images_at(range(count))  # each checked against the manifest's sha256 as it is read
    size = images_ds.size
    data_fp = dataset_fingerprint(data, suite.dataset.split)
    mask_sets = {level: freeze_masks(level, count, size, suite.seed) for level in suite.levels}
    fingerprints = {level: set_fingerprint(folder) for level, folder in mask_sets.items()}
    for folder in mask_sets.values():
        info = json.loads((folder / "set.json").read_text())
        if info.get("size") != size or info.get("count", 0) < count:
            raise InpaintbenchError(f"mask set {folder} holds {info.get('count')} masks of {info.get('size')} px; "
                                    f"the suite needs {count} of {size} px")
    context = MetricContext(suite.weights_dir, suite.verify_weights)
    functions, unavailable = build_metrics(suite.metrics, context)
    loaded_masks: dict[str, tuple[np.ndarray, pd.DataFrame]] = {}
    labels = _label_names(data, images_ds.keys[:count])
    difficulty: dict[str, dict[str, np.ndarray]] = {}
    planned: list[str] = []
    for run in suite.models:

        def ids(config: dict[str, Any], weights: str, run: ModelRun = run) -> dict[str, str]:
            return {level: run_id(dataset=data_fp, split=suite.dataset.split, masks=fingerprints[level],
                                  model=run.name, config=config, checkpoint=weights, seed=suite.seed,
                                  metrics=suite.metrics, label=run.label, level=level, unavailable=sorted(unavailable))
                    for level in suite.levels}

        known = weights_identity(run, data)
        rids = ids(*known) if known is not None else {}
        if not rids or not set(rids.values()) <= store.done:
            model, checkpoint = prepare_model(run, data)
            rids = ids(dataclasses.asdict(model.config), _weights_sha(checkpoint))
            for level, rid in rids.items():
                if rid in store.done:
                    continue
                if level not in loaded_masks:
                    masks, manifest, _ = load_mask_set(mask_sets[level])  # verified against its manifest again
                    loaded_masks[level] = masks[:count], manifest.iloc[:count]
                    difficulty[level] = _difficulty_columns(mask_sets[level], *loaded_masks[level], labels)
                masks, manifest = loaded_masks[level]
                tqdm.write(f"eval {run.label} on {level} ({count} images)")
                shown = grid_indices(count, suite.samples_per_grid)
                columns, composites, all_composites = evaluate(model, images, torch.from_numpy(masks), functions,
                                                               keep=shown)
                rows = pd.DataFrame({
                    "run_id": rid, "suite": suite.name, "model": run.label, "model_name": run.name,
                    "model_config": json.dumps(dataclasses.asdict(model.config), sort_keys=True, default=str),
                    "train_steps": _train_steps(run, checkpoint), "checkpoint": checkpoint,
                    "level": level, "dataset": str(data), "split": suite.dataset.split,
                    "mask_set": str(mask_sets[level]), "seed": suite.seed, "size": size, "image": np.arange(count),
                    "key": images_ds.keys[:count], "area_ratio": manifest["area_ratio"].to_numpy(),
                    **{m: columns[m] if m in columns else np.full(count, np.nan)
                       for m in suite.metrics if METRICS.get(m).kind == "image"},
                    **difficulty[level],
                })
                worst = worst_indices(columns["mse"])
                kept = dict(zip(shown, composites, strict=True))
                kept.update({i: all_composites[i].permute(1, 2, 0).numpy() for i in worst if i not in kept})
                per_run = set_metrics(suite, all_composites, images, columns["mse"],
                                      f"{data_fp}-{suite.dataset.split}-{size}-n{count}", context)
                per_run += [{"metric": m, "value": float("nan"), "n_images": count, "comparable": False,
                             "status": "unavailable", "reason": reason} for m, reason in unavailable.items()]
                per_run = pd.DataFrame([{"run_id": rid, "model": run.label, "level": level, **r} for r in per_run])
                store.commit(rid, rows, per_run, kept)
                store.write([*planned, *rids.values()])  # the tables follow every run, for a report on the way
        planned += rids.values()
    if not store.done & set(planned):
        raise InpaintbenchError(f"suite {suite.name} produced no results")
    # Only this plan's runs, in plan order: runs the suite no longer contains stay in outputs/ but leave the tables.
    return store.write(planned)


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, masks: str | Path, split: str = "test",
                        count: int | None = None, seed: int = 0, metrics: tuple[str, ...] | None = None,
                        weights_dir: str | Path | None = None, out: str | Path | None = None) -> pd.DataFrame:
    """Evaluate a training run's checkpoint on a frozen mask set; return one row of metrics per image.

    Args:
        checkpoint: a checkpoint-store entry (a run folder, its model.safetensors, or the name of an imported
            checkpoint), whose card names the model and its config; or an unfinished run's checkpoint.pt.
        data: dataset folder.
        masks: a frozen mask set folder (masks/sets/<name>), or a level or preset name, frozen at the images'
            size with ``count`` and ``seed`` (the same set a suite with that seed uses).
        split: the split evaluated.
        count: at most this many images (default: the whole split, or the mask set's size if smaller).
        seed: seed of the mask set when ``masks`` is a name.
        metrics: per-image metrics (default: the pixel metrics); those that cannot run here are left out and
            listed with their reason in the frame's ``attrs["unavailable"]``.
        weights_dir: where metric networks are looked for.
        out: when given, the frame is also written there as parquet.

    Example:
        >>> evaluate_checkpoint("models/checkpoints/cnn-1", "datasets/sample-64", "L3")  # doctest: +SKIP

    """
    if count is not None and count < 1:
        raise InpaintbenchError(f"count must be at least 1, got {count}")
    if Path(checkpoint).name == STATE_FILE:
        state = load_state(checkpoint)
        name = state.get("model_name")
        if not name:
            raise InpaintbenchError(f"{checkpoint} does not name its model (not written by the inpaintbench Trainer)")
        model = load_weights(create_model(name, **json.loads(state["model_config"])), checkpoint).eval()
    else:
        model, card = load_stored(checkpoint)
        name = card["model"]
    images_ds = InpaintDataset(data, split, in_memory=False)  # only the evaluated images are decoded
    images = images_ds.images_at(range(min(count, len(images_ds)) if count else len(images_ds)))
    size = images_ds.size
    if not Path(masks).is_dir():
        masks = make_mask_set(str(masks), count=len(images), size=size, seed=seed)
    mask_array, manifest, _ = load_mask_set(masks)
    if mask_array.shape[-1] != size:
        raise InpaintbenchError(f"mask set {masks} is {mask_array.shape[-1]} px, the images are {size} px")
    n = min(len(images), len(mask_array))
    functions, unavailable = build_metrics(tuple(metrics or PIXEL_METRICS), MetricContext(weights_dir))
    columns, _, _ = evaluate(model, images[:n], torch.from_numpy(mask_array[:n]), functions)
    frame = pd.DataFrame({"key": images_ds.keys[:n], "image": np.arange(n), "model": name,
                          "checkpoint": str(checkpoint), "mask_set": str(masks),
                          "area_ratio": manifest["area_ratio"].to_numpy()[:n],
                          **{m: columns[m] for m in functions}})
    frame.attrs["unavailable"] = unavailable
    if out is not None:
        with named_os_errors("creating the folder of", out):
            Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda p: frame.to_parquet(p, index=False))
    return frame
