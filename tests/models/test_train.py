import csv

import pytest
import torch

from inpaintbench._registry import InpaintbenchError
from inpaintbench.models import load_checkpoint, train_model

OPTIONS = {"size": 32, "width": 8, "bottleneck": 32}


def _state(path):
    return load_checkpoint(path)


def test_resume_equals_uninterrupted_run(sample32, tmp_path):
    common = dict(model_options=OPTIONS, batch_size=8, lr=1e-3, seed=4, checkpoint_every=5)
    straight = train_model("cnn", sample32, out=tmp_path / "straight", steps=14, **common)
    train_model("cnn", sample32, out=tmp_path / "resumed", steps=7, **common)
    resumed = train_model("cnn", sample32, out=tmp_path / "resumed", steps=14, **common)
    a, b = _state(straight), _state(resumed)
    assert a["step"] == b["step"] == 14
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log = list(csv.reader(open(tmp_path / "resumed" / "log.csv")))
    assert log[0] == ["step", "loss", "seconds"] and log[-1][0] == "14"
    straight_log = list(csv.reader(open(tmp_path / "straight" / "log.csv")))
    assert log[-1][:2] == straight_log[-1][:2]  # same loss at step 14


def test_checkpoint_is_atomic_and_loads_without_pickle(sample32, tmp_path):
    path = train_model("cnn", sample32, out=tmp_path / "run", steps=2, model_options=OPTIONS, batch_size=4)
    assert path.name == "checkpoint.pt" and not list((tmp_path / "run").glob("*.partial"))
    state = torch.load(path, weights_only=True)
    assert state["step"] == 2 and "generator" in state["optimizers"] and "torch" in state["rng"]


def test_training_a_classical_method_is_refused(sample32, tmp_path):
    with pytest.raises(InpaintbenchError, match="needs no training"):
        train_model("mean-fill", sample32, out=tmp_path / "x", steps=1)


def test_unknown_train_option_is_refused(sample32):
    with pytest.raises(InpaintbenchError, match="unknown train option"):
        train_model("cnn", sample32, stepz=3)
