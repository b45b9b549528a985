"""DeepFill v1 / v2 training speed at 256x256 and contextual attention's share of the step time.

    python benchmarks/deepfill_speed.py [--size 256] [--batch 4] [--cycles 2] [--quick] [--out FILE]

Runs the Trainer's step (``models.steps.train_step``: the groups due at each step, losses, backward into each
group, optimiser steps) on random images with L3 masks. A *cycle* is ``critic_steps`` Trainer steps for v1 (5:
five critic updates, one generator update) and one step for v2; images/s counts every image of every step (each
step takes a new batch). The attention's share is measured by ablation: cycles with the contextual attention
replaced by the identity (its output = its input) alternate with real ones, share = 1 - median t_identity /
median t_real. On the CPU the clock is the process's CPU time (with one thread: one core's throughput,
whatever the load of a shared machine; the wall-clock figure is printed beside it); on CUDA, wall time. The
profiler's
column is the forward pass of the attention alone (``record_function("contextual_attention")``) over the real
cycles' time. On CUDA both fp32 and bf16 autocast + channels_last are measured; on CPU fp32 only.
``--quick`` runs the ``-tiny`` presets at 32x32, one cycle, to check the script (seconds).
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
from inpaintbench.models.layers.attention import AttentionResult
from inpaintbench.models.steps import Health, build_groups, train_step
from inpaintbench.models.train import TrainConfig


def _identity_attention(foreground, background, mask=None, return_offsets=False):
    """The ablation: contextual attention replaced by the identity."""
    return AttentionResult(foreground)


def _cycle(model, groups, image, mask, steps, config, bf16, device, start):
    health = Health(device)
    for step in range(start, start + steps):
        train_step(model, groups, image, mask, step, config, bf16, 1, health)
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
    groups = build_groups(model, config)
    steps = getattr(model.config, "critic_steps", 1)
    image = torch.rand(batch, 3, size, size, device=device)
    mask = make_masks("L3", batch, size=size, seed=0).float().to(device)
    model.train()
    attention = model.generator.refine.attention
    _cycle(model, groups, image, mask, steps, config, bf16, device, 0)  # warm-up

    def timed() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        _cycle(model, groups, image, mask, steps, config, bf16, device, steps)
        return time.perf_counter() - wall, time.process_time() - cpu

    # real and ablated cycles alternate, so that a change of the machine's load hits both alike; medians
    real, ablated = [], []
    for _ in range(cycles):
        real.append(timed())
        attention.forward = _identity_attention
        ablated.append(timed())
        del attention.forward  # back to the class's forward
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        profiled_wall, _ = timed()
    event = next((e for e in prof.key_averages() if e.key == "contextual_attention"), None)
    forward = 0.0
    if event is not None:
        forward = (event.device_time_total if device.type == "cuda" else event.cpu_time_total) / 1e6
    # on the CPU the process's CPU time is the clock (a shared machine's load does not change it); on CUDA, wall time
    clock = 0 if device.type == "cuda" else 1
    cycle = statistics.median(t[clock] for t in real)
    cycle_ablated = statistics.median(t[clock] for t in ablated)
    wall = statistics.median(t[0] for t in real)
    # the profiler times its ranges by the clock on the wall, so its share is of the profiled cycle's wall time
    return {"images_per_s": batch * steps / cycle, "wall_images_per_s": batch * steps / wall,
            "share": 1 - cycle_ablated / cycle, "forward_share": forward / profiled_wall, "step_s": cycle / steps}


def main() -> None:
    """Measure both models; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=2, help="timed cycles of each kind (v1: 5 Trainer steps each)")
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
            rows.append([name, f"{size}x{size}", precision, f"{r['images_per_s']:.2f}",
                         f"{r['wall_images_per_s']:.2f}", f"{r['step_s']:.2f}", f"{100 * r['share']:.0f}%",
                         f"{100 * r['forward_share']:.0f}%"])
            print(rows[-1], flush=True)
    if not cuda:
        rows += [[name, f"{size}x{size}", "CUDA fp32, bf16", "not measured (no GPU lent)", "-", "-", "-", "-"]
                 for name in names]
    clock = "GPU wall time" if cuda else "CPU time of the process"
    headers = ["model", "size", "precision", f"training images/s ({clock})", "images/s (wall)",
               "s per Trainer step", "attention share (ablation)", "attention forward (profiler)"]
    where = torch.cuda.get_device_name() if cuda else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    emit(f"DeepFill training speed (Trainer steps, batch {batch}, median of {cycles} timed cycles after one warm-up; "
         f"a cycle is critic_steps steps for v1 (deepfill-v1: 5 critic updates, then 1 generator update), 1 step for "
         f"v2; {where}{load}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}).", headers, rows, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
