"""Fixtures shared by the model tests."""

import pytest
import torch


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch hub dir without any weights (a user's machine may have the real ones cached)."""
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub
