"""Training speed of DMFN and the dual-path GAN: images per second of one full training step at 256x256.

    python benchmarks/dmfn_speed.py [--size 256] [--batch 2] [--steps 2] [--out benchmarks/results/dmfn_speed.md]

One step is what the Trainer does per step: every group the model makes active, in its order, that steps at this
step (the dual-path GAN's generators every fifth step: ``n_critic = 5``), each group's losses backpropagated into
its own parameters and an Adam step. The timed steps are chosen so that the mix of critic-only and full steps is
the model's (``n_critic`` consecutive steps for the dual-path GAN). Random images with L3 masks, the paper
configurations (``dmfn`` with ``size`` set to the benchmark's; VGG19 with seeded random weights: same compute),
fp32, after one warm-up step. On CUDA it also runs bf16 autocast + channels_last; without a GPU those rows say
so. The data loader is left out: this measures the models.
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

MODELS_TIMED = ("dmfn", "dual-path-gan")


def _steps_per_cycle(model: ib.InpaintModel) -> int:
    """Steps after which the groups' update pattern repeats (the largest ``every``)."""
    return max(group.every for group in model.optimizer_groups())


def images_per_second(name: str, size: int, batch: int, cycles: int, device: torch.device, bf16: bool) -> float:
    """Steady-state training images/s of model ``name`` (the mean over ``cycles`` update cycles)."""
    fields = MODELS.get(name).config.__dataclass_fields__
    torch.manual_seed(0)
    model = ib.create_model(name, **({"size": size} if "size" in fields else {})).to(device)
    groups = model.optimizer_groups()
    params = {g.name: [p for m in g.modules for p in getattr(model, m).parameters()] for g in groups}
    optims = {g.name: torch.optim.Adam(params[g.name], lr=g.lr or 2e-4, betas=g.betas or (0.9, 0.999))
              for g in groups}
    every = {g.name: g.every for g in groups}
    image = torch.rand(batch, 3, size, size, device=device)
    mask = torch.from_numpy(make_masks("L3", batch, size=size, seed=0)).float().to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
        image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)

    def step(s: int) -> None:
        cache: dict = {}
        for name_ in model.active_groups(s):
            if s % every[name_]:
                continue
            optims[name_].zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                losses = model.training_losses(name_, image, mask, s, cache)
            sum(losses.values()).backward(inputs=params[name_])
            optims[name_].step()

    model.train()
    cycle = _steps_per_cycle(model)
    step(0)  # warm-up: a full step (every group)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for s in range(cycle, cycle + cycles * cycle):
        step(s)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * cycles * cycle / (time.perf_counter() - start)


def main() -> None:
    """Measure both models on this machine; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=1, help="update cycles timed (n_critic steps each)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("INPAINTBENCH_RANDOM_LOSS_NETWORKS", "1")  # same compute as the ImageNet VGG19
    cuda = torch.cuda.is_available()
    rows = []
    for name in MODELS_TIMED:
        cpu = images_per_second(name, args.size, args.batch, args.cycles, torch.device("cpu"), bf16=False)
        row = [name, f"{args.size}x{args.size}", f"{cpu:.2f}"]
        if cuda:
            gpu = images_per_second(name, args.size, 16, 3, torch.device("cuda"), bf16=False)
            gpu_bf16 = images_per_second(name, args.size, 16, 3, torch.device("cuda"), bf16=True)
            row += [f"{gpu:.1f}", f"{gpu_bf16:.1f}"]
        else:
            row += ["not measured (no GPU lent)", "not measured (no GPU lent)"]
        rows.append(row)
        print(row, flush=True)
    gpu_name = torch.cuda.get_device_name() if cuda else "none"
    headers = ["model", "size", f"CPU fp32 images/s (batch {args.batch})", "GPU fp32 images/s (batch 16)",
               "GPU bf16 + channels_last images/s (batch 16)"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # the machine is shared: say how busy it was
    where = f"{platform.machine()} CPU, {torch.get_num_threads()} threads, load average {load}; GPU: {gpu_name}"
    emit(f"Training speed of DMFN and the dual-path GAN (one training step = every group that steps, losses, "
         f"backward, Adam; {args.cycles} update cycle(s) timed after one warm-up step; {where}; "
         f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}).", headers, rows, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
