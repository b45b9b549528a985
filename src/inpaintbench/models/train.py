"""The Trainer: a run folder trained for ``config.steps`` steps, with exact resume, logs, samples and DDP.

A model names its optimiser groups and, per step, which of them train and what each minimises (see
InpaintModel); :mod:`.steps` builds the groups and makes one step, :mod:`.batches` feeds it. An optional EMA
follows the ``generator`` group.

The data order is a function of (seed, step) (:mod:`.batches`), and the global random generators are seeded
from (seed, step) at every step. The resumable state (:mod:`.resume`) holds every network, optimiser, schedule
and the EMA, so a run stopped at a checkpoint and resumed gives the weights and losses of an uninterrupted run.
A finished run keeps its inference weights in the checkpoint store (:mod:`.store`). Losses stay on the device
between log steps (no host sync per step). Under ``torchrun`` every process takes a disjoint part of each batch
(``B / world_size`` samples), gradients are all-reduced, and process 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from .._io import atomic_write, remove_stale_partials
from .._registry import InpaintbenchError
from ..datasets.loader import InpaintDataset
from .base import MODELS, InpaintModel, create_model, resolve_config
from .batches import make_loader
from .resume import STATE_FILE, load_state, save_state, seed_step
from .run_logs import RunLogs, sample_grid
from .steps import Group, Health, build_groups, compile_networks, make_ema, train_step, update_ema
from .store import CARD_FILE, DEFAULT_STORE, WEIGHTS_FILE, read_stored_weights, write_entry


@dataclass(frozen=True)
class TrainConfig:
    """Training options. Groups take ``lr`` and ``betas`` from here unless the model's group sets its own."""

    steps: int = 1000  # optimiser steps
    batch_size: int = 32  # samples per step, over all processes and micro-batches
    lr: float | None = None  # the generator's learning rate (None: the model's own, else 2e-4); see steps.group_lrs
    betas: tuple[float, float] = (0.9, 0.999)  # default Adam betas of the groups
    masks: tuple[str, ...] = ("L1", "L2", "L3")  # levels or presets drawn uniformly for training masks
    seed: int = 0  # seeds the initial weights, the data order and the masks
    checkpoint_every: int = 0  # steps between resumable states; 0 = a tenth of the run, at most 250
    log_every: int = 25  # steps between CSV log rows
    workers: int = -1  # DataLoader worker processes; -1 = auto (CUDA: from the core count, CPU: 0)
    device: str = "auto"  # auto = CUDA when available, else CPU
    bf16: bool = True  # bf16 autocast (and channels_last) on CUDA; ignored on CPU
    accumulate: int = 1  # micro-batches per step (gradient accumulation); batch_size must divide by it
    clip_norm: float = 0.0  # gradient-norm clipping for groups that set none (0 = off)
    ema: float = 0.0  # EMA decay of the generator's weights (0 = off; e.g. 0.999)
    compile: bool = False  # torch.compile the generators (discriminators stay eager: see steps.compile_networks)
    sample_every: int = 0  # steps between sample grids in <run>/samples/ (0 = only at the end)
    keep_state: bool = False  # keep checkpoint.pt after the run finishes, so that a longer run can continue it
    tf32: bool = True  # CUDA: TF32 tensor cores for fp32 matmuls and convolutions (set explicitly, recorded)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "masks", tuple(self.masks))
        if self.steps < 0 or self.batch_size < 1 or (self.lr is not None and self.lr <= 0):
            raise InpaintbenchError("train options need steps >= 0, batch_size >= 1 and lr > 0")
        if self.accumulate < 1 or self.batch_size % self.accumulate:
            raise InpaintbenchError(f"batch_size {self.batch_size} must be a multiple of accumulate {self.accumulate}")
        if not 0 <= self.ema < 1:
            raise InpaintbenchError(f"ema is a decay in [0, 1), got {self.ema}")


def resolve_train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from keyword options; unknown keys fail with a one-line error."""
    from .._registry import suggestion

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InpaintbenchError(f"unknown train option {', '.join(unknown)}{suggestion(unknown[0], sorted(fields))}")
    return TrainConfig(**options)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InpaintbenchError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InpaintbenchError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use auto or cpu")
    return device


def set_backends(config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Set the CUDA math settings explicitly (TF32, cuDNN autotuning) and return them for the run's config.json."""
    if device.type != "cuda":
        return {"device": str(device)}
    torch.backends.cuda.matmul.allow_tf32 = config.tf32
    torch.backends.cudnn.allow_tf32 = config.tf32
    torch.backends.cudnn.benchmark = True  # fixed sizes: pick the fastest convolution algorithms once
    return {"device": torch.cuda.get_device_name(device), "tf32_matmul": config.tf32, "tf32_cudnn": config.tf32,
            "cudnn_benchmark": True, "bf16_autocast": config.bf16}


def checkpoint_interval(config: TrainConfig) -> int:
    """Steps between resumable states: ``checkpoint_every``, or for 0 (auto) a tenth of the run, at most 250.

    A killed run then loses at most a tenth of its steps, short runs included.
    """
    if config.checkpoint_every:
        return config.checkpoint_every
    return max(1, min(250, math.ceil(config.steps / 10)))


def run_fingerprint(model_name: str, model_config: Any, train: TrainConfig, data_fingerprint: str) -> str:
    """A short hash of everything that determines a training run's weights."""
    blob = json.dumps({"model": model_name, "config": dataclasses.asdict(model_config),
                       "train": {k: v for k, v in dataclasses.asdict(train).items()
                                 if k not in ("checkpoint_every", "log_every", "workers", "device", "sample_every",
                                              "keep_state", "tf32")},
                       "data": data_fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _world() -> tuple[int, int]:
    """(rank, world size), starting the process group when torchrun launched this process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _finished(out: Path, config: TrainConfig) -> Path | None:
    """The weights of a run folder that already holds a verified finished run of at least ``config.steps``."""
    if not (out / CARD_FILE).is_file():
        return None
    try:
        _, card = read_stored_weights(out)
    except InpaintbenchError as err:
        warnings.warn(f"{err}; training the run again", stacklevel=3)
        (out / CARD_FILE).unlink(missing_ok=True)
        return None
    steps = card.get("train", {}).get("steps", -1)
    if steps >= config.steps:
        return out / WEIGHTS_FILE
    if not (out / STATE_FILE).exists():
        raise InpaintbenchError(f"{out} holds a finished {steps}-step run without its optimiser state, so it cannot "
                                f"be continued to {config.steps} steps exactly: train into a new --out, or run the "
                                f"{steps}-step run with -T keep_state=true first")
    return None


def _check_same_run(out: Path, model: InpaintModel, model_name: str, data_fingerprint: str) -> None:
    """Refuse a folder that holds a run of another model, or a finished run of other model options or data.

    A finished run would be returned as it is, without a step trained. An unfinished one resumes with what it is
    given (more steps, other training options), as before.
    """
    try:
        started = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return  # no run here yet (or one killed before its config was written: it has nothing to keep)
    mine = json.loads(json.dumps(dataclasses.asdict(model.config), default=str))
    try:
        card = json.loads((out / CARD_FILE).read_text())
    except (OSError, ValueError):
        card = None  # unfinished (or its card is damaged, which _finished reports)
    finished = card is not None
    differences = []
    if model_name and started.get("model") not in (None, "", model_name):
        differences.append(f"model {started['model']}, not {model_name}")
    elif finished and started.get("model_config") not in (None, mine):
        changed = sorted(k for k in set(mine) | set(started["model_config"])
                         if mine.get(k) != started["model_config"].get(k))
        differences.append(f"other model options: {', '.join(changed)}")
    trained_on = card.get("data", "") if card else ""
    if data_fingerprint and trained_on and trained_on != data_fingerprint:
        differences.append("another dataset")
    if differences:
        raise InpaintbenchError(f"{out} holds another run ({'; '.join(differences)}): train into another --out, "
                                "or delete that folder first")


def _resumable(out: Path) -> dict[str, Any] | None:
    """The run folder's resumable state, or None; an unreadable one is set aside with a warning (retrain)."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        return load_state(path)
    except InpaintbenchError as err:
        aside = path.with_name(path.name + ".unreadable")  # kept for a post-mortem, never read again
        path.replace(aside)
        warnings.warn(f"{err}; set aside as {aside.name}, training from step 0 again", stacklevel=3)
        return None


def train(model: InpaintModel, dataset: InpaintDataset, out: str | Path, config: TrainConfig,
          model_name: str = "", data_fingerprint: str = "") -> Path:
    """Train ``model`` on ``dataset`` for ``config.steps`` steps, writing into the run folder ``out``.

    The folder gets config.json, log.csv (step, summed loss, seconds), losses.csv (step, group, loss, value),
    samples/ (grids of input, output, composite and truth) and, while the run is unfinished, checkpoint.pt
    (every network, optimiser, schedule, the EMA and the step, written atomically every
    :func:`checkpoint_interval` steps). A finished run keeps its inference weights as a checkpoint-store entry
    (model.safetensors + card.json) and drops checkpoint.pt. A folder with a checkpoint is resumed from it, and
    the resumed run equals an uninterrupted one: weights, logs (rows after the checkpoint are dropped, so no step
    repeats) and random draws (seeded per step). Nothing is created before the model's own checks
    (:meth:`~.base.InpaintModel.prepare_training`) pass, and a run that fails before its first checkpoint leaves
    no folder behind. Started by ``torchrun``, every process trains on its part of each batch.

    Returns:
        The path of the run's ``model.safetensors``.

    """
    if not model.trainable:
        raise InpaintbenchError(f"{model_name or type(model).__name__} needs no training")
    rank, world = _world()
    if config.batch_size % (world * config.accumulate):
        raise InpaintbenchError(f"batch_size {config.batch_size} must be a multiple of processes x accumulate "
                                f"({world} x {config.accumulate})")
    model.prepare_training(dataset.size)
    out = Path(out)
    with _run_lock(out) if world == 1 else contextlib.nullcontext():
        for folder in (out, out / "samples"):  # temporary files of a process killed mid-write (SIGKILL)
            remove_stale_partials(folder)
        _check_same_run(out, model, model_name, data_fingerprint)
        done = _finished(out, config)
        if done is not None:
            return done
        created = not out.exists()
        try:
            return _run(model, dataset, out, config, model_name, data_fingerprint, rank, world)
        except BaseException:
            if created and rank == 0 and not (out / STATE_FILE).exists():
                shutil.rmtree(out, ignore_errors=True)  # nothing worth keeping: no folder is left behind
            raise


def _run_lock(out: Path) -> Any:
    """A lock next to the run folder (``.<name>.lock``): two processes training the same run train it once.

    The second waits for the first, then finds the run finished (or resumes it where the first stopped). A
    torchrun launch does not take it (its processes train one run together).
    """
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(out.parent / f".{out.name}.lock")


def _run(model: InpaintModel, dataset: InpaintDataset, out: Path, config: TrainConfig, model_name: str,
         data_fingerprint: str, rank: int, world: int) -> Path:
    """The training loop of :func:`train` (which owns the folder's creation and clean-up)."""
    device = pick_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    use_bf16 = config.bf16 and device.type == "cuda"
    state = _resumable(out)
    step = int(state["step"]) if state else 0
    model.to(device)
    if use_bf16:
        model.to(memory_format=torch.channels_last)
    groups = build_groups(model, config)
    ema = make_ema(model, groups, config.ema)
    if state:
        _restore(state, model, groups, ema)
    elif world > 1:
        for tensor in model.state_dict().values():  # every process starts from process 0's weights
            dist.broadcast(tensor, 0)
    if config.compile:
        compile_networks(model)
    every = checkpoint_interval(config)
    backends = set_backends(config, device)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"model": model_name, "model_config": dataclasses.asdict(model.config),
                           "train": dataclasses.asdict(config), "processes": world, "backends": backends},
                          indent=2, sort_keys=True, default=str) + "\n"
        atomic_write(out / "config.json", lambda p: p.write_text(text))
    if step < config.steps:
        loader = make_loader(dataset, config, device, step, rank, world, extra=model.sample_inputs())
        with RunLogs(out, resume_step=step, enabled=rank == 0) as logs:
            model.train()
            start = time.perf_counter()
            bar = tqdm(loader, initial=step, total=config.steps, desc=f"train {model_name}", unit="step",
                       **({"disable": True} if rank else {}))
            health = Health(device)
            for batch in bar:
                image = batch["image"].to(device, non_blocking=True)
                mask = batch["mask"].to(device, non_blocking=True)
                if use_bf16:
                    image = image.to(memory_format=torch.channels_last)
                    mask = mask.to(memory_format=torch.channels_last)
                seed_step(config.seed, step)
                extras = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in ("image", "mask")}
                losses = train_step(model, groups, image, mask, step, config, use_bf16, world, health, extras)
                if ema is not None:
                    update_ema(ema, model)
                step += 1
                last = step == config.steps
                checkpoint_now = step % every == 0 or last
                if step % config.log_every == 0 or checkpoint_now:
                    health.check()  # the only host syncs: at log and checkpoint steps
                    values = {k: float(v) for k, v in losses.items()}
                    total = sum(values.values())
                    bar.set_postfix(loss=f"{total:.4f}")
                    if step % config.log_every == 0 or last:
                        logs.write(step, total, time.perf_counter() - start, values)
                if config.sample_every and step % config.sample_every == 0 or last:
                    if rank == 0:
                        sample_grid(model, image, mask, out / "samples" / f"step-{step:07d}.png")
                if checkpoint_now and not last:
                    if rank == 0:
                        _save(out / STATE_FILE, model, groups, ema, step, model_name)
                    if world > 1:
                        dist.barrier()
            bar.close()
    model.eval()
    weights = out / WEIGHTS_FILE
    if rank == 0:
        inference = ema.module if ema is not None else model
        card = {"source": "trained", "train": dataclasses.asdict(config), "data": data_fingerprint,
                "ema": ema is not None, "processes": world}
        if config.keep_state:
            _save(out / STATE_FILE, model, groups, ema, step, model_name)
        else:
            (out / STATE_FILE).unlink(missing_ok=True)  # resumable state only while the run is unfinished
        write_entry(out, inference, model_name or type(model).__name__, card)
    if world > 1:
        dist.barrier()
    return weights


def _save(path: Path, model: InpaintModel, groups: dict[str, Group], ema: Any, step: int, name: str) -> None:
    payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizers": {k: g.optimizer.state_dict() for k, g in groups.items()},
               "schedules": {k: g.schedule.state_dict() for k, g in groups.items()},
               "step": step, "model_name": name,
               "model_config": json.dumps(dataclasses.asdict(model.config), default=str)}
    if ema is not None:
        payload["ema"] = {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
        payload["ema_steps"] = ema.n_averaged.cpu()
    save_state(path, payload)


def _restore(state: dict[str, Any], model: InpaintModel, groups: dict[str, Group], ema: Any) -> None:
    model.load_state_dict(state["model"])
    optimizers = state.get("optimizers") or {"generator": state["optimizer"]}  # v0 checkpoints had one
    for name, group in groups.items():
        group.optimizer.load_state_dict(optimizers[name])
        if name in state.get("schedules", {}):
            group.schedule.load_state_dict(state["schedules"][name])
    if ema is not None and "ema" in state:
        ema.module.load_state_dict(state["ema"])
        ema.n_averaged.copy_(state["ema_steps"])


def load_weights(model: InpaintModel, checkpoint: str | Path) -> InpaintModel:
    """Load a run's inference weights into ``model``.

    Args:
        model: a model of the run's config.
        checkpoint: a store entry (its folder or model.safetensors, checked against its card) or an unfinished
            run's checkpoint.pt (the EMA weights when the run keeps an EMA).

    Returns:
        ``model``.

    Raises:
        InpaintbenchError: an unreadable or changed file, or weights that do not fit ``model`` (one line).

    """
    path = Path(checkpoint)
    if path.name == STATE_FILE:
        state = load_state(path)
        model.load_state_dict(state.get("ema") or state["model"])
        return model
    state, card = read_stored_weights(path)
    model.load_inference_state_dict(state, source=str(path), model_name=card.get("model", ""))
    return model


def data_fingerprint(path: str | Path, split: str = "train") -> str:
    """A short hash of a dataset's build parameters and the split trained on (what names a run's data).

    The default ``train`` split adds nothing to the hash, so runs fingerprinted before the split counted keep
    their folders; any other split gives another fingerprint (a run on ``val`` never reuses a ``train`` run).
    """
    from ..datasets.shards import read_info

    params = read_info(path)["build_params"]
    blob = json.dumps(params if split == "train" else {"build_params": params, "split": split}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def train_model(model: str, data: str | Path, out: str | Path | None = None, split: str = "train",
                model_options: dict[str, Any] | None = None, **train_options: Any) -> Path:
    """Create model ``model``, train it on ``split`` of the shard dataset ``data``; return its weights file.

    Every check (options, the dataset, the model's own :meth:`~.base.InpaintModel.prepare_training`: training
    size, loss-network weights) runs before the run folder is created, so a failed start leaves nothing behind.

    Args:
        model: registered model name.
        data: dataset folder.
        out: run folder (default models/checkpoints/<model>-<fingerprint>).
        split: training split.
        model_options: model config overrides.
        **train_options: TrainConfig fields (steps, batch_size, lr, masks, seed, ...).

    Returns:
        The run's ``model.safetensors`` (a checkpoint-store entry with its card).

    Example:
        >>> train_model("cnn", "datasets/sample-64", steps=100)  # doctest: +SKIP

    """
    config = resolve_train_config(**train_options)
    if not MODELS.get(model).model_cls.trainable:
        raise InpaintbenchError(f"model {model!r} needs no training")
    data_fp = data_fingerprint(data, split)
    dataset = InpaintDataset(data, split, masks=list(config.masks), seed=config.seed)
    options = _sized_options(model, model_options, dataset.size)
    torch.manual_seed(config.seed)
    net = create_model(model, **options)
    if out is None:
        out = run_folder(model, data, split, model_options, **train_options)
    return train(net, dataset, out, config, model_name=model, data_fingerprint=data_fp)


def check_training(model: str, data: str | Path, split: str = "train",
                   model_options: dict[str, Any] | None = None) -> None:
    """Raise what a training run of ``model`` on ``split`` of ``data`` would stop with before its first step.

    The model's own :meth:`~.base.InpaintModel.prepare_training` at the split's image size: its loss networks'
    pretrained files, a fixed training size. Nothing is trained, decoded or written.

    Raises:
        InpaintbenchError: one line, with the option or command that fixes it.

    """
    from ..datasets.loader import split_size

    if not MODELS.get(model).model_cls.trainable:
        raise InpaintbenchError(f"model {model!r} needs no training")
    size = split_size(data, split)
    create_model(model, **_sized_options(model, model_options, size)).prepare_training(size)


def _sized_options(model: str, model_options: dict[str, Any] | None, size: int | None) -> dict[str, Any]:
    """The model options a run trains with: a model built for one size trains at the dataset's unless told."""
    options = dict(model_options or {})
    if "size" in {f.name for f in dataclasses.fields(MODELS.get(model).config)} and "size" not in options:
        options["size"] = size
    return options


def run_folder(model: str, data: str | Path, split: str = "train", model_options: dict[str, Any] | None = None,
               **train_options: Any) -> Path:
    """The default run folder of a training run: ``models/checkpoints/<model>-<fingerprint>``.

    The fingerprint hashes what determines the run's weights (model, config, training options, dataset build),
    so the same run always lands in the same folder and a finished one is found without training (nothing is
    decoded: the split's image size comes from the manifest).
    """
    from ..datasets.loader import split_size

    config = resolve_train_config(**train_options)
    net_config = resolve_config(model, **_sized_options(model, model_options, split_size(data, split)))
    return DEFAULT_STORE / f"{model}-{run_fingerprint(model, net_config, config, data_fingerprint(data, split))}"
