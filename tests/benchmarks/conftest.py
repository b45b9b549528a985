from unittest import mock

import pytest
import torch

from tests.benchmarks.faults import CNN, MEAN_FILL, Runner, output_log, write_suite


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """Randomly initialised AlexNet and InceptionV3 (torch-fidelity) saved under their official file names.

    They are plain state dicts in the real format, so the real loading code runs; their checksums do not
    match the official ones, so they only load with verification off.
    """
    import torchvision
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), folder / "alexnet-owt-7be5be79.pth")
    # build torch-fidelity's extractor without fetching weights, and keep its random initialisation
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None):
        extractor = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(extractor.state_dict(), folder / "weights-inception-2015-12-05-6726825d.pth")
    return folder


@pytest.fixture(scope="session")
def runner():
    """One fault runner subprocess for every fault test (they share the uninterrupted reference run)."""
    r = Runner()
    yield r
    r.close()


@pytest.fixture(scope="session")
def reference(runner, tmp_path_factory, sample32):
    """An uninterrupted run of the two-model suite, in a child of the fault runner (one torch thread)."""
    folder = tmp_path_factory.mktemp("reference")
    write_suite(folder, sample32, MEAN_FILL + CNN.format(steps=12))
    answer = runner.run(folder, ["bench", "s.toml"])
    assert answer["rc"] == 0, output_log(folder)
    return folder
