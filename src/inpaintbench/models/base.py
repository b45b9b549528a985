"""The model contract: InpaintModel, the MODELS registry and create_model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._registry import InpaintbenchError, Registry


class InpaintModel(nn.Module):
    """Base class of every method: ``forward(image, mask) -> pred``.

    ``image`` is N x 3 x H x W in [0, 1] with holes already filled with 0, ``mask`` is N x 1 x H x W with
    1 = hole; ``pred`` is a full image in [0, 1]. The harness composites ``mask * pred + (1 - mask) * image``.
    Trainable models also define ``loss`` for the Trainer.
    """

    trainable: bool = False

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training losses; the Trainer minimises their sum. ``image`` is the ground truth."""
        raise InpaintbenchError(f"{type(self).__name__} is not trainable")


def hole_valid_l1(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor, hole_weight: float,
                  valid_weight: float) -> dict[str, torch.Tensor]:
    """L1 split into the hole and the known pixels, each averaged over all pixels, then weighted."""
    diff = (pred - image).abs()
    return {"l1_hole": hole_weight * (diff * mask).mean(), "l1_valid": valid_weight * (diff * (1 - mask)).mean()}


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its class, default config and provenance."""

    name: str
    model_cls: type[InpaintModel]
    config: Any
    paper: str = ""
    description: str = ""


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, model_cls: type[InpaintModel], config: Any, paper: str = "",
                   description: str = "") -> None:
    """Register ``model_cls`` with its default ``config`` (a frozen dataclass) under ``name``."""
    MODELS.register(name, ModelEntry(name, model_cls, config, paper, description))


def resolve_config(name: str, **overrides: Any) -> Any:
    """The default config of model ``name`` with ``overrides``; unknown keys fail at once."""
    entry = MODELS.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise InpaintbenchError(f"model {name!r} has no option {', '.join(unknown)}; options: {known}")
    # TOML and JSON give lists where the frozen configs hold tuples
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(entry.config, **overrides)


def create_model(name: str, **overrides: Any) -> InpaintModel:
    """Build the registered model ``name`` with config ``overrides``.

    Example:
        >>> model = create_model("cnn", size=64)
        >>> model.trainable
        True

    """
    return MODELS.get(name).model_cls(resolve_config(name, **overrides))


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the fnmatch ``pattern``."""
    return MODELS.names(pattern)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
