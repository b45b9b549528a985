"""The report's ablation, difficulty and error sections, and its numbers against a recomputation from the parquet."""

import os
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench.reports.ablations import paired_bootstrap
from inpaintbench.reports.difficulty import AXES, axis_groups
from inpaintbench.reports.tables import DECIMALS, mean_ci

pytestmark = pytest.mark.slow

SUITE = """
name = "sections"
output = "out"
metrics = ["psnr", "ssim", "l1_hole"]
samples_per_grid = 3
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = { size = 32, seed = 0, crops_per_photo = { train = 4, val = 2, test = 8 } }
[masks]
levels = ["L1", "L2", "L3"]
count = 16
[[models]]
name = "mean-fill"
[[models]]
name = "telea"
[[models]]
name = "navier-stokes"
[[models]]
name = "patchmatch"
[[ablations]]
name = "radius"
base = "telea"
variants = [{ label = "telea r1", options = { radius = 1.0 } }]
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("sections")
    (root / "s.toml").write_text(SUITE)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        frame = pd.read_parquet(ib.run_suite(root / "s.toml"))
    finally:
        os.chdir(cwd)
    for column in ("dataset", "mask_set"):  # the suite's relative paths, for the checks run from elsewhere
        frame[column] = [str(root / p) for p in frame[column]]
    return frame, (root / "out" / "README.md").read_text(), root / "out"


def _table(text: str, heading: str) -> list[list[str]]:
    """The cells of the first markdown table after ``heading``."""
    after = text.split(heading, 1)[1]
    lines = [line for line in after.splitlines() if line.startswith("|")]
    block = []
    for line in after.splitlines()[after.splitlines().index(lines[0]):]:
        if not line.startswith("|"):
            break
        block.append([c.strip().strip("*").strip() for c in line.strip("|").split("|")])
    return [row for row in block[2:]]


def test_leaderboard_numbers_equal_a_recomputation(report):
    frame, text, _ = report
    for level in ["L1", "L2", "L3"]:
        rows = _table(text, f"## Leaderboard: {level}")
        assert [r[0] for r in rows] == ["mean-fill", "telea", "navier-stokes", "patchmatch", "telea r1"]
        for row in rows:
            part = frame[(frame["model"] == row[0]) & (frame["level"] == level)]
            for cell, metric in zip(row[1:], ["psnr", "ssim", "l1_hole"], strict=True):
                mean, ci = mean_ci(part[metric].to_numpy())
                d = DECIMALS[metric]
                assert cell.replace("*", "").strip() == f"{mean:.{d}f} ± {ci:.{d}f}", (level, row[0], metric)


def test_difficulty_tables_equal_a_recomputation(report):
    frame, text, out = report
    assert "## Difficulty analysis" in text and "### Axes ranked by how much they hurt" in text
    area = next(a for a in AXES if a.name == "hole area")
    rows = _table(text, "### Hole area")
    header = text.split("### Hole area", 1)[1].split("\n|", 1)[1].split("\n")[0]
    groups = [c.strip() for c in header.strip("|").split("|")][1:]
    groups_of = axis_groups(frame, area)
    checked = 0
    for row in rows:
        part = frame[frame["model"] == row[0]]
        for group, cell in zip(groups, row[1:], strict=True):
            if cell == "-":
                continue
            values = part["psnr"][groups_of[part.index] == group].to_numpy()
            mean, ci = mean_ci(values)
            assert cell == f"{mean:.2f} ± {ci:.2f} ({len(values)})"
            checked += 1
    assert checked >= 5
    for name in ["hole_area", "hole_count", "shape", "location"]:
        with Image.open(out / "figures" / f"difficulty_{name}.png") as im:
            assert im.width > 300
        assert f"figures/difficulty_{name}.png" in text
    assert "resolution" in text.split("are not shown (")[1].split(")")[0]  # one size here: no resolution axis


def test_ablation_section_equals_a_recomputation_and_patchmatch_beats_mean_fill(report):
    frame, text, _ = report
    rows = _table(text, "## Ablations")
    assert len(rows) == 3 and all(r[1] == "telea r1 vs telea" and r[2] == "radius=1.0" for r in rows)
    for row in rows:
        level = row[3]
        base = frame[(frame["model"] == "telea") & (frame["level"] == level)].sort_values("image")
        variant = frame[(frame["model"] == "telea r1") & (frame["level"] == level)].sort_values("image")
        diff, low, high = paired_bootstrap(base["psnr"].to_numpy(), variant["psnr"].to_numpy())
        cell = re.sub(r"\*.*", "", row[5]).strip()
        assert cell == f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"
    summary = frame.groupby(["level", "model"])["l1_hole"].mean().unstack()
    for model in ["telea", "navier-stokes", "patchmatch"]:
        assert (summary[model] < summary["mean-fill"]).all(), model


def test_error_analysis_shows_each_methods_worst_images(report):
    frame, text, out = report
    assert "## Error analysis" in text and "### Where methods disagree most" in text
    for model in ["mean-fill", "telea", "patchmatch"]:
        name = f"worst_{model.replace('-', '-')}.png"
        with Image.open(out / "figures" / name) as im:
            assert im.height > 300
    worst = frame[frame["model"] == "mean-fill"].nsmallest(1, "psnr").iloc[0]
    assert (out / "outputs" / worst["run_id"] / f"{int(worst['image']):06d}.png").is_file()
    rows = _table(text, "### Where methods disagree most")
    spreads = [float(r[3]) for r in rows]
    assert spreads == sorted(spreads, reverse=True)
    first = frame[(frame["level"] == rows[0][0]) & (frame["image"] == int(rows[0][1]))]
    assert float(rows[0][3]) == pytest.approx(np.ptp(first["psnr"]), abs=0.006)


def test_the_report_written_again_without_the_suite_removes_a_killed_writers_files_and_keeps_the_grids(report):
    _, _, out = report
    grids = {p.name: p.read_bytes() for p in (out / "figures").glob("grid_*.png")}
    dead = 2 ** 22 + 1  # above Linux's default pid_max: no live process has this pid
    stale = [out / "figures" / f"psnr_vs_level.png.partial-{dead}", out / f"README.md.partial-{dead}"]
    for path in stale:
        path.write_bytes(b"half a file")
    cwd = os.getcwd()
    os.chdir(out.parent)  # the suite's dataset and mask-set paths are relative to it
    try:
        assert ib.write_report(out) == out / "README.md"  # the suite's folder names its results.parquet
    finally:
        os.chdir(cwd)
    assert not any(path.exists() for path in stale)
    # without the suite, the grid size (samples_per_grid = 3 here, 6 by default) is read back from what was stored
    assert grids and {p.name: p.read_bytes() for p in (out / "figures").glob("grid_*.png")} == grids


def test_a_report_written_into_another_folder_has_the_same_grids(report):
    _, text, out = report
    cwd = os.getcwd()
    os.chdir(out.parent)
    try:  # the composites stay beside the results: before, the grids and worst images were looked for in --out
        elsewhere = ib.write_report(out / "results.parquet", out.parent / "elsewhere").parent
    finally:
        os.chdir(cwd)
    for name in [p.name for p in (out / "figures").glob("*.png")]:
        assert (elsewhere / "figures" / name).read_bytes() == (out / "figures" / name).read_bytes(), name
    again = (elsewhere / "README.md").read_text()
    assert again.count("![qualitative grid") == text.count("![qualitative grid") > 0
    assert again.count("![worst images of") == text.count("![worst images of") > 0
