import os

import numpy as np
import pytest

os.environ.setdefault("TQDM_DISABLE", "1")  # keep test logs readable
# the test machines have no pretrained VGG/segmentation weights: loss networks get seeded random weights
# (tests of the missing-weights errors unset it with monkeypatch)
os.environ["INPAINTBENCH_RANDOM_LOSS_NETWORKS"] = "1"

SMALL_CROPS = {"train": 12, "val": 4, "test": 8}

MAX_TEST_PROCESSES = 4  # each holds torch and its own session fixtures: more would cost memory for little gain


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject.toml): one test process per core, at most MAX_TEST_PROCESSES."""
    return max(1, min(MAX_TEST_PROCESSES, os.cpu_count() or 1))


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # in one of those processes: its share of the cores, no more
    THREADS = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ["OMP_NUM_THREADS"] = THREADS  # the scripts and workers the tests start too
    import torch

    torch.set_num_threads(int(THREADS))


@pytest.fixture(scope="session", autouse=True)
def private_torch_home(tmp_path_factory):
    """$TORCH_HOME in the session's temporary folder: what torch and the metrics cache never lands in the user's."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("torch-home")
        patch.setenv("TORCH_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def sample32(tmp_path_factory):
    """A small sample dataset at 32x32 (real crops of scikit-image's photos), built once per session."""
    from inpaintbench.datasets.sample import build_sample

    out = tmp_path_factory.mktemp("data") / "sample-32"
    build_sample(out, size=32, seed=0, crops_per_photo=SMALL_CROPS)
    return out


@pytest.fixture
def astronaut():
    """scikit-image's astronaut photo as float64 H x W x 3 in [0, 1]."""
    import skimage.data

    return skimage.data.astronaut().astype(np.float64) / 255.0
