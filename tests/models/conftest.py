"""Fixtures shared by the model tests."""

import pytest
import torch


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch hub dir without any weights (a user's machine may have the real ones cached).

    Loss networks then need their real files again (the suite-wide random switch is off).
    """
    monkeypatch.delenv("INPAINTBENCH_RANDOM_LOSS_NETWORKS", raising=False)
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub
