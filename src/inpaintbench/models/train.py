"""Trainer v0: one network, one optimiser, a step budget; atomic checkpoints and exact resume.

The data order is a function of (seed, step): batch ``s`` holds positions ``s*B .. s*B+B-1`` of the
stream of per-epoch permutations, and each sample's mask is drawn from (seed, epoch, index). A run stopped
at any checkpoint and resumed therefore sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from .._registry import InpaintbenchError
from ..datasets.loader import InpaintDataset
from .base import MODELS, InpaintModel, create_model


@dataclass(frozen=True)
class TrainConfig:
    """Training options of the v0 Trainer."""

    steps: int = 1000  # optimiser steps
    batch_size: int = 32
    lr: float = 2e-4  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    masks: tuple[str, ...] = ("L1", "L2", "L3")  # levels or presets drawn uniformly for training masks
    seed: int = 0  # seeds the initial weights, the data order and the masks
    checkpoint_every: int = 250  # steps between checkpoints
    log_every: int = 25  # steps between CSV log rows
    workers: int = 0  # DataLoader worker processes
    device: str = "auto"  # auto = CUDA when available, else CPU
    bf16: bool = True  # bf16 autocast (and channels_last) on CUDA; ignored on CPU

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "masks", tuple(self.masks))
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise InpaintbenchError("train options need steps >= 0, batch_size >= 1 and lr > 0")


def resolve_train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from keyword options; unknown keys fail with a one-line error."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InpaintbenchError(f"unknown train option {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
    return TrainConfig(**options)


class _StepSampler(Sampler):
    """Yields batches (lists of (epoch, index)) for steps ``start .. stop-1`` of the seeded stream."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int) -> None:
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perms: dict[int, np.ndarray] = {}
        for step in range(self.start, self.stop):
            batch = []
            for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
                epoch = pos // self.n
                if epoch not in perms:
                    perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
                batch.append((epoch, int(perms[epoch][pos % self.n])))
            yield batch

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
        return {"image": self.dataset.images[index].float() / 255.0, "mask": self.dataset.draw_mask(index, epoch)}


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
                                 if k not in ("checkpoint_every", "log_every", "workers", "device")},
                       "data": data_fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def train(model: InpaintModel, dataset: InpaintDataset, out: str | Path, config: TrainConfig,
          model_name: str = "") -> Path:
    """Train ``model`` on ``dataset`` for ``config.steps`` steps, writing into the run folder ``out``.

    The folder gets config.json, log.csv and checkpoint.pt (model, optimiser and step, written atomically
    every ``checkpoint_every`` steps and at the end). A folder with a checkpoint is resumed from it.

    Returns:
        The path of the final checkpoint.

    """
    if not model.trainable:
        raise InpaintbenchError(f"{model_name or type(model).__name__} needs no training")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    device = pick_device(config.device)
    use_bf16 = config.bf16 and device.type == "cuda"
    state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    step = int(state["step"]) if state else 0
    if state and step >= config.steps:
        return ckpt_path  # already complete: nothing to do
    (out / "config.json").write_text(json.dumps(
        {"model": model_name, "model_config": dataclasses.asdict(model.config),
         "train": dataclasses.asdict(config)}, indent=2, sort_keys=True, default=str) + "\n")
    model.to(device)
    if use_bf16:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    if step >= config.steps:  # a zero-step budget: save the initial weights as the checkpoint
        _save(ckpt_path, model, optimizer, step, model_name)
        return ckpt_path
    loader = DataLoader(_EpochIndexed(dataset), num_workers=config.workers,
                        batch_sampler=_StepSampler(len(dataset), config.batch_size, config.seed, step, config.steps))
    log_exists = (out / "log.csv").exists() and step > 0
    with open(out / "log.csv", "a" if log_exists else "w", newline="") as log_file:
        log = csv.writer(log_file)
        if not log_exists:
            log.writerow(["step", "loss", "seconds"])
        model.train()
        start = time.perf_counter()
        bar = tqdm(loader, initial=step, total=config.steps, desc=f"train {model_name}", unit="step")
        for batch in bar:
            image = batch["image"].to(device, non_blocking=True)
            mask = batch["mask"].to(device, non_blocking=True)
            if use_bf16:
                image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                pred = model(image * (1 - mask), mask)
                losses = model.loss(pred.float(), image, mask)
                loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise InpaintbenchError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % config.log_every == 0 or step == config.steps:
                log.writerow([step, f"{loss.item():.6f}", f"{time.perf_counter() - start:.2f}"])
                log_file.flush()
            if step % config.checkpoint_every == 0 or step == config.steps:
                _save(ckpt_path, model, optimizer, step, model_name)
        bar.close()
    model.eval()
    return ckpt_path


def _save(path: Path, model: InpaintModel, optimizer: torch.optim.Optimizer, step: int, name: str) -> None:
    save_checkpoint(path, {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                           "optimizer": optimizer.state_dict(), "step": step, "model_name": name,
                           "model_config": json.dumps(dataclasses.asdict(model.config), default=str)})


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
