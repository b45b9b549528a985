"""The Trainer: optimiser groups (generator, discriminators), phases, schedules, exact resume, DDP.

A model names its optimiser groups and, per step, which of them train and what each minimises (see
InpaintModel). Per step, each active group whose ``every`` divides the step runs its losses on the step's
batch (split into ``accumulate`` micro-batches), gradients are accumulated into that group's parameters only
(``backward(inputs=...)``), averaged across DDP processes, clipped, and the group's optimiser and learning-rate
schedule step. An optional EMA follows the ``generator`` group.

The data order is a function of (seed, step): batch ``s`` holds positions ``s*B .. s*B+B-1`` of the stream of
per-epoch permutations, and each sample's mask is drawn from (seed, epoch, index). Checkpoints hold every
network, optimiser, schedule, the EMA and the RNG state, so a run stopped at a checkpoint and resumed gives
the weights and losses of an uninterrupted run. Under ``torchrun`` every process takes a disjoint part of each
batch (``B / world_size`` samples), gradients are all-reduced, and process 0 writes the run folder.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from .._registry import InpaintbenchError
from ..datasets.loader import InpaintDataset
from .base import MODELS, InpaintModel, OptimizerGroup, create_model


@dataclass(frozen=True)
class TrainConfig:
    """Training options. Groups take ``lr`` and ``betas`` from here unless the model's group sets its own."""

    steps: int = 1000  # optimiser steps
    batch_size: int = 32  # samples per step, over all processes and micro-batches
    lr: float = 2e-4  # default learning rate of the groups
    betas: tuple[float, float] = (0.9, 0.999)  # default Adam betas of the groups
    masks: tuple[str, ...] = ("L1", "L2", "L3")  # levels or presets drawn uniformly for training masks
    seed: int = 0  # seeds the initial weights, the data order and the masks
    checkpoint_every: int = 250  # steps between checkpoints
    log_every: int = 25  # steps between CSV log rows
    workers: int = 0  # DataLoader worker processes
    device: str = "auto"  # auto = CUDA when available, else CPU
    bf16: bool = True  # bf16 autocast (and channels_last) on CUDA; ignored on CPU
    accumulate: int = 1  # micro-batches per step (gradient accumulation); batch_size must divide by it
    clip_norm: float = 0.0  # gradient-norm clipping for groups that set none (0 = off)
    ema: float = 0.0  # EMA decay of the generator's weights (0 = off; e.g. 0.999)
    compile: bool = False  # torch.compile the model's submodules
    sample_every: int = 0  # steps between sample grids in <run>/samples/ (0 = only at the end)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "masks", tuple(self.masks))
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise InpaintbenchError("train options need steps >= 0, batch_size >= 1 and lr > 0")
        if self.accumulate < 1 or self.batch_size % self.accumulate:
            raise InpaintbenchError(f"batch_size {self.batch_size} must be a multiple of accumulate {self.accumulate}")
        if not 0 <= self.ema < 1:
            raise InpaintbenchError(f"ema is a decay in [0, 1), got {self.ema}")


def resolve_train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from keyword options; unknown keys fail with a one-line error."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InpaintbenchError(f"unknown train option {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
    return TrainConfig(**options)


class _StepSampler(Sampler):
    """Yields batches (lists of (epoch, index)) for steps ``start .. stop-1`` of the seeded stream.

    Under DDP each process gets every ``world_size``-th position of the global batch, starting at its rank.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perms: dict[int, np.ndarray] = {}
        for step in range(self.start, self.stop):
            batch = []
            for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
                epoch = pos // self.n
                if epoch not in perms:
                    perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
                batch.append((epoch, int(perms[epoch][pos % self.n])))
            yield batch[self.rank::self.world_size]  # each DDP process takes a disjoint part of the batch

    def __len__(self) -> int:
        return self.stop - self.start


class _EpochIndexed(torch.utils.data.Dataset):
    """Adapts InpaintDataset to (epoch, index) keys so masks follow the epoch of each position."""

    def __init__(self, dataset: InpaintDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        return {"image": self.dataset.image(index).float() / 255.0, "mask": self.dataset.draw_mask(index, epoch)}


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    Memory-mapped, so looking at a finished run's step does not read hundreds of MB of weights.
    """
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def run_fingerprint(model_name: str, model_config: Any, train: TrainConfig, data_fingerprint: str) -> str:
    """A short hash of everything that determines a training run's weights."""
    blob = json.dumps({"model": model_name, "config": dataclasses.asdict(model_config),
                       "train": {k: v for k, v in dataclasses.asdict(train).items()
                                 if k not in ("checkpoint_every", "log_every", "workers", "device", "sample_every")},
                       "data": data_fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class _Group:
    """An optimiser group at run time: its spec, parameters, optimiser and learning-rate schedule."""

    spec: OptimizerGroup
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler


def _build_groups(model: InpaintModel, config: TrainConfig) -> dict[str, _Group]:
    """One optimiser (and schedule) per group the model declares, with a one-line error for a bad declaration."""
    groups: dict[str, _Group] = {}
    claimed: set[int] = set()
    for spec in model.optimizer_groups():
        modules = [getattr(model, name, None) for name in spec.modules] if spec.modules else [model]
        if any(not isinstance(m, torch.nn.Module) for m in modules):
            raise InpaintbenchError(f"optimizer group {spec.name!r} names a missing submodule: {spec.modules}")
        params = list(dict.fromkeys(p for m in modules for p in m.parameters()))
        if claimed & {id(p) for p in params}:
            raise InpaintbenchError(f"optimizer group {spec.name!r} shares parameters with another group")
        claimed |= {id(p) for p in params}
        lr, betas = spec.lr or config.lr, spec.betas or config.betas
        if spec.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=spec.weight_decay)
        elif spec.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=spec.weight_decay)
        elif spec.optimizer == "adadelta":
            optimizer = torch.optim.Adadelta(params, lr=lr, weight_decay=spec.weight_decay)
        else:
            raise InpaintbenchError(f"optimizer group {spec.name!r}: unknown optimizer {spec.optimizer!r}")
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(spec.lr_milestones), spec.lr_gamma)
        groups[spec.name] = _Group(spec, params, optimizer, schedule)
    return groups


def _world() -> tuple[int, int]:
    """(rank, world size), starting the process group when torchrun launched this process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(model: InpaintModel, dataset: InpaintDataset, out: str | Path, config: TrainConfig,
          model_name: str = "") -> Path:
    """Train ``model`` on ``dataset`` for ``config.steps`` steps, writing into the run folder ``out``.

    The folder gets config.json, log.csv (step, summed loss, seconds), losses.csv (step, group, loss, value),
    samples/ (grids of input, output, composite and truth) and checkpoint.pt (every network, optimiser, schedule,
    EMA, RNG state and the step, written atomically every ``checkpoint_every`` steps and at the end). A folder
    with a checkpoint is resumed from it. Started by ``torchrun``, every process trains on its part of each batch.

    Returns:
        The path of the final checkpoint.

    """
    if not model.trainable:
        raise InpaintbenchError(f"{model_name or type(model).__name__} needs no training")
    rank, world = _world()
    if config.batch_size % (world * config.accumulate):
        raise InpaintbenchError(f"batch_size {config.batch_size} must be a multiple of processes x accumulate "
                                f"({world} x {config.accumulate})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    device = pick_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    use_bf16 = config.bf16 and device.type == "cuda"
    state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    step = int(state["step"]) if state else 0
    if state and step >= config.steps:
        return ckpt_path  # already complete: nothing to do
    if rank == 0:
        (out / "config.json").write_text(json.dumps(
            {"model": model_name, "model_config": dataclasses.asdict(model.config),
             "train": dataclasses.asdict(config), "processes": world}, indent=2, sort_keys=True, default=str) + "\n")
    model.to(device)
    if use_bf16:
        model.to(memory_format=torch.channels_last)
    groups = _build_groups(model, config)
    ema = _make_ema(model, groups, config.ema)
    if state:
        _restore(state, model, groups, ema)
    elif world > 1:
        for tensor in model.state_dict().values():  # every process starts from process 0's weights
            dist.broadcast(tensor, 0)
    if config.compile:
        for module in model.children():
            module.compile()
    if step >= config.steps:  # a zero-step budget: save the initial weights as the checkpoint
        if rank == 0:
            _save(ckpt_path, model, groups, ema, step, model_name)
        return ckpt_path
    loader = DataLoader(_EpochIndexed(dataset), num_workers=config.workers,
                        batch_sampler=_StepSampler(len(dataset), config.batch_size, config.seed, step, config.steps,
                                                   rank, world))
    log_exists = (out / "log.csv").exists() and step > 0
    with _Logs(out, append=log_exists, enabled=rank == 0) as logs:
        model.train()
        start = time.perf_counter()
        bar = tqdm(loader, initial=step, total=config.steps, desc=f"train {model_name}", unit="step",
                   **({"disable": True} if rank else {}))
        for batch in bar:
            image = batch["image"].to(device, non_blocking=True)
            mask = batch["mask"].to(device, non_blocking=True)
            if use_bf16:
                image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
            losses = _train_step(model, groups, image, mask, step, config, use_bf16, device, world)
            if ema is not None:
                _update_ema(ema, model)
            step += 1
            total = sum(losses.values())
            bar.set_postfix(loss=f"{total:.4f}")
            if step % config.log_every == 0 or step == config.steps:
                logs.write(step, total, time.perf_counter() - start, losses)
            if config.sample_every and step % config.sample_every == 0 or step == config.steps:
                if rank == 0:
                    _sample_grid(model, image, mask, out / "samples" / f"step-{step:07d}.png")
            if step % config.checkpoint_every == 0 or step == config.steps:
                if rank == 0:
                    _save(ckpt_path, model, groups, ema, step, model_name)
                if world > 1:
                    dist.barrier()
        bar.close()
    model.eval()
    return ckpt_path


def _train_step(model: InpaintModel, groups: dict[str, _Group], image: torch.Tensor, mask: torch.Tensor, step: int,
                config: TrainConfig, use_bf16: bool, device: torch.device, world: int) -> dict[str, float]:
    """One optimiser step of every group active at ``step``; returns the losses (``group/name``: value)."""
    active = [name for name in model.active_groups(step) if step % groups[name].spec.every == 0]
    micro_images, micro_masks = image.chunk(config.accumulate), mask.chunk(config.accumulate)
    # With one micro-batch the groups of a step share the generator's output; with several, keeping every
    # micro-batch's graph alive until the generator's turn would defeat accumulation, so each group recomputes.
    shared = [{} for _ in micro_images] if config.accumulate == 1 else None
    logged: dict[str, float] = {}
    for name in active:
        group = groups[name]
        group.optimizer.zero_grad(set_to_none=True)
        trainable = [p for p in group.params if p.requires_grad]
        for i, (im, ma) in enumerate(zip(micro_images, micro_masks, strict=True)):
            cache = shared[i] if shared is not None else {}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                losses = model.training_losses(name, im, ma, step, cache)
                total = sum(losses.values())
            if not torch.isfinite(total):
                bad = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
                raise InpaintbenchError(f"{name} loss became {total.item()} at step {step} ({bad}); "
                                        "lower the learning rate or check the data")
            (total / config.accumulate).backward(inputs=trainable)
            for key, value in losses.items():
                logged[f"{name}/{key}"] = logged.get(f"{name}/{key}", 0.0) + value.item() / config.accumulate
        if world > 1:
            for p in trainable:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        clip = group.spec.clip_norm or config.clip_norm
        if clip:
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        group.optimizer.step()
    with warnings.catch_warnings():  # a group that has not stepped yet (GLCIC's discriminator in phase 1)
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        for group in groups.values():  # schedules follow the step count, whether or not the group trained
            group.schedule.step()
    return logged


def _make_ema(model: InpaintModel, groups: dict[str, _Group], decay: float):
    """An EMA of the model's weights and buffers (inference uses it: ``load_weights`` prefers it)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if "generator" not in groups:
        raise InpaintbenchError("ema needs an optimizer group named 'generator'")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _update_ema(ema: Any, model: InpaintModel) -> None:
    """Average the float weights and buffers; copy integer buffers (step counters, PConv's stage) as they are."""
    ema.update_parameters(model)
    for mine, theirs in zip(ema.module.buffers(), model.buffers(), strict=True):
        if not mine.is_floating_point():
            mine.copy_(theirs)


class _Logs:
    """log.csv (step, summed loss, seconds), losses.csv (step, group, loss, value), TensorBoard when installed."""

    def __init__(self, out: Path, append: bool, enabled: bool) -> None:
        self.out, self.append, self.enabled = out, append, enabled
        self.files: list[Any] = []
        self.board = None

    def __enter__(self) -> _Logs:
        if not self.enabled:
            return self
        mode = "a" if self.append else "w"
        self.files = [open(self.out / "log.csv", mode, newline=""), open(self.out / "losses.csv", mode, newline="")]
        self.log, self.losses = csv.writer(self.files[0]), csv.writer(self.files[1])
        if not self.append:
            self.log.writerow(["step", "loss", "seconds"])
            self.losses.writerow(["step", "group", "loss", "value"])
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(self.out / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.board = None
        return self

    def write(self, step: int, total: float, seconds: float, losses: dict[str, float]) -> None:
        """One row per log step (process 0 only)."""
        if not self.enabled:
            return
        self.log.writerow([step, f"{total:.6f}", f"{seconds:.2f}"])
        for key, value in losses.items():
            group, name = key.split("/", 1)
            self.losses.writerow([step, group, name, f"{value:.6f}"])
            if self.board is not None:
                self.board.add_scalar(key, value, step)
        for f in self.files:
            f.flush()

    def __exit__(self, *exc: object) -> None:
        for f in self.files:
            f.close()
        if self.board is not None:
            self.board.close()


@torch.no_grad()
def _sample_grid(model: InpaintModel, image: torch.Tensor, mask: torch.Tensor, path: Path) -> None:
    """A PNG with rows input, output, composite, truth for the first four samples of the batch."""
    from torchvision.utils import save_image

    was_training = model.training
    model.eval()
    image, mask = image[:4].float(), mask[:4].float()
    pred = model(image * (1 - mask), mask).float().clamp(0, 1)
    model.train(was_training)
    rows = [image * (1 - mask) + mask * 0.5, pred, mask * pred + (1 - mask) * image, image]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(rows), path, nrow=len(image), padding=1)


def _save(path: Path, model: InpaintModel, groups: dict[str, _Group], ema: Any, step: int, name: str) -> None:
    payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizers": {k: g.optimizer.state_dict() for k, g in groups.items()},
               "schedules": {k: g.schedule.state_dict() for k, g in groups.items()},
               "rng": {"torch": torch.get_rng_state(),
                       **({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {})},
               "step": step, "model_name": name,
               "model_config": json.dumps(dataclasses.asdict(model.config), default=str)}
    if ema is not None:
        payload["ema"] = {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
        payload["ema_steps"] = ema.n_averaged.cpu()
    save_checkpoint(path, payload)


def _restore(state: dict[str, Any], model: InpaintModel, groups: dict[str, _Group], ema: Any) -> None:
    model.load_state_dict(state["model"])
    optimizers = state.get("optimizers") or {"generator": state["optimizer"]}  # v0 checkpoints had one
    for name, group in groups.items():
        group.optimizer.load_state_dict(optimizers[name])
        if name in state.get("schedules", {}):
            group.schedule.load_state_dict(state["schedules"][name])
    if ema is not None and "ema" in state:
        ema.module.load_state_dict(state["ema"])
        ema.n_averaged.copy_(state["ema_steps"])
    if "rng" in state:
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng"]["cuda"])


def load_weights(model: InpaintModel, checkpoint: str | Path) -> InpaintModel:
    """Load a run's weights into ``model`` for evaluation: the EMA weights when the run kept an EMA."""
    state = load_checkpoint(checkpoint)
    model.load_state_dict(state.get("ema") or state["model"])
    return model


def train_model(model: str, data: str | Path, out: str | Path | None = None, split: str = "train",
                model_options: dict[str, Any] | None = None, **train_options: Any) -> Path:
    """Create model ``model``, train it on ``split`` of the shard dataset ``data``; return the checkpoint.

    Args:
        model: registered model name.
        data: dataset folder.
        out: run folder (default models/checkpoints/<model>-<fingerprint>).
        split: training split.
        model_options: model config overrides.
        **train_options: TrainConfig fields (steps, batch_size, lr, masks, seed, ...).

    Example:
        >>> train_model("cnn", "datasets/sample-64", steps=100)  # doctest: +SKIP

    """
    from ..datasets.shards import read_info

    config = resolve_train_config(**train_options)
    if not MODELS.get(model).model_cls.trainable:
        raise InpaintbenchError(f"model {model!r} needs no training")
    info = read_info(data)
    torch.manual_seed(config.seed)
    net = create_model(model, **(model_options or {}))
    dataset = InpaintDataset(data, split, masks=list(config.masks), seed=config.seed)
    if out is None:
        data_fp = hashlib.sha256(json.dumps(info["build_params"], sort_keys=True).encode()).hexdigest()[:12]
        out = Path("models/checkpoints") / f"{model}-{run_fingerprint(model, net.config, config, data_fp)}"
    return train(net, dataset, out, config, model_name=model)
