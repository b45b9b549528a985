"""iNaturalist scraper speed: images/s and CPU seconds per image, side by side with img2dataset.

    python benchmarks/inat_speed.py [--per-class 300] [--img2dataset /path/to/venv/bin/img2dataset]
                                    [--out benchmarks/results/inat_speed.md]

Starts the fake iNaturalist server (tests/fakes/inat_process.py) in its own process with 20 ms of latency per
photo, then, in the same run and for concurrency 16 and 64: `inpaintbench data build inat` (listing through
the API, downloads, verification, centre crop and resize to 256, shards), and img2dataset downloading the
same photo URLs (the ones inpaintbench accepted) to webdataset at the same thread count, one process,
resize mode center_crop at 256. Both run as subprocesses; CPU seconds are their user + system time. The
fake server renders every photo before the timing starts and serves them from memory. Run from the repo root.

The API rate limit is raised to 50 requests/s and the media budget to 1,000 GB/hour for the fake server (the
defaults, 1 request/s and 5 GB/hour = 1.4 MB/s, would measure the limiters, not the scraper); a build of 3 x 300
images needs 6-9 listing requests. img2dataset is installed apart
(`python -m venv /tmp/i2d && /tmp/i2d/bin/pip install -c constraints.txt img2dataset`): it pulls in
albumentations, OpenCV and wandb, which inpaintbench does not need.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _table import emit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.inat_process import read_port_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """name = "inat-speed"
size = 256
min_side = 256
photo_size = "large"
[politeness]
requests_per_second = 50.0
media_gb_per_hour = 1000.0
timeout_s = 10.0
contact = "benchmark@example.org"
[classes.cat]
taxon_id = 118552
query = { quality_grade = ["casual", "needs_id", "research"] }
[classes.dog]
taxon_id = 47144
query = { quality_grade = ["casual", "needs_id", "research"] }
[classes.bird]
taxon_id = 3
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command to completion; return its wall seconds and CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def count_images(folder: Path) -> int:
    """Images written by img2dataset (successes in its per-shard stats)."""
    return sum(json.loads(p.read_text())["successes"] for p in folder.glob("*_stats.json"))


def main() -> None:
    """Measure and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--img2dataset", default=shutil.which("img2dataset") or "img2dataset")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    counts = f"118552={args.per_class * 3 // 2},47144={args.per_class * 3 // 2},3={args.per_class * 2}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port_file = tmp / "ports.json"
        server = subprocess.Popen([sys.executable, "-m", "tests.fakes.inat_process", "--counts", counts,
                                   "--photo-latency", "0.02", "--prewarm", "large", "--port-file", str(port_file)],
                                  cwd=ROOT, env=env)
        try:
            api_url = read_port_file(port_file, timeout=300, proc=server)["api_url"]
            recipe = tmp / "recipe.toml"
            recipe.write_text(RECIPE)

            def ours(concurrency: int) -> list:
                out = tmp / f"ours-{concurrency}"
                wall, cpu = timed([sys.executable, "-m", "inpaintbench.cli", "data", "build", "inat", "--recipe",
                                   str(recipe), "--api-url", api_url, "--per-class", str(args.per_class),
                                   "--out", str(out), "--concurrency", str(concurrency), "--workers", "2"], env)
                manifest = pd.read_parquet(out / "manifest.parquet")
                return [out, int((manifest.status == "ok").sum()), wall, cpu]

            # warm-up: one build gives the URL list (the server made its photos before it started)
            warm, images, _, _ = ours(64)
            manifest = pd.read_parquet(warm / "manifest.parquet")
            (tmp / "urls.txt").write_text("\n".join(manifest[manifest.status == "ok"].url) + "\n")
            rows = []
            for concurrency in (16, 64):
                shutil.rmtree(tmp / f"ours-{concurrency}", ignore_errors=True)
                _, images, wall, cpu = ours(concurrency)
                rows.append(["inpaintbench (API listing + download + shards)", concurrency, images,
                             f"{images / wall:.1f}", f"{1000 * cpu / images:.1f}"])
                i2d_out = tmp / f"i2d-{concurrency}"
                wall, cpu = timed([args.img2dataset, "--url_list", str(tmp / "urls.txt"), "--input_format", "txt",
                                   "--output_folder", str(i2d_out), "--output_format", "webdataset",
                                   "--thread_count", str(concurrency), "--processes_count", "1",
                                   "--image_size", "256", "--resize_mode", "center_crop", "--timeout", "10",
                                   "--retries", "0", "--enable_wandb", "False"], env)
                images = count_images(i2d_out)
                rows.append(["img2dataset (same URLs)", concurrency, images, f"{images / wall:.1f}",
                             f"{1000 * cpu / images:.1f}"])
        finally:
            server.kill()
            server.wait()
    caption = (f"iNaturalist build speed against the fake server (20 ms per photo), {platform.processor() or 'cpu'}, "
               f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. Photos: 'large' (<= 1024 px, mostly "
               f"320-800 px here), centre crop, resize to 256, JPEG q95. img2dataset run with one process.")
    emit(caption, ["tool", "concurrency", "images", "images/s", "CPU ms/image"], rows, args.out)


if __name__ == "__main__":
    main()
