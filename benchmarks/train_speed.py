"""Training speed: images per second of one Trainer step per registered model (every optimiser group).

    python benchmarks/train_speed.py [--size 64] [--batch 8] [--steps 10] [--out benchmarks/results/train_speed.md]

Runs the Trainer's step (``models.train._train_step``: every group active after the last phase, losses, backward
into each group, optimiser steps) on random images with L3 masks, a few warm-up steps first, in the same run for
every trainable model at its paper configuration (``size`` set to the benchmark's). On CUDA it runs at 256x256
in fp32 and in bf16 autocast + channels_last, side by side; on CPU at ``--size`` (64 by default) in fp32. Models
with VGG losses use random VGG weights (same compute). The data loader is left out: this measures the models.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from _table import emit

import inpaintbench as ib
from inpaintbench.masks import make_masks
from inpaintbench.models import MODELS
from inpaintbench.models.train import TrainConfig, _build_groups, _train_step

PHASE_END = 10**9  # a step after every phase (GLCIC's joint phase, PConv's fine-tuning)


def images_per_second(name: str, size: int, batch: int, steps: int, device: torch.device, bf16: bool) -> float:
    """Steady-state images/s of the Trainer's step for model ``name``."""
    fields = MODELS.get(name).config.__dataclass_fields__
    options = {k: v for k, v in {"size": size, "vgg_random_weights": True}.items() if k in fields}
    torch.manual_seed(0)
    model = ib.create_model(name, **options).to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=batch)
    groups = _build_groups(model, config)
    image = torch.rand(batch, 3, size, size, device=device)
    mask = torch.from_numpy(make_masks("L3", batch, size=size, seed=0)).float().to(device)
    if bf16:
        image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
    model.train()
    for _ in range(2):
        _train_step(model, groups, image, mask, PHASE_END, config, bf16, device, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        _train_step(model, groups, image, mask, PHASE_END, config, bf16, device, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    """Measure every trainable model; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="image side [default: 256 on CUDA, 64 on CPU]")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    size = args.size or (256 if cuda else 64)
    names = [n for n in ib.list_models() if MODELS.get(n).model_cls.trainable and not n.endswith("-tiny")]
    rows = []
    for name in names:
        fp32 = images_per_second(name, size, args.batch, args.steps, device, bf16=False)
        row = [name, f"{size}x{size}", f"{fp32:.1f}"]
        if cuda:
            bf16 = images_per_second(name, size, args.batch, args.steps, device, bf16=True)
            row += [f"{bf16:.1f}", f"{bf16 / fp32:.2f}x"]
        rows.append(row)
        print(row, flush=True)
    headers = ["model", "size", "fp32 images/s"] + (["bf16 + channels_last images/s", "speed-up"] if cuda else [])
    where = torch.cuda.get_device_name() if cuda else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    emit(f"Training speed (Trainer step, every group, batch {args.batch}, {args.steps} timed steps after 2 warm-up; "
         f"{where}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}).", headers, rows, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
