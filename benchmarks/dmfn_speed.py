"""Training speed of DMFN and the dual-path GAN at 256x256: images per second of the Trainer's steps.

    python benchmarks/dmfn_speed.py [--size 256] [--batch 2] [--cycles 2] [--quick] [--out FILE]

Runs the Trainer's step (``models.steps.train_step``: the groups due at each step, losses, backward into each
group, optimiser steps) on random images with L3 masks, at the paper configurations (``dmfn`` with ``size`` set
to the benchmark's; its VGG19 with seeded random weights: the same compute as the ImageNet file). A *cycle* is
the steps after which a model's update pattern repeats: one step for DMFN (generator, then discriminator), and
``n_critic`` = 5 steps for the dual-path GAN (five critic updates, the fifth step also updates E1, E2 and the
generator); images/s counts every image of every step. On the CPU the clock is the process's CPU time with one
thread, so the figure is one core's throughput whatever the load of the shared machine (the wall-clock figure
is printed beside it, with the load average); on CUDA, wall time, fp32 and bf16 autocast + channels_last.
``--quick`` runs the ``-tiny`` presets at 64x64, one cycle, to check the script.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from _table import emit

import inpaintbench as ib
from inpaintbench.masks import make_masks
from inpaintbench.models import MODELS
from inpaintbench.models.steps import Health, build_groups, train_step
from inpaintbench.models.train import TrainConfig


def _cycle_steps(model: ib.InpaintModel) -> int:
    """Steps after which the groups' update pattern repeats (the largest ``every``)."""
    return max(group.every for group in model.optimizer_groups())


def measure(name: str, size: int, batch: int, cycles: int, device: torch.device, bf16: bool) -> dict[str, float]:
    """Images/s of the Trainer's steps of model ``name`` (median over ``cycles`` cycles after a warm-up one)."""
    fields = MODELS.get(name).config.__dataclass_fields__
    torch.manual_seed(0)
    model = ib.create_model(name, **({"size": size} if "size" in fields else {})).to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=batch)
    groups = build_groups(model, config)
    steps = _cycle_steps(model)
    image = torch.rand(batch, 3, size, size, device=device)
    mask = make_masks("L3", batch, size=size, seed=0).float().to(device)
    model.train()

    def cycle(start: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        health = Health(device)
        for step in range(start, start + steps):
            train_step(model, groups, image, mask, step, config, bf16, 1, health)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    cycle(0)  # warm-up
    timed = [cycle((i + 1) * steps) for i in range(cycles)]
    clock = 0 if device.type == "cuda" else 1
    seconds = statistics.median(t[clock] for t in timed)
    wall = statistics.median(t[0] for t in timed)
    return {"images_per_s": batch * steps / seconds, "wall_images_per_s": batch * steps / wall,
            "step_s": seconds / steps}


def main() -> None:
    """Measure both models on this machine; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=2, help="timed cycles (the dual-path GAN: 5 steps each)")
    parser.add_argument("--quick", action="store_true", help="the -tiny presets at 64x64, one cycle")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("INPAINTBENCH_RANDOM_LOSS_NETWORKS", "1")  # same compute as the ImageNet VGG19
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)  # one core's throughput, measured in the process's CPU time
    names, size, batch, cycles = ["dmfn", "dual-path-gan"], args.size, args.batch, args.cycles
    if args.quick:
        names, size, batch, cycles = ["dmfn-tiny", "dual-path-gan-tiny"], 64, 2, 1
    precisions = ["fp32", "bf16"] if cuda else ["fp32"]
    rows = []
    for name in names:
        for precision in precisions:
            r = measure(name, size, batch, cycles, device, bf16=precision == "bf16")
            rows.append([name, f"{size}x{size}", precision, f"{r['images_per_s']:.2f}",
                         f"{r['wall_images_per_s']:.2f}", f"{r['step_s']:.2f}"])
            print(rows[-1], flush=True)
    if not cuda:
        rows += [[name, f"{size}x{size}", "CUDA fp32, bf16", "not measured (no GPU lent)", "-", "-"] for name in names]
    clock = "GPU wall time" if cuda else "CPU time of the process"
    headers = ["model", "size", "precision", f"training images/s ({clock})", "images/s (wall)", "s per Trainer step"]
    where = torch.cuda.get_device_name() if cuda else f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    emit(f"DMFN and dual-path GAN training speed (Trainer steps, batch {batch}, median of {cycles} timed cycles "
         f"after one warm-up; a cycle is 1 step for dmfn (generator, then discriminator) and n_critic = 5 steps for "
         f"dual-path-gan (5 critic updates, 1 generator update); {where}{load}; torch {torch.__version__}; "
         f"{time.strftime('%Y-%m-%d')}).", headers, rows, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
