"""End-to-end: a tiny demo suite on the real sample dataset, twice, and resumed."""

import pandas as pd
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench.benchmarks import harness

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
    assert results[["psnr", "ssim", "l1", "l1_hole"]].notna().all().all()
    report = (tmp_path / "out" / "README.md").read_text()
    for text in ["Leaderboard: L1", "Leaderboard: L3", "PSNR (dB) ↑", "L1 hole ↓", "cnn-tiny", "biharmonic",
                 "git commit", "Gaussian window 11 taps"]:
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
    results_path = ib.run_suite(suite_file, report=False)
    full = pd.read_parquet(results_path)
    keep = full[full["model"] != "cnn-tiny"]
    keep.to_parquet(results_path, index=False)
    calls = []
    real = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = pd.read_parquet(ib.run_suite(suite_file, report=False))
    assert len(calls) == 3  # only the three cnn-tiny runs
    pd.testing.assert_frame_equal(resumed.sort_values(["run_id", "image"]).reset_index(drop=True),
                                  full.sort_values(["run_id", "image"]).reset_index(drop=True))
