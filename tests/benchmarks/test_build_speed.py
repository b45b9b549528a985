"""benchmarks/build_speed.py runs end to end on a tiny count and writes every row of its table."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_build_speed_on_40_images_writes_the_bound_the_floor_and_every_build(tmp_path):
    out = tmp_path / "build_speed.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TQDM_DISABLE": "1"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "build_speed.py"), "--count", "40", "--out", str(out)],
                   check=True, env=env, capture_output=True, cwd=ROOT / "benchmarks", timeout=600)
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in out.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| what")]
    by_name = {row[0]: row for row in rows}
    for size in (256, 178):
        bound = next(row for name, row in by_name.items()
                     if name.startswith(f"celeba {size}, any converter") and "alone" in name)
        chained = next(row for name, row in by_name.items() if name.startswith(f"celeba {size}, the stages chained"))
        floor = next(row for name, row in by_name.items()
                     if name.startswith(f"celeba {size}, chained with each member read"))
        assert bound[-1] == "100%"
        # the ceiling is the chain read from the zip plus the write, as its label says (no timing is compared:
        # on 40 images the read may not even show against the noise)
        read, write = map(float, re.search(r"read from the zip ([\d.]+) \+ shard write ([\d.]+) ms", floor[0]).groups())
        assert write > 0 and int(chained[3].replace(",", "")) > 0
        assert int(floor[3].replace(",", "")) == pytest.approx(1e3 / (read + write), rel=0.05)
        two = next(row for name, row in by_name.items()
                   if name.startswith(f"celeba {size}, any converter") and "2 processes at once" in name)
        assert two[1] == "2" and two[-1] == "100%" and int(two[3].replace(",", "")) > 0  # the two-worker bound
    builds = [row for row in rows if row[0].startswith("inpaintbench data build")]
    assert len(builds) == 7  # celeba 256 and 178 with 1 and 2 workers, places2 256 with 1 and 2, 128 with 1
    assert all(row[-1].endswith("%") for row in builds if "celeba" in row[0])  # CelebA's share of its bound
    assert all(row[-1] == "-" for row in builds if "places2" in row[0])
