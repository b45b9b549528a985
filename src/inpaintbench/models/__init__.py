"""Models: the registry, the families and the Trainer. Importing this registers every family."""

from . import classical, cnn, deepfill, edgeconnect, glcic, mlp, pconv, unet  # noqa: F401  (registration)
from .base import MODELS, InpaintModel, OptimizerGroup, count_parameters, create_model, list_models, register_model
from .store import import_checkpoint, list_checkpoints, load_stored
from .train import TrainConfig, load_weights, train, train_model

__all__ = ["MODELS", "InpaintModel", "OptimizerGroup", "TrainConfig", "count_parameters", "create_model",
           "import_checkpoint", "list_checkpoints", "list_models", "load_stored", "load_weights", "register_model",
           "train", "train_model"]
