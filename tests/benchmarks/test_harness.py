"""End-to-end: a tiny demo suite on the real sample dataset, twice, and resumed."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench.benchmarks import harness
from inpaintbench.benchmarks.layout import IMAGE_COLUMNS

SUITE = """
name = "tiny"
seed = 0
output = "out"
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = {{ size = 32, seed = 0, crops_per_photo = {{ train = 12, val = 4, test = 8 }} }}
[masks]
levels = ["L1", "L2", "L3"]
count = 16
[[models]]
name = "mean-fill"
[[models]]
name = "biharmonic"
[[models]]
name = "mlp-tiny"
train = {{ steps = {steps}, batch_size = 8 }}
[[models]]
name = "cnn-tiny"
train = {{ steps = {steps}, batch_size = 8, lr = 1e-3 }}
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def suite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE.format(steps=10))
    return path


def test_tiny_demo_end_to_end(suite_file, tmp_path):
    results_path = ib.run_suite(suite_file)
    results = pd.read_parquet(results_path)
    assert set(results["model"]) == {"mean-fill", "biharmonic", "mlp-tiny", "cnn-tiny"}
    assert set(results["level"]) == {"L1", "L2", "L3"}
    assert len(results) == 4 * 3 * 16 and results["run_id"].nunique() == 12
    assert tuple(results.columns[:len(IMAGE_COLUMNS)]) == IMAGE_COLUMNS  # the layout the reports read
    assert results[["psnr", "ssim", "l1", "l1_hole"]].notna().all().all()
    report = (tmp_path / "out" / "README.md").read_text()
    for text in ["Leaderboard: L1", "Leaderboard: L3", "PSNR (dB) ↑", "L1 hole ↓", "cnn-tiny", "biharmonic",
                 "git commit", "Gaussian window 11 taps", "grade three axes together", "| level   | area   | depth"]:
        assert text in report
    figures = tmp_path / "out" / "figures"
    for name in ["psnr_vs_level.png", "ssim_vs_level.png", "l1_vs_level.png", "l1_hole_vs_level.png",
                 "grid_L1.png", "grid_L2.png", "grid_L3.png"]:
        with Image.open(figures / name) as im:
            assert im.width > 300
        assert f"figures/{name}" in report


def test_same_seed_gives_identical_numbers_and_rerun_recomputes_nothing(suite_file, tmp_path, monkeypatch):
    first = pd.read_parquet(ib.run_suite(suite_file, report=False))
    second = pd.read_parquet(ib.run_suite(suite_file, resume=False, output=tmp_path / "again", report=False))
    pd.testing.assert_frame_equal(first, second)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached run")

    monkeypatch.setattr(harness, "evaluate", boom)
    monkeypatch.setattr(harness.torch.optim, "Adam", boom)  # any training would build an optimiser
    third = pd.read_parquet(ib.run_suite(suite_file, report=False))
    pd.testing.assert_frame_equal(first, third)


def test_interrupted_suite_resumes_the_missing_runs(suite_file, tmp_path, monkeypatch):
    import shutil

    results_path = ib.run_suite(suite_file, report=False)
    full = pd.read_parquet(results_path)
    for rid in full.loc[full["model"] == "cnn-tiny", "run_id"].unique():  # as if killed before these runs
        shutil.rmtree(tmp_path / "out" / "outputs" / rid)
    full[full["model"] != "cnn-tiny"].to_parquet(results_path, index=False)
    calls = []
    real = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = pd.read_parquet(ib.run_suite(suite_file, report=False))
    assert len(calls) == 3  # only the three cnn-tiny runs
    pd.testing.assert_frame_equal(resumed.sort_values(["run_id", "image"]).reset_index(drop=True),
                                  full.sort_values(["run_id", "image"]).reset_index(drop=True))


NETWORK_SUITE = """
name = "nets"
output = "out-nets"
metrics = ["psnr", "ssim", "ms_ssim", "lpips", "fid", "kid"]
{extra}
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = {{ size = 32, seed = 0, crops_per_photo = {{ train = 12, val = 4, test = 8 }} }}
[masks]
levels = ["L1"]
count = 6
[[models]]
name = "mean-fill"
"""


def test_missing_weights_make_metrics_unavailable_not_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(NETWORK_SUITE.format(extra=f'weights_dir = "{tmp_path / "no-weights"}"'))
    results = pd.read_parquet(ib.run_suite(tmp_path / "s.toml"))
    assert results["lpips"].isna().all() and results["psnr"].notna().all()
    runs = pd.read_parquet(tmp_path / "out-nets" / "run_metrics.parquet")
    unavailable = runs[runs["status"] == "unavailable"].set_index("metric")
    assert set(unavailable.index) == {"lpips", "fid", "kid"}
    assert "alexnet-owt-7be5be79.pth not found" in unavailable.loc["lpips", "reason"]
    report = (tmp_path / "out-nets" / "README.md").read_text()
    assert "## Unavailable metrics" in report and "weights-inception-2015-12-05-6726825d.pth not found" in report
    assert "MS-SSIM (2 scales)" in report  # 32 px images fit two scales, and the header says so
    assert "LPIPS ↓ |" not in report.split("## Unavailable metrics")[0].split("## Leaderboard")[1]


def test_network_metrics_run_with_weights(tmp_path, monkeypatch, random_weights):
    monkeypatch.chdir(tmp_path)
    extra = f'weights_dir = "{random_weights}"\nverify_weights = false'
    (tmp_path / "s.toml").write_text(NETWORK_SUITE.format(extra=extra))
    results = pd.read_parquet(ib.run_suite(tmp_path / "s.toml"))
    assert results["lpips"].notna().all()
    runs = pd.read_parquet(tmp_path / "out-nets" / "run_metrics.parquet").set_index("metric")
    assert runs.loc["fid", "status"] == "ok" and runs.loc["fid", "comparable"] == False  # noqa: E712
    assert runs.loc["fid", "n_images"] == 6 and np.isfinite(runs.loc["kid", "value"])
    assert "kid_std" not in runs.index  # 6 images in subsets of 6: no spread to report
    report = (tmp_path / "out-nets" / "README.md").read_text()
    assert "FID ↓" in report and "no (< 2,048 images: rank-deficient)" in report
    assert "## Unavailable metrics" not in report
