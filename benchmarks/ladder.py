"""Validate the difficulty ladder: each reference method's hole error on every level L1-L6, at 64 and 256.

    python benchmarks/ladder.py [--sizes 64 256] [--out benchmarks/results/ladder.md]

Runs the suites benchmarks/ladder-<size>.toml (mean fill, biharmonic, OpenCV Telea and Navier-Stokes, and a CNN
trained on all six levels, on the sample dataset's 128 test crops, one frozen mask per image and level; a run
already recorded is reused), then writes, per size, each method's hole L1 and PSNR per level with 95% intervals
and the paired difference of every step (the same image at the two levels), and whether the error rises at every
step. The ladder is graded for a method when its hole L1 rises and its PSNR falls at every step.
The table between the markers is what masks/README.md shows; this refreshes it there.
"""

from __future__ import annotations

import argparse
import platform
import time
import tomllib
from pathlib import Path

import pandas as pd
import torch

import inpaintbench as ib
from inpaintbench.masks import list_levels
from inpaintbench.masks.preview import METHODS_BEGIN, METHODS_END, replace_methods_block
from inpaintbench.reports.tables import mean_ci

METRICS = {"l1_hole": ("hole L1", 4, +1), "psnr": ("PSNR (dB)", 2, -1)}  # name: (header, decimals, harder sign)


def per_level(frame: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """Per model: images x levels of one metric (rows aligned by image index, so steps can be paired)."""
    return {model: part.pivot(index="image", columns="level", values=metric)[list_levels()]
            for model, part in frame.groupby("model", sort=False)}


def step_verdicts(table: pd.DataFrame, sign: int) -> tuple[list[tuple[float, float]], int, int]:
    """Paired step differences (mean, half-width) in the harder direction, steps that are harder, and beyond the CI."""
    steps = [mean_ci(sign * (table[b] - table[a]).to_numpy()) for a, b in zip(table.columns, table.columns[1:],
                                                                                strict=False)]
    return steps, sum(m > 0 for m, _ in steps), sum(m - h > 0 for m, h in steps)


def size_section(frame: pd.DataFrame, size: int) -> tuple[list[str], list[str]]:
    """The markdown of one size: the level table (for masks/README.md too) and the paired steps."""
    models = list(dict.fromkeys(frame["model"]))
    compact, steps_lines = [], []
    for metric, (header, digits, sign) in METRICS.items():
        tables = per_level(frame, metric)
        compact += [f"| {size} px, {header} | " + " | ".join(list_levels()) + " | harder at every step |",
                    "|---|" + "---|" * (len(list_levels()) + 1)]
        steps_lines += [f"| {size} px, {header}: step | " + " | ".join(
            f"{a}->{b}" for a, b in zip(list_levels(), list_levels()[1:], strict=False)) + " |",
            "|---|" + "---|" * (len(list_levels()) - 1)]
        for model in models:
            table = tables[model]
            cells = [f"{m:.{digits}f} ± {h:.{digits}f}" for m, h in (mean_ci(table[lv].to_numpy())
                                                                        for lv in list_levels())]
            steps, harder, beyond = step_verdicts(table, sign)
            verdict = (f"**yes** ({beyond}/{len(steps)} beyond the paired CI)" if harder == len(steps)
                       else f"**no** ({harder}/{len(steps)} steps harder)")
            compact.append(f"| {model} | " + " | ".join(cells) + f" | {verdict} |")
            steps_lines.append(f"| {model} | " + " | ".join(f"{m:+.{digits}f} ± {h:.{digits}f}"
                                                           for m, h in steps) + " |")
        compact.append("")
        steps_lines.append("")
    l1 = frame.groupby(["model", "level"])["l1_hole"].mean().unstack()
    weak = [m for m in models if m != "mean-fill" and "mean-fill" in l1.index
            and (l1.loc[m] > l1.loc["mean-fill"]).all()]
    if weak:
        compact += [f"At {size} px, {', '.join(weak)} has a higher hole L1 than mean fill at every level: it has not "
                    "learned more than a constant colour in this budget, so its grading says little.", ""]
    return compact, steps_lines


def cnn_budget(size: int) -> str:
    """The trained CNN's budget as its suite states it, e.g. "1,000 steps at batch 32 at 64 px"."""
    suite = tomllib.loads(Path(f"benchmarks/ladder-{size}.toml").read_text())
    train = next(entry["train"] for entry in suite["models"] if entry["name"] == "cnn")
    return f"{train['steps']:,} steps at batch {train['batch_size']} at {size} px"


def main() -> None:
    """Run the suites and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--out", default="benchmarks/results/ladder.md")
    parser.add_argument("--masks-readme", default="masks/README.md", help="whose table to refresh, if it has one")
    args = parser.parse_args()
    compact, steps, timing = [], [], []
    for size in args.sizes:
        start = time.perf_counter()
        results = ib.run_suite(f"benchmarks/ladder-{size}.toml")
        timing.append(f"{size} px {time.perf_counter() - start:.0f} s")
        frame = pd.read_parquet(results)
        table, paired = size_section(frame, size)
        compact += table
        steps += paired
    n = len(frame[frame["level"] == list_levels()[0]]) // frame["model"].nunique()
    lines = [
        "# The difficulty ladder, validated: each method's error per level",
        "",
        f"`python benchmarks/ladder.py --sizes {' '.join(map(str, args.sizes))}` (suites "
        + ", ".join(f"[benchmarks/ladder-{s}.toml](../ladder-{s}.toml)" for s in args.sizes)
        + f"): the sample dataset's {n} test crops at each size (two held-out photos), one frozen mask per image "
        "and level (seed 0); mean fill, biharmonic, OpenCV Telea and Navier-Stokes (radius 3), and the `cnn` "
        "trained on L1-L6 at that size (the suite's budget: " + ", ".join(cnn_budget(s) for s in args.sizes)
        + f"). {platform.machine()}, torch {torch.__version__}; this run's wall time (runs already recorded "
        f"are reused): {', '.join(timing)}.",
        "",
        "Mean ± the 95% interval of the mean over images. \"Harder at every step\" is read on the paired "
        "differences below (the same image at the two levels): the error rises (hole L1 up, PSNR down) at "
        "every step, and how many steps rise beyond their paired interval.",
        "",
        METHODS_BEGIN,
        *compact,
        METHODS_END,
        "",
        "## Paired step differences (positive = harder)",
        "",
        "Hole L1 of the harder level minus the easier one, and PSNR of the easier minus the harder, per image, "
        "mean ± 95% interval.",
        "",
        *steps,
        "Mean fill paints every hole pixel with the image's mean colour, so its error depends on the holes' "
        "shape only through which pixels they cover; it moves little from level to level.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    if replace_methods_block(args.masks_readme, [METHODS_BEGIN, *compact, METHODS_END]):
        print(f"refreshed the table in {args.masks_readme}")


if __name__ == "__main__":
    main()
