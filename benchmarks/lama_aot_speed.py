"""LaMa and AOT-GAN speed: training images/s at 256, inference seconds per megapixel against counted FLOPs.

    python benchmarks/lama_aot_speed.py [--batch 2] [--steps 2] [--sides 256,512] [--out benchmarks/results/lama_aot_speed.md]
    python benchmarks/lama_aot_speed.py --highres [--out benchmarks/results/lama_highres.md]

Training: the Trainer's step (``models.train._train_step``: generator then discriminator, their losses, backward
into each group, clipping, optimiser steps) at 256x256 on random images with L3 masks, after one warm-up step.
The loss networks (ADE20k ResNet50-dilated for big-lama, VGG19 for AOT-GAN) have seeded random weights: the same
compute as the real ones. On CUDA each model runs in fp32 and in bf16 autocast + channels_last; without a GPU
those rows say so.

Inference: ``model(image, mask)`` in eval mode under ``torch.no_grad`` (LaMa's symmetric pad to 8 included), one
image per call, at each side of ``--sides``; seconds per megapixel next to the generator's GFLOPs at 256x256
counted with ``torch.utils.flop_counter.FlopCounterMode`` (multiply-add = 2 FLOPs; FFTs are not counted), which
model_anchors.md section 14 gives as big-lama 110, lama-fourier 64, AOT-GAN 146.

``--highres``: one 2048x1536 photo (scikit-image's astronaut, upscaled bicubically) with a large mask through
big-lama on the CPU, in a fresh process per run: wall time, and the process's peak resident memory
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). It runs ``inpaintbench inpaint`` when that command exists,
else the model's forward (the same computation), and says which.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from _table import emit

import inpaintbench as ib
from inpaintbench.masks import make_masks
from inpaintbench.models.train import TrainConfig, _build_groups, _train_step

TRAIN_MODELS = ("big-lama", "lama-fourier", "aot-gan")
INFER_MODELS = ("big-lama", "lama-fourier", "aot-gan")
REFERENCE_GFLOPS = {"big-lama": 110, "lama-fourier": 64, "aot-gan": 146}  # model_anchors.md section 14
ANY_STEP = 10**9


def _batch(batch: int, side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, side, side, generator=g)
    mask = torch.from_numpy(make_masks("L3", batch, size=side, seed=0)).float()
    return image.to(device), mask.to(device)


def train_images_per_second(name: str, batch: int, steps: int, device: torch.device, bf16: bool) -> float:
    """Steady-state images/s of the Trainer's step for ``name`` at 256x256."""
    torch.manual_seed(0)
    model = ib.create_model(name).to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=batch)
    groups = _build_groups(model, config)
    image, mask = _batch(batch, 256, device)
    if bf16:
        image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
    model.train()
    _train_step(model, groups, image, mask, ANY_STEP, config, bf16, device, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        _train_step(model, groups, image, mask, ANY_STEP, config, bf16, device, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def generator_gflops(name: str, side: int = 256) -> float:
    """GFLOPs of one forward at ``side`` x ``side`` (FlopCounterMode; the model's whole forward, one image)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = ib.create_model(name).eval()
    image, mask = _batch(1, side, torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(image, mask)
    return counter.get_total_flops() / 1e9


def inference_seconds(name: str, side: int, repeats: int) -> float:
    """Median seconds of one forward at ``side`` x ``side`` on the CPU (after one warm-up call)."""
    model = ib.create_model(name).eval()
    image, mask = _batch(1, side, torch.device("cpu"))
    times = []
    with torch.no_grad():
        model(image * (1 - mask), mask)
        for _ in range(repeats):
            start = time.perf_counter()
            model(image * (1 - mask), mask)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


_HIGHRES_CHILD = r"""
import sys, time, numpy as np, torch
from skimage.data import astronaut
from skimage.transform import resize
import inpaintbench as ib
from inpaintbench.masks import make_masks
h, w = 1536, 2048
photo = resize(astronaut(), (h, w), order=3, anti_aliasing=False).clip(0, 1)
mask = make_masks("L4", 1, size=w, seed=0)[0, 0, :h, :w]
if sys.argv[1] == "forward":
    model = ib.create_model("big-lama").eval()
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float()
    m = torch.from_numpy(mask)[None, None].float()
    start = time.perf_counter()
    with torch.no_grad():
        out = model(x * (1 - m), m)
    print(f"SECONDS {time.perf_counter() - start:.2f} SHAPE {tuple(out.shape)} MASK {mask.mean():.3f}")
else:
    from PIL import Image
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(sys.argv[2])
    Image.fromarray((mask * 255).astype(np.uint8)).save(sys.argv[3])
"""


def highres(out: Path | None) -> None:
    """2048x1536 through big-lama on the CPU: seconds and peak resident memory of a fresh process."""
    import shutil
    import tempfile

    exe = shutil.which("inpaintbench") or str(Path(sys.executable).with_name("inpaintbench"))
    has_inpaint = subprocess.run([exe, "inpaint", "--help"], capture_output=True).returncode == 0
    env = dict(os.environ, TQDM_DISABLE="1")
    with tempfile.TemporaryDirectory() as tmp:
        if has_inpaint:
            photo, mask, result = Path(tmp, "photo.png"), Path(tmp, "mask.png"), Path(tmp, "out.png")
            subprocess.run([sys.executable, "-c", _HIGHRES_CHILD, "files", str(photo), str(mask)], check=True,
                           env=env)
            command = [exe, "inpaint", "big-lama", str(photo), str(mask), "--out", str(result)]
            how = "`inpaintbench inpaint big-lama photo.png mask.png` (random weights; whole command)"
        else:
            command = [sys.executable, "-c", _HIGHRES_CHILD, "forward"]
            how = "the model's forward (`inpaintbench inpaint` is not on this branch yet)"
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # kilobytes on Linux
    forward = next((line.split()[1] for line in done.stdout.splitlines() if line.startswith("SECONDS")), None)
    rows = [["big-lama", "2048x1536 (3.15 MP)", how, f"{seconds:.1f}", forward or "-", f"{peak_gib:.2f}"]]
    where = f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    emit(f"High resolution on the CPU ({where}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}). Peak "
         "memory is the child process's maximum resident set.",
         ["model", "image", "what ran", "process seconds", "forward seconds", "peak RSS GiB"], rows, out)


def main() -> None:
    """Measure training and inference speed; print (and optionally write) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--sides", default="256,512", help="inference sides, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--highres", action="store_true", help="only the 2048x1536 run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.highres:
        return highres(args.out)
    cuda = torch.cuda.is_available()
    where = f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    rows = []
    for name in TRAIN_MODELS:
        cpu = train_images_per_second(name, args.batch, args.steps, torch.device("cpu"), bf16=False)
        gpu = ["not measured (no GPU lent)"] * 2
        if cuda:
            fp32 = train_images_per_second(name, 8, 10, torch.device("cuda"), bf16=False)
            bf16 = train_images_per_second(name, 8, 10, torch.device("cuda"), bf16=True)
            gpu = [f"{fp32:.1f}", f"{bf16:.1f}"]
        rows.append([name, "256x256", f"{cpu:.3f}", *gpu])
        print(rows[-1], flush=True)
    text = emit(f"Training speed (Trainer step: generator and discriminator, batch {args.batch}, {args.steps} timed "
                f"steps after 1 warm-up; random loss-network weights; {where}; torch {torch.__version__}; "
                f"{time.strftime('%Y-%m-%d')}).",
                ["model", "size", "CPU fp32 images/s", "GPU fp32 images/s", "GPU bf16 images/s"], rows, None)
    rows = []
    for name in INFER_MODELS:
        gflops = generator_gflops(name)
        for side in (int(s) for s in args.sides.split(",")):
            seconds = inference_seconds(name, side, args.repeats)
            mp = side * side / 1e6
            achieved = gflops * (side / 256) ** 2 / seconds
            rows.append([name, f"{side}x{side}", f"{seconds:.2f}", f"{seconds / mp:.2f}", f"{gflops:.1f}",
                         str(REFERENCE_GFLOPS[name]), f"{achieved:.1f}"])
            print(rows[-1], flush=True)
    text += "\n" + emit(f"Inference on the CPU (one image per call, eval mode, no_grad, median of {args.repeats} after "
                        f"1 warm-up; {where}).",
                        ["model", "size", "seconds", "seconds / MP", "GFLOPs at 256 (ours)", "GFLOPs at 256 (§14)",
                         "achieved GFLOP/s"], rows, None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("INPAINTBENCH_RANDOM_LOSS_NETWORKS", "1")  # same compute as the real loss networks
    main()
