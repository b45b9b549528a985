"""DeepFill v1 / v2 training speed at 256x256 and contextual attention's share of the step time.

    python benchmarks/deepfill_speed.py [--size 256] [--batch 4] [--cycles 2] [--quick] [--out FILE]

Runs the Trainer's step (``models.train._train_step``: the groups due at each step, losses, backward into each
group, optimiser steps) on random images with L3 masks. A *cycle* is ``critic_steps`` Trainer steps for v1 (5:
five critic updates, one generator update) and one step for v2; images/s counts every image of every step (each
step takes a new batch). The attention's share is measured by ablation: the same cycles with the contextual
attention replaced by the identity (its output = its input), share = 1 - t_identity / t_real; the profiler's
column is the forward pass of the attention alone (``record_function("contextual_attention")``) over the real
cycles' time. On CUDA both fp32 and bf16 autocast + channels_last are measured; on CPU fp32 only.
``--quick`` runs the ``-tiny`` presets at 32x32, one cycle, to check the script (seconds).
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
from inpaintbench.models.layers.attention import AttentionResult
from inpaintbench.models.train import TrainConfig, _build_groups, _train_step


def _identity_attention(foreground, background, mask=None, return_offsets=False):
    """The ablation: contextual attention replaced by the identity."""
    return AttentionResult(foreground)


def _cycle(model, groups, image, mask, steps, config, bf16, device, start):
    for step in range(start, start + steps):
        _train_step(model, groups, image, mask, step, config, bf16, device, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, size: int, batch: int, cycles: int, device: torch.device, bf16: bool) -> dict[str, float]:
    """Images/s of the Trainer's steps, the attention's share by ablation and its forward share by the profiler."""
    options = {"size": size} if "v1" in name else {}
    torch.manual_seed(0)
    model = ib.create_model(name, **options).to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=batch)
    groups = _build_groups(model, config)
    steps = getattr(model.config, "critic_steps", 1)
    image = torch.rand(batch, 3, size, size, device=device)
    mask = torch.from_numpy(make_masks("L3", batch, size=size, seed=0)).float().to(device)
    model.train()
    attention = model.generator.refine.attention
    _cycle(model, groups, image, mask, steps, config, bf16, device, 0)  # warm-up

    def timed(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            _cycle(model, groups, image, mask, steps, config, bf16, device, (i + 1) * steps)
        return time.perf_counter() - start

    real = timed(cycles)
    attention.forward = _identity_attention
    ablated = timed(cycles)
    del attention.forward  # back to the class's forward
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        profiled = timed(1)
    event = next((e for e in prof.key_averages() if e.key == "contextual_attention"), None)
    forward = 0.0
    if event is not None:
        forward = (event.device_time_total if device.type == "cuda" else event.cpu_time_total) / 1e6
    images = batch * steps * cycles
    return {"images_per_s": images / real, "share": 1 - ablated / real, "forward_share": forward / profiled,
            "step_s": real / (steps * cycles)}


def main() -> None:
    """Measure both models; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=2, help="timed cycles (v1: 5 Trainer steps each)")
    parser.add_argument("--quick", action="store_true", help="the -tiny presets at 32x32, one cycle")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    names = ["deepfill-v1", "deepfill-v2"]
    size, batch, cycles = args.size, args.batch, args.cycles
    if args.quick:
        names, size, batch, cycles = ["deepfill-v1-tiny", "deepfill-v2-tiny"], 32, 2, 1
    precisions = ["fp32", "bf16"] if cuda else ["fp32"]
    rows = []
    for name in names:
        for precision in precisions:
            r = measure(name, size, batch, cycles, device, bf16=precision == "bf16")
            rows.append([name, f"{size}x{size}", precision, f"{r['images_per_s']:.2f}", f"{r['step_s']:.2f}",
                         f"{100 * r['share']:.0f}%", f"{100 * r['forward_share']:.0f}%"])
            print(rows[-1], flush=True)
    if not cuda:
        rows += [[name, f"{size}x{size}", "fp32, bf16", "not measured (no GPU lent)", "-", "-", "-"] for name in names]
    headers = ["model", "size", "precision", "training images/s", "s per Trainer step", "attention share (ablation)",
               "attention forward (profiler)"]
    where = torch.cuda.get_device_name() if cuda else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    emit(f"DeepFill training speed (Trainer steps, batch {batch}, {cycles} timed cycles after one warm-up; a cycle "
         f"is 5 steps for v1 (5 critic updates, 1 generator update), 1 for v2; {where}; torch {torch.__version__}; "
         f"{time.strftime('%Y-%m-%d')}).", headers, rows, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
