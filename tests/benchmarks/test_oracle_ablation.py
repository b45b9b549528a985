"""The oracle-edge ablation as a row pair: one training run, two rows, the oracle row fed the true edges."""

import pandas as pd
import pytest

import inpaintbench as ib
from inpaintbench.benchmarks import harness

SUITE = """
name = "edges"
seed = 0
output = "out"
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = { size = 32, seed = 0, crops_per_photo = { train = 12, val = 4, test = 8 } }
[masks]
levels = ["L2"]
count = 8
[[models]]
name = "edgeconnect-tiny"
label = "predicted edges"
train = { steps = 3, batch_size = 4 }
[[models]]
name = "edgeconnect-tiny"
label = "oracle edges"
options = { edges = "oracle" }
train = { steps = 3, batch_size = 4 }
"""


@pytest.mark.slow
def test_the_pair_trains_once_and_only_the_oracle_row_sees_the_truth(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edges.toml").write_text(SUITE)
    trained, seen = [], []
    real_train, real_evaluate = harness.train_model, harness.evaluate
    monkeypatch.setattr(harness, "train_model", lambda *a, **k: trained.append(k["model_options"]) or
                        real_train(*a, **k))

    def spy(model, images, masks, metrics, keep=None):
        real_guide = model.oracle_guide
        model.oracle_guide = lambda truth: seen.append(model.config.edges) or real_guide(truth)
        return real_evaluate(model, images, masks, metrics, keep)

    monkeypatch.setattr(harness, "evaluate", spy)
    results = pd.read_parquet(ib.run_suite(tmp_path / "edges.toml", report=False))
    assert trained == [{}, {}]  # the oracle switch is not a training option: both rows train the same run
    assert len(list((tmp_path / "models" / "checkpoints").iterdir())) == 1
    assert set(seen) == {"predicted", "oracle"}
    means = results.groupby("model")["psnr"].mean()
    assert set(means.index) == {"predicted edges", "oracle edges"} and means.nunique() == 2
    assert results["run_id"].nunique() == 2
