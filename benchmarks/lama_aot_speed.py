"""LaMa and AOT-GAN speed: training images/s at 256, inference seconds per megapixel against counted FLOPs.

    python benchmarks/lama_aot_speed.py [--batch 2] [--steps 2] [--sides 256,512] [--threads 1]
        [--out benchmarks/results/lama_aot_speed.md]
    python benchmarks/lama_aot_speed.py --highres [--out benchmarks/results/lama_highres.md]
    python benchmarks/lama_aot_speed.py --quick --out FILE   # the -tiny presets at 32x32 in seconds (a test runs it)

Training: the Trainer's step (``models.steps.train_step``: generator then discriminator, their losses, backward
into each group, clipping, optimiser steps) at 256x256 on random images with L3 masks, after one warm-up step.
The loss networks (ADE20k ResNet50-dilated for big-lama, VGG19 for AOT-GAN) have seeded random weights: the same
compute as the real ones. On CUDA each model runs in fp32 and in bf16 autocast + channels_last; without a GPU
those rows say so.

CPU figures are per process CPU time with ``--threads 1`` by default (one core's throughput, what a loaded shared
machine can still measure), wall-clock figures beside them.

Inference: ``model(image, mask)`` in eval mode under ``torch.no_grad`` (LaMa's symmetric pad to 8 included), one
image per call, at each side of ``--sides``; seconds per megapixel next to the generator's GFLOPs at 256x256
counted with ``torch.utils.flop_counter.FlopCounterMode`` (multiply-add = 2 FLOPs; FFTs are not counted), which
model_anchors.md section 14 gives as big-lama 110, lama-fourier 64, AOT-GAN 146.

``--highres``: one 2048x1536 photo (scikit-image's astronaut, upscaled bicubically) with a large mask through
big-lama on the CPU through ``inpaintbench inpaint`` (the refinement-free prediction: symmetric padding to a
multiple of 8, eval mode, cropped back) in a fresh process: wall time, CPU time and the process's peak resident
memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). The weights are big-lama's initialisation written as a
checkpoint-store entry (the same computation as trained weights); a second fresh process times the bare forward.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from _table import emit

import inpaintbench as ib
from inpaintbench.masks import make_masks
from inpaintbench.models.steps import Health, build_groups, train_step
from inpaintbench.models.train import TrainConfig

TRAIN_MODELS = ("big-lama", "lama-fourier", "aot-gan")
INFER_MODELS = ("big-lama", "lama-fourier", "aot-gan")
QUICK_MODELS = ("lama-tiny", "aot-gan-tiny")
REFERENCE_GFLOPS = {"big-lama": 110, "lama-fourier": 64, "aot-gan": 146}  # model_anchors.md section 14
ANY_STEP = 10**9


def _batch(batch: int, side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, side, side, generator=g)
    mask = make_masks("L3", batch, size=side, seed=0).float()
    return image.to(device), mask.to(device)


def train_images_per_second(name: str, batch: int, steps: int, device: torch.device, bf16: bool, side: int = 256
                            ) -> tuple[float, float]:
    """Steady-state images/s of the Trainer's step for ``name`` at ``side`` x ``side``.

    Returns:
        (by CPU time, by wall time) on the CPU; (by wall time, 0) on CUDA.

    """
    torch.manual_seed(0)
    model = ib.create_model(name).to(device)
    if bf16:
        model.to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=batch, bf16=bf16)
    groups = build_groups(model, config)
    image, mask = _batch(batch, side, device)
    if bf16:
        image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
    model.train()
    train_step(model, groups, image, mask, ANY_STEP, config, bf16, 1, Health(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_step(model, groups, image, mask, ANY_STEP, config, bf16, 1, Health(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
        return batch * steps / (time.perf_counter() - start), 0.0
    return batch * steps / (time.process_time() - cpu), batch * steps / (time.perf_counter() - start)


def generator_gflops(name: str, side: int = 256) -> float:
    """GFLOPs of one forward at ``side`` x ``side`` (FlopCounterMode; the model's whole forward, one image)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = ib.create_model(name).eval()
    image, mask = _batch(1, side, torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(image, mask)
    return counter.get_total_flops() / 1e9


def inference_seconds(name: str, side: int, repeats: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of one forward at ``side`` x ``side`` on the CPU, after one warm-up."""
    model = ib.create_model(name).eval()
    image, mask = _batch(1, side, torch.device("cpu"))
    cpu_times, wall_times = [], []
    with torch.no_grad():
        model(image * (1 - mask), mask)
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            model(image * (1 - mask), mask)
            cpu_times.append(time.process_time() - cpu)
            wall_times.append(time.perf_counter() - start)
    return sorted(cpu_times)[len(cpu_times) // 2], sorted(wall_times)[len(wall_times) // 2]


_HIGHRES_CHILD = r"""
import sys, time, numpy as np, torch
from skimage.data import astronaut
from skimage.transform import resize
import inpaintbench as ib
from inpaintbench.masks import make_masks
h, w = 1536, 2048
photo = resize(astronaut(), (h, w), order=3, anti_aliasing=False).clip(0, 1)
mask = make_masks("L4", 1, size=w, seed=0)[0, 0, :h, :w].numpy()
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
    from inpaintbench.models.store import write_entry
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(sys.argv[2])
    Image.fromarray((mask * 255).astype(np.uint8)).save(sys.argv[3])
    torch.manual_seed(0)
    write_entry(sys.argv[4], ib.create_model("big-lama"), "big-lama", {"source": "initialisation (benchmark)"})
    print(f"MASK {mask.mean():.3f}")
"""


# runs one command and reports its CPU seconds and peak resident set (its only child's) on stderr
_PEAK_WRAPPER = r"""
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print("USAGE", usage.ru_utime + usage.ru_stime, usage.ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def highres(out: Path | None, threads: int) -> None:
    """2048x1536 through big-lama on the CPU: wall and CPU seconds and peak resident memory of a fresh process."""
    import shutil
    import tempfile

    exe = shutil.which("inpaintbench") or str(Path(sys.executable).with_name("inpaintbench"))
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS=str(threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo, mask, result, entry = (Path(tmp, n) for n in ("photo.png", "mask.png", "out.png", "big-lama-init"))
        made = subprocess.run([sys.executable, "-c", _HIGHRES_CHILD, "files", str(photo), str(mask), str(entry)],
                              check=True, env=env, capture_output=True, text=True)
        hole = made.stdout.split()[-1]
        runs = [("`inpaintbench inpaint photo.png --mask mask.png --out out.png --checkpoint ENTRY --device cpu`",
                 [exe, "inpaint", str(photo), "--mask", str(mask), "--out", str(result), "--checkpoint", str(entry),
                  "--device", "cpu"]),
                ("big-lama's forward alone (no_grad, eval)", [sys.executable, "-c", _HIGHRES_CHILD, "forward"])]
        for how, command in runs:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, *command], capture_output=True, text=True,
                                  env=env)
            seconds = time.perf_counter() - start
            if done.returncode:
                raise SystemExit(done.stderr)
            cpu, peak_kib = (float(v) for v in done.stderr.split("USAGE")[-1].split())
            peak_gib = peak_kib / 2**20  # ru_maxrss is in kilobytes on Linux
            forward = next((line.split()[1] for line in done.stdout.splitlines() if line.startswith("SECONDS")), "-")
            rows.append(["big-lama", f"2048x1536 (3.15 MP, hole {hole})", how, f"{seconds:.1f}", forward,
                         f"{cpu:.1f}", f"{peak_gib:.2f}"])
            print(rows[-1], flush=True)
    where = (f"{platform.machine()} CPU, {threads} thread(s), load average {os.getloadavg()[0]:.1f}; torch "
             f"{torch.__version__}; {time.strftime('%Y-%m-%d')}")
    emit(f"High resolution on the CPU ({where}). Peak memory is the process's maximum resident set.",
         ["model", "image", "what ran", "process wall seconds", "forward wall seconds", "process CPU seconds",
          "peak RSS GiB"], rows, out)


def main() -> None:
    """Measure training and inference speed; print (and optionally write) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--sides", default="256,512", help="inference sides, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: one core's throughput)")
    parser.add_argument("--highres", action="store_true", help="only the 2048x1536 run")
    parser.add_argument("--quick", action="store_true", help="the -tiny presets at 32x32, 1 step, 1 repeat")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    train_models, infer_models, side = TRAIN_MODELS, INFER_MODELS, 256
    if args.quick:
        train_models, infer_models, side = QUICK_MODELS, QUICK_MODELS, 32
        args.steps, args.repeats, args.sides = 1, 1, "32"
    torch.set_num_threads(args.threads)
    if args.highres:
        return highres(args.out, args.threads)
    cuda = torch.cuda.is_available()
    where = (f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s), load average "
             f"{os.getloadavg()[0]:.1f}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    rows = []
    for name in train_models:
        by_cpu, by_wall = train_images_per_second(name, args.batch, args.steps, torch.device("cpu"), False, side)
        gpu = ["not measured (no GPU lent)"] * 2
        if cuda:
            gpu = [f"{train_images_per_second(name, 8, 10, torch.device('cuda'), bf16, side)[0]:.1f}"
                   for bf16 in (False, True)]
        rows.append([name, f"{side}x{side}", f"{by_cpu:.3f}", f"{by_wall:.3f}", *gpu])
        print(rows[-1], flush=True)
    text = emit(f"Training speed (Trainer step: generator and discriminator, batch {args.batch}, {args.steps} timed "
                f"steps after 1 warm-up; random loss-network weights; {where}). Images/s by the process's CPU "
                "time (one core's throughput with one thread) and by the wall clock (the shared machine's).",
                ["model", "size", "CPU images/s (CPU time)", "CPU images/s (wall)", "GPU fp32 images/s",
                 "GPU bf16 images/s"], rows, None)
    rows = []
    for name in infer_models:
        gflops = generator_gflops(name)
        for side in (int(s) for s in args.sides.split(",")):
            cpu_s, wall_s = inference_seconds(name, side, args.repeats)
            mp = side * side / 1e6
            rows.append([name, f"{side}x{side}", f"{cpu_s:.2f}", f"{wall_s:.2f}", f"{cpu_s / mp:.2f}",
                         f"{gflops:.1f}", str(REFERENCE_GFLOPS.get(name, "-")),
                         f"{gflops * (side / 256) ** 2 / cpu_s:.1f}"])
            print(rows[-1], flush=True)
    text += "\n" + emit(f"Inference on the CPU (one image per call, eval mode, no_grad, median of {args.repeats} "
                        f"after 1 warm-up; {where}).",
                        ["model", "size", "CPU seconds", "wall seconds", "CPU seconds / MP", "GFLOPs at 256 (ours)",
                         "GFLOPs at 256 (model_anchors §14)", "achieved GFLOP/s (CPU time)"], rows, None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("INPAINTBENCH_RANDOM_LOSS_NETWORKS", "1")  # same compute as the real loss networks
    main()
