"""Models: the registry, the families and the Trainer. Importing this registers every family."""

from . import classical, cnn, mlp  # noqa: F401  (registration)
from .base import MODELS, InpaintModel, count_parameters, create_model, list_models, register_model
from .train import TrainConfig, load_checkpoint, train, train_model

__all__ = ["MODELS", "InpaintModel", "TrainConfig", "count_parameters", "create_model", "list_models",
           "load_checkpoint", "register_model", "train", "train_model"]
