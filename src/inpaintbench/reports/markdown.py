"""The generated markdown report of a results file: header, leaderboards, plots and grids."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .._io import remove_stale_partials
from .._registry import InpaintbenchError
from ..benchmarks.layout import RESULTS_FILE, RUN_METRICS_COLUMNS, RUN_METRICS_FILE
from ..benchmarks.metrics import METRICS
from .ablations import RESAMPLES, ablation_rows, ablation_table
from .difficulty import AXES, MIN_IMAGES, axis_ranking, axis_summary, axis_table, plot_axis, ranking_table
from .errors import disagreement, disagreement_table, worst_grid
from .figures import plot_metric_vs_level, qualitative_grid, stored_grid_size
from .tables import (
    below_baseline,
    by_level,
    easier_on_harder,
    leaderboard,
    metric_header,
    published_rows,
    published_table,
    run_table,
    summarize,
)


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True,
                               check=True).stdout.strip()
        return commit + (" (with uncommitted changes in src/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")  # Linux only; elsewhere the platform's name is what we have
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{cpu}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads; GPU: {gpu}"


def _versions() -> str:
    from importlib.metadata import version

    import numpy
    import PIL
    import skimage
    import torch

    import inpaintbench

    return (f"inpaintbench {inpaintbench.__version__}, python {platform.python_version()}, torch {torch.__version__}, "
            f"torchvision {version('torchvision')}, numpy {numpy.__version__}, Pillow {PIL.__version__}, "
            f"scikit-image {skimage.__version__}, pandas {pd.__version__}, lpips {version('lpips')}, "
            f"torch-fidelity {version('torch-fidelity')}")


def write_report(results: str | Path, out: str | Path | None = None, suite: Any = None) -> Path:
    """Write ``<out>/README.md`` and its figures from a results.parquet file; return the README path.

    Args:
        results: results.parquet written by the harness, or the folder holding it.
        out: report folder (default: the results file's folder).
        suite: the Suite, for its name, description and order of models and levels (optional).

    Example:
        >>> write_report("reports/demo/results.parquet")  # doctest: +SKIP

    """
    results = Path(results)
    if results.is_dir():  # the suite's output folder, as `inpaintbench bench` names it
        if not (results / RESULTS_FILE).is_file():
            raise InpaintbenchError(f"{results} is a folder without a {RESULTS_FILE}; run `inpaintbench bench` first")
        results = results / RESULTS_FILE
    if not results.is_file():
        raise InpaintbenchError(f"results file {results} does not exist; run `inpaintbench bench` first")
    try:
        frame = pd.read_parquet(results)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError, its I/O errors OSErrors
        raise InpaintbenchError(f"{results} is not a readable parquet file ({type(err).__name__}); "
                                "a results file is what `inpaintbench bench` writes") from None
    missing = [c for c in ("model", "level") if c not in frame.columns]
    if missing:
        raise InpaintbenchError(f"{results} is not a results file of `inpaintbench bench`: it has no "
                                f"{' or '.join(missing)} column")
    if frame.empty:
        raise InpaintbenchError(f"results file {results} has no rows")
    out = Path(out) if out is not None else results.parent
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for folder in (out, figures):
        remove_stale_partials(folder)  # a figure or README of a writer that was killed mid-write
    run_path = results.parent / RUN_METRICS_FILE
    run_metrics = pd.read_parquet(run_path) if run_path.exists() else pd.DataFrame(
        columns=list(RUN_METRICS_COLUMNS))
    unavailable = run_metrics[run_metrics["status"] == "unavailable"].drop_duplicates("metric")
    models = [m.label for m in suite.models] if suite else list(dict.fromkeys(frame["model"]))
    levels = list(suite.levels) if suite else list(dict.fromkeys(frame["level"]))
    requested = list(suite.metrics) if suite else [m for m in METRICS.names() if METRICS.get(m).default]
    metrics = [m for m in requested if m in frame and m not in set(unavailable["metric"]) and frame[m].notna().any()]
    size = int(frame["size"].iloc[0]) if "size" in frame else None
    name = suite.name if suite else str(frame["suite"].iloc[0])
    summary = summarize(frame, metrics)

    lines = [f"# Benchmark report: {name}", "",
             "<!-- generated by `inpaintbench report`; do not edit, regenerate it -->", ""]
    if suite and suite.description:
        lines += [suite.description.strip(), ""]
    first = frame.iloc[0]
    lines += [
        f"- **Generated**: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- **Code**: git commit {_git_commit()}",
        f"- **Versions**: {_versions()}",
        f"- **Hardware**: {_hardware()}",
        f"- **Data**: `{first['dataset']}`, split `{first['split']}`, {frame.groupby('run_id').size().iloc[0]} "
        f"images per level, seed {first['seed']}",
        f"- **Masks**: frozen sets {', '.join(f'`{Path(p).name}`' for p in dict.fromkeys(frame['mask_set']))}",
        "- **Protocol**: the model sees the image with holes set to 0 and the mask (1 = hole); metrics are "
        "computed on the composite `mask * output + (1 - mask) * image` in float, against the decoded "
        "ground-truth pixels. ± is the half-width of the 95% Student-t confidence interval of the mean "
        "over images. Bold marks the best mean (at the shown precision).",
        "",
        "## Metric conventions",
        "",
        tabulate([[metric_header(m, size), METRICS.get(m).convention]
                  for m in requested if m in METRICS], headers=["metric", "convention"], tablefmt="github"),
        "",
        "## Models",
        "",
        _models_table(frame, models),
        "",
    ]
    for level in levels:
        part = frame[frame["level"] == level]
        area = part.groupby("run_id")["area_ratio"].mean().iloc[0]
        lines += [f"## Leaderboard: {level} (mean hole area {area:.1%}, {part.groupby('run_id').size().iloc[0]} "
                  "images)", "", leaderboard(summary, level, metrics, models, size), ""]
        table = run_table(run_metrics, level, models)
        if table:
            lines += ["Run-level metrics (the dataset PSNR is computed from the mean MSE over images):", "", table, ""]
    published = published_rows(summary, run_metrics, list(suite.models), levels) if suite else []
    if published:
        flagged = sum(r["flagged"] for r in published)
        lines += ["## Against the published numbers", "",
                  f"Our number next to the one the source published, on this suite's data and frozen masks. A "
                  f"difference beyond 0.5 dB PSNR, 0.01 SSIM or 10% of the published value (FID and the rest) "
                  f"is flagged: {flagged} of {len(published)} are.", "", published_table(published), ""]
    lines += _ablation_section(frame, suite, metrics, levels, size)
    if not unavailable.empty:
        lines += ["## Unavailable metrics", "",
                  "These metrics were asked for but could not be computed here; no number is reported for them.",
                  "", tabulate([[metric_header(r.metric, size), r.reason] for r in unavailable.itertuples()],
                               headers=["metric", "reason"], tablefmt="github"), ""]
    lines += _questions(summary, metrics, levels, models, frame)
    lines += ["## Across levels", "",
              "Mean ± 95% CI half-width per level. † marks a value better than the same model's on the previous "
              "(easier) ladder level, beyond both intervals.", "", *_ladder_axes(frame, levels)]
    for m in metrics:
        lines += [by_level(summary, m, levels, models, size), ""]
        png = plot_metric_vs_level(summary, m, levels, models, figures / f"{m}_vs_level.png")
        lines += [f"![{METRICS.get(m).label} against level](figures/{png.name})", ""]
    lines += _difficulty_section(frame, metrics, models, figures)
    lines += _error_section(frame, models, results.parent, figures)  # the composites stay beside the results
    lines += ["## Qualitative grids", "",
              "Columns: the model input (holes black), the mask (white = hole), each model's composite, the "
              "ground truth. Rows: test images spread evenly over the split, with their frozen masks.", ""]
    samples = suite.samples_per_grid if suite else stored_grid_size(frame, results.parent)
    for level in levels if samples else []:
        png = qualitative_grid(frame, level, models, results.parent, figures / f"grid_{level}.png", samples=samples)
        lines += [f"### {level}", "", f"![qualitative grid {level}](figures/{png.name})", ""]
    readme = out / "README.md"
    tmp = readme.with_name("README.md.partial")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, readme)
    return readme


def _difficulty_section(frame: pd.DataFrame, metrics: list[str], models: list[str], figures: Path) -> list[str]:
    """The section "Difficulty analysis": the primary metric against each axis, one plot per axis, and the ranking."""
    metric = "psnr" if "psnr" in metrics else (metrics[0] if metrics else None)
    if metric is None:
        return []
    summaries = {axis.name: (axis, summary) for axis in AXES
                 if not (summary := axis_summary(frame, axis, metric, models)).empty}
    if not summaries:
        return []
    label = METRICS.get(metric).label
    ranking = axis_ranking({name: summary for name, (_, summary) in summaries.items()}, metric)
    lines = ["## Difficulty analysis", "",
             f"{label} of every method against each difficulty axis, all levels pooled (mean ± 95% CI half-width, "
             f"images in brackets; groups with fewer than {MIN_IMAGES} images are left out). Axes with one group in "
             f"these results are not shown ({', '.join(a.name for a in AXES if a.name not in summaries) or 'none'}).",
             "", "### Axes ranked by how much they hurt", "",
             "The gap between a method's best and worst group, averaged over methods. The axes are correlated "
             "(the levels mix area, count, shape and location), so the ranking says where the metric moves, "
             "not why.", "", ranking_table(ranking, metric), ""]
    for name, (axis, summary) in summaries.items():
        png = plot_axis(summary, axis, metric, models, figures / f"difficulty_{name.replace(' ', '_')}.png")
        lines += [f"### {name[0].upper()}{name[1:]} ({axis.description})", "", axis_table(summary, metric, models),
                  "", f"![{label} against {name}](figures/{png.name})", ""]
    return lines


def _error_section(frame: pd.DataFrame, models: list[str], runs_root: Path, figures: Path) -> list[str]:
    """The section "Error analysis": each method's worst images and the images where methods disagree most."""
    if "psnr" not in frame or frame["psnr"].isna().all():
        return []
    lines = ["## Error analysis", "",
             "Each method's worst images over all levels by PSNR: the model input (holes black), its composite, "
             "the ground truth and the absolute error (mean over RGB, white = 1). Title: level, image index, PSNR.",
             ""]
    for model in models:
        png = worst_grid(frame, model, runs_root, figures / f"worst_{_file_name(model)}.png")
        if png is not None:
            lines += [f"### {model}", "", f"![worst images of {model}](figures/{png.name})", ""]
    rows = disagreement(frame, models)
    if not rows.empty:
        lines += ["### Where methods disagree most", "",
                  "The images whose PSNR spreads most across the methods on the same level (and mask).", "",
                  disagreement_table(rows), ""]
    return lines


def _file_name(label: str) -> str:
    """A model label as a file name (letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _ablation_section(frame: pd.DataFrame, suite: Any, metrics: list[str], levels: list[str],
                      size: int | None) -> list[str]:
    """The section "Ablations": each variant against its base, paired over the same images and masks."""
    rows = ablation_rows(frame, suite.ablations, metrics, levels) if suite and suite.ablations else []
    if not rows:
        return []
    flagged = sum(r["excludes_zero"] for r in rows)
    return ["## Ablations", "",
            f"Each cell is the mean paired difference (variant - base) over the same images with the same frozen "
            f"masks, with its 95% percentile bootstrap interval ({RESAMPLES:,} resamples of the images, seed 0). "
            f"**Bold** and * mark an interval that excludes zero at the shown precision, with the direction "
            f"(better or worse, by the metric's arrow): {flagged} of {len(rows)} do.", "",
            ablation_table(rows, size), ""]


def _ladder_axes(frame: pd.DataFrame, levels: list[str]) -> list[str]:
    """What the ladder grades, measured on this report's frozen masks of its ladder levels (none: nothing)."""
    from ..masks.difficulty import difficulty
    from ..masks.levels import LADDERS
    from ..masks.sets import load_mask_set

    ladder = [lv for lv in levels if any(lv in names for names in LADDERS.values())]
    sets = frame.drop_duplicates("level").set_index("level")["mask_set"]
    rows = []
    for level in ladder:
        try:
            masks = load_mask_set(sets[level])[0]
        except (InpaintbenchError, OSError):  # the frozen set is not on this machine: the table needs it all
            return []
        axes = difficulty(masks)
        rows.append([level, f"{axes['area'].mean():.1%}", f"{np.nanmean(axes['depth']):.1%}",
                     f"{np.nanmean(axes['context']):.2f}"])
    if len(rows) < 2:
        return []
    return ["The ladder levels grade three axes together, each level at least as hard as the one before on all "
            "three (masks/README.md, where benchmarks/ladder.py validates it with each reference method's error "
            "per level): the hole **area**, the **depth** (mean distance from a hole pixel to the nearest known "
            "pixel, a fraction of the side) and the **context** (mean share of known pixels in the quarter-side "
            "window around a hole pixel; lower is harder). Measured on this report's frozen masks:", "",
            tabulate(rows, headers=["level", "area", "depth", "context"], tablefmt="github",
                     disable_numparse=True), ""]


def _questions(summary: pd.DataFrame, metrics: list[str], levels: list[str], models: list[str],
               frame: pd.DataFrame) -> list[str]:
    """The section "What a reader should question": results that contradict what the suite is meant to show."""
    from ..models.base import MODELS

    trained = [m for m in models if not frame[frame["model"] == m].empty
               and MODELS.get(frame[frame["model"] == m]["model_name"].iloc[0]).model_cls.trainable]
    below = below_baseline(summary, metrics, levels, trained)
    easier = easier_on_harder(summary, metrics, levels, models)
    if not below and not easier:
        return []
    lines = ["## What a reader should question", "",
             "Results that contradict what the suite is meant to show, each beyond both 95% intervals; one line "
             "per model and level, with every metric that shows it.", ""]
    for (model, level), rows in _grouped(below, ("model", "level")):
        values = ", ".join(f"{METRICS.get(r['metric']).label} {r['value']:.4g} against {r['baseline']:.4g}"
                           for r in rows)
        lines.append(f"- **{model}** is worse than mean fill on {level} ({values}): it learned less than a "
                     "constant colour.")
    for (model, level, easy), rows in _grouped(easier, ("model", "level", "easier")):
        values = ", ".join(f"{METRICS.get(r['metric']).label} {r['value']:.4g} against {r['easier_value']:.4g}"
                           for r in rows)
        lines.append(f"- **{model}** does better on {level} than on the easier {easy} ({values}).")
    return [*lines, ""]


def _grouped(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    """``rows`` grouped by the values of ``keys``, groups and rows in their first order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return list(groups.items())


def _models_table(frame: pd.DataFrame, models: list[str]) -> str:
    from ..models.base import MODELS, count_parameters, create_model

    rows = []
    for model in models:
        part = frame[frame["model"] == model]
        if part.empty:
            continue
        first = part.iloc[0]
        config = json.loads(first["model_config"])
        entry = MODELS.get(first["model_name"])
        params = count_parameters(create_model(first["model_name"], **config))
        options = ", ".join(f"{k}={v}" for k, v in config.items()) or "-"
        rows.append([model, first["model_name"], f"{params:,}" if params else "-",
                     int(first["train_steps"]) or ("-" if not entry.model_cls.trainable else 0), options, entry.paper])
    return tabulate(rows, headers=["model", "registered", "parameters", "training steps", "config", "reference"],
                    tablefmt="github", disable_numparse=True)
