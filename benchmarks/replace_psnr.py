"""Hole PSNR of `replace` with the photo itself as the reference against plain EdgeConnect (predicted edges).

    python benchmarks/replace_psnr.py --checkpoint RUN [--data datasets/sample-64] [--out benchmarks/results/...]

On the test split of a shard dataset, one square hole per image (a third of the side, at a seeded place): the
hole PSNR (in dB, over the hole's pixels) of

* plain EdgeConnect (``ib.inpaint``: the edge generator's edges in the hole),
* ``ib.replace_object`` with the uncorrupted photo as the reference and no sketch (the match finds the hole's own
  place, so the borrowed edges are the true ones),
* ``ib.replace_object`` with an edgeless reference (a flat grey image: nothing to borrow),
* the oracle: the image generator on Canny's edges of the uncorrupted photo (``edges="oracle"``).

If the image generator paints from the edges, the second beats the first and the third, and nears the fourth.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

import inpaintbench as ib
from inpaintbench.apps import load_model, replace_object
from inpaintbench.datasets.loader import InpaintDataset
from inpaintbench.models.edgeconnect import canny_edges, gray_image


def hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR over the hole's pixels of uint8 images."""
    diff = (result.astype(np.float64) - truth.astype(np.float64))[hole] / 255
    return float(10 * np.log10(1 / max(float((diff ** 2).mean()), 1e-12)))


def main() -> None:
    """Measure and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an EdgeConnect run folder or stored checkpoint")
    parser.add_argument("--data", default="datasets/sample-64")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/replace_psnr.md")
    args = parser.parse_args()

    model = load_model(checkpoint=args.checkpoint, device="cpu")
    dataset = InpaintDataset(args.data, args.split)
    images = dataset.images_at(range(len(dataset))).permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(args.seed)
    rows = []
    start = time.perf_counter()
    for image in images:
        h, w = image.shape[:2]
        side = min(h, w) // 3
        top, left = rng.integers(side // 4, h - side - side // 4), rng.integers(side // 4, w - side - side // 4)
        hole = np.zeros((h, w), bool)
        hole[top:top + side, left:left + side] = True
        plain = ib.inpaint(image, hole, model=model)
        own = replace_object(image, hole, image, model=model).result
        blank = replace_object(image, hole, np.full_like(image, 128), model=model).result
        x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
        m = torch.from_numpy(hole.astype(np.float32))[None, None]
        with torch.no_grad():
            truth_edges = canny_edges(gray_image(x), model.config.sigma)
            oracle = model.paint(x, m, truth_edges)
        oracle = np.where(hole[..., None], (oracle[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255), image)
        rows.append([hole_psnr(r, image, hole) for r in (plain, own, blank, oracle.astype(np.uint8))])
    rows = np.asarray(rows)
    means = rows.mean(axis=0)
    half = 1.96 * rows.std(axis=0, ddof=1) / np.sqrt(len(rows))
    wins = (rows[:, 1] > rows[:, 0]).mean()
    names = ["plain EdgeConnect (predicted edges)", "replace, the photo as its own reference",
             "replace, an edgeless reference", "oracle (true edges)"]
    lines = [f"# replace vs plain EdgeConnect: hole PSNR on {len(rows)} {args.split} images of {args.data}", "",
             f"`python benchmarks/replace_psnr.py --checkpoint {args.checkpoint} --data {args.data}`; one square hole "
             f"of a third of the side per image (seed {args.seed}); {time.perf_counter() - start:.0f} s on "
             f"{platform.processor() or platform.machine()}, torch {torch.__version__}.", "",
             "| edges in the hole | hole PSNR (dB), mean | 95% CI half-width |", "|---|---|---|"]
    lines += [f"| {n} | {m:.2f} | {c:.2f} |" for n, m, c in zip(names, means, half, strict=True)]
    lines += ["", f"replace beats plain EdgeConnect on {wins:.0%} of the images."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
