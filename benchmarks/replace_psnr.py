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
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import inpaintbench as ib
from inpaintbench.apps import load_model, replace_object
from inpaintbench.datasets.loader import InpaintDataset
from inpaintbench.models.edges import canny_edges, gray_image


def hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR over the hole's pixels of uint8 images."""
    diff = (result.astype(np.float64) - truth.astype(np.float64))[hole] / 255
    return float(10 * np.log10(1 / max(float((diff ** 2).mean()), 1e-12)))


def measure(checkpoint: str, data: str, split: str, seed: int) -> tuple[np.ndarray, float]:
    """Hole PSNR per image (columns: plain, own reference, edgeless reference, oracle) and the seconds taken."""
    model = load_model(checkpoint=checkpoint, device="cpu")
    dataset = InpaintDataset(data, split)
    images = dataset.images_at(range(len(dataset))).permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(seed)
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
            painted = model.paint(x, m, canny_edges(gray_image(x), model.config.sigma))
        oracle = np.where(hole[..., None], (painted[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255), image)
        rows.append([hole_psnr(r, image, hole) for r in (plain, own, blank, oracle.astype(np.uint8))])
    return np.asarray(rows), time.perf_counter() - start


def main() -> None:
    """Measure and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, nargs="+", help="EdgeConnect run folders or stored names")
    parser.add_argument("--data", default="datasets/sample-64")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/replace_psnr.md")
    args = parser.parse_args()

    names = ["plain EdgeConnect (predicted edges)", "replace, the photo as its own reference",
             "replace, an edgeless reference", "oracle (true edges)"]
    lines = [f"# replace vs plain EdgeConnect: hole PSNR on the {args.split} images of {args.data}", "",
             f"`python benchmarks/replace_psnr.py --checkpoint {' '.join(args.checkpoint)} --data {args.data}`; one "
             f"square hole of a third of the side per image (seed {args.seed}); {platform.machine()}, torch "
             f"{torch.__version__}. The 95% intervals are of the mean over images; the difference columns are "
             "paired (the same image and hole).", ""]
    for checkpoint in args.checkpoint:
        rows, seconds = measure(checkpoint, args.data, args.split, args.seed)
        half = 1.96 * rows.std(axis=0, ddof=1) / np.sqrt(len(rows))
        diff = rows[:, 1:2] - rows
        diff_half = 1.96 * diff.std(axis=0, ddof=1) / np.sqrt(len(rows))
        card = json.loads((Path(checkpoint) / "card.json").read_text()) if (Path(checkpoint) / "card.json").is_file() \
            else {}
        config = card.get("config", {})
        trained = ", ".join(f"{k}={config[k]}" for k in ("width", "blocks", "phases", "phase_steps") if k in config)
        lines += [f"## {card.get('model', checkpoint)} ({trained}; {card.get('train', {}).get('steps', '?')} steps)",
                  "", f"{len(rows)} images, {seconds:.0f} s.", "",
                  "| edges in the hole | hole PSNR (dB) | own reference minus this row (dB) |", "|---|---|---|"]
        lines += [f"| {n} | {m:.2f} ± {c:.2f} | {d:+.2f} ± {dc:.2f} |"
                  for n, m, c, d, dc in zip(names, rows.mean(axis=0), half, diff.mean(axis=0), diff_half, strict=True)]
        lines += ["", f"The own reference beats plain EdgeConnect on {(rows[:, 1] > rows[:, 0]).mean():.0%} of the "
                  "images.", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
