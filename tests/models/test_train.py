import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from inpaintbench._registry import InpaintbenchError
from inpaintbench.models import load_stored, train_model

OPTIONS = {"size": 32, "width": 8, "bottleneck": 32}


def test_resume_equals_uninterrupted_run(sample32, tmp_path):
    common = dict(model_options=OPTIONS, batch_size=8, lr=1e-3, seed=4, checkpoint_every=5, log_every=1)
    straight = train_model("cnn", sample32, out=tmp_path / "straight", steps=14, **common)
    train_model("cnn", sample32, out=tmp_path / "resumed", steps=7, keep_state=True, **common)
    resumed = train_model("cnn", sample32, out=tmp_path / "resumed", steps=14, **common)
    assert straight.read_bytes() == resumed.read_bytes()  # the stored weights, byte for byte
    log = list(csv.reader(open(tmp_path / "resumed" / "log.csv")))
    straight_log = list(csv.reader(open(tmp_path / "straight" / "log.csv")))
    assert log[0] == ["step", "loss", "seconds"] and log[-1][0] == "14"
    assert [r[:2] for r in log] == [r[:2] for r in straight_log]  # same steps, same losses, none repeated


def test_a_finished_run_keeps_only_its_stored_weights(sample32, tmp_path):
    path = train_model("cnn", sample32, out=tmp_path / "run", steps=2, model_options=OPTIONS, batch_size=4)
    run = tmp_path / "run"
    assert path == run / "model.safetensors" and not list(run.glob("*.partial"))
    assert not (run / "checkpoint.pt").exists()  # resumable state only while unfinished
    card = json.loads((run / "card.json").read_text())
    assert card["model"] == "cnn" and card["source"] == "trained" and card["train"]["steps"] == 2
    model, _ = load_stored(run)
    assert set(load_file(str(path))) == set(model.state_dict())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in load_file(str(path)).items())


def test_a_finished_run_cannot_be_extended_without_its_state(sample32, tmp_path):
    common = dict(model_options=OPTIONS, batch_size=4)
    train_model("cnn", sample32, out=tmp_path / "run", steps=2, **common)
    with pytest.raises(InpaintbenchError, match="keep_state=true"):
        train_model("cnn", sample32, out=tmp_path / "run", steps=4, **common)
    assert train_model("cnn", sample32, out=tmp_path / "run", steps=2, **common).exists()  # done: nothing to do


def test_a_folder_holding_a_run_of_another_model_options_or_data_is_refused(sample32, tmp_path):
    common = dict(steps=2, batch_size=4)
    path = train_model("cnn", sample32, out=tmp_path / "run", model_options=OPTIONS, **common)
    weights = path.read_bytes()
    # before, each of these returned the cnn's weights as if they had been trained
    with pytest.raises(InpaintbenchError, match="holds another run \\(model cnn, not unet-tiny\\)"):
        train_model("unet-tiny", sample32, out=tmp_path / "run", **common)
    with pytest.raises(InpaintbenchError, match="holds another run \\(other model options: width\\)"):
        train_model("cnn", sample32, out=tmp_path / "run", model_options={**OPTIONS, "width": 4}, **common)
    with pytest.raises(InpaintbenchError, match="holds another run \\(another dataset\\)"):
        train_model("cnn", sample32, out=tmp_path / "run", split="val", model_options=OPTIONS, **common)
    assert train_model("cnn", sample32, out=tmp_path / "run", model_options=OPTIONS, **common) == path
    assert path.read_bytes() == weights  # the run is kept as it was


def test_a_changed_weights_file_is_retrained_with_a_warning(sample32, tmp_path):
    common = dict(model_options=OPTIONS, batch_size=4, steps=2)
    path = train_model("cnn", sample32, out=tmp_path / "run", **common)
    good = path.read_bytes()
    path.write_bytes(good[:-10])  # truncated after it was stored
    with pytest.warns(UserWarning, match="changed after it was stored"):
        again = train_model("cnn", sample32, out=tmp_path / "run", **common)
    assert again.read_bytes() == good


def test_a_failed_start_leaves_no_run_folder(sample32, tmp_path, monkeypatch):
    monkeypatch.delenv("INPAINTBENCH_RANDOM_LOSS_NETWORKS")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(InpaintbenchError, match="vgg16-397923af.pth"):
        train_model("pconv-tiny", sample32, out=tmp_path / "pconv", steps=2, batch_size=4)
    with pytest.raises(InpaintbenchError, match="add -O size=32"):
        train_model("glcic-tiny", sample32, out=tmp_path / "glcic", steps=2, batch_size=4, model_options={"size": 64})
    assert not (tmp_path / "pconv").exists() and not (tmp_path / "glcic").exists()


def test_the_hints_work_when_pasted(sample32, tmp_path, capsys):
    """The fix an error names, pasted into the same command, makes it run."""
    import re

    from inpaintbench.cli import main

    command = ["train", "glcic-tiny", "--data", str(sample32), "--steps", "1", "--batch-size", "4",
               "--out", str(tmp_path / "run")]
    assert main([*command, "-O", "size=64"]) == 2
    hint = re.search(r"add (-O \S+)", capsys.readouterr().err).group(1).split()
    assert main([*command, *hint]) == 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_a_fixed_size_model_takes_the_datasets_size(sample32, tmp_path):
    path = train_model("glcic-tiny", sample32, out=tmp_path / "run", steps=1, batch_size=4)  # glcic-tiny is 64
    model, card = load_stored(path.parent)
    assert card["config"]["size"] == 32 and model.config.size == 32


def test_training_a_classical_method_is_refused(sample32, tmp_path):
    with pytest.raises(InpaintbenchError, match="needs no training"):
        train_model("mean-fill", sample32, out=tmp_path / "x", steps=1)


def test_unknown_train_option_is_refused(sample32):
    with pytest.raises(InpaintbenchError, match="unknown train option"):
        train_model("cnn", sample32, stepz=3)


def test_the_default_run_folder_names_the_split(sample32):
    from inpaintbench.models.train import run_folder

    train = run_folder("cnn", sample32, "train", OPTIONS, steps=10)
    assert train == run_folder("cnn", sample32, "train", OPTIONS, steps=10)  # the same run finds its folder
    assert run_folder("cnn", sample32, "val", OPTIONS, steps=10) != train  # another split is another run


def test_an_unknown_or_absent_device_is_a_one_line_error(monkeypatch):
    from inpaintbench.models.train import pick_device

    with pytest.raises(InpaintbenchError, match="unknown device 'nosuch': use auto, cpu, cuda or cuda:N"):
        pick_device("nosuch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InpaintbenchError, match="torch sees no CUDA GPU here"):
        pick_device("cuda:0")
    assert pick_device("cpu") == torch.device("cpu") and pick_device("auto") == torch.device("cpu")
