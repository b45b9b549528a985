"""Fixtures of the single-image commands: a real photo of an odd size, its hole, and short training runs."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def photo():
    """scikit-image's chelsea (the cat), cropped to 300 x 217 (width x height): not a multiple of anything."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea()[40:257, 60:360])


@pytest.fixture(scope="session")
def hole(photo):
    """A hole of two boxes (one across the cat's face), 1 = hole."""
    mask = np.zeros(photo.shape[:2], bool)
    mask[60:110, 120:190] = True
    mask[150:170, 30:60] = True
    return mask


def _short_run(name, data, out, steps=2, **options):
    from inpaintbench.datasets.loader import InpaintDataset
    from inpaintbench.models import create_model
    from inpaintbench.models.train import TrainConfig, train

    torch.manual_seed(0)
    model = create_model(name, **options)
    train(model, InpaintDataset(data, "train", masks=["L2"], seed=0), out, TrainConfig(steps=steps, batch_size=4),
          model_name=name)
    return out


@pytest.fixture(scope="session")
def edgeconnect_run(sample32, tmp_path_factory):
    """A two-step run of edgeconnect-tiny: real weights in a real run folder (plumbing, not quality)."""
    return _short_run("edgeconnect-tiny", sample32, tmp_path_factory.mktemp("runs") / "edgeconnect")


@pytest.fixture(scope="session")
def cnn_run(sample32, tmp_path_factory):
    """A two-step run of cnn-tiny (a fixed-size model of 32 x 32)."""
    return _short_run("cnn-tiny", sample32, tmp_path_factory.mktemp("runs") / "cnn")


@pytest.fixture(scope="session")
def sketch_run(sample32, tmp_path_factory):
    """A two-step run of deepfill-v2-tiny with the sketch channel."""
    return _short_run("deepfill-v2-tiny", sample32, tmp_path_factory.mktemp("runs") / "sketch", sketch=True)
