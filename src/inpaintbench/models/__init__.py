"""Models: the registry, the families and the Trainer. Importing this registers every family."""

from . import aotgan, classical, cnn, glcic, lama, mlp, pconv, unet  # noqa: F401  (registration)
from .base import MODELS, InpaintModel, OptimizerGroup, count_parameters, create_model, list_models, register_model
from .train import TrainConfig, load_checkpoint, load_weights, train, train_model

__all__ = ["MODELS", "InpaintModel", "OptimizerGroup", "TrainConfig", "count_parameters", "create_model",
           "list_models", "load_checkpoint", "load_weights", "register_model", "train", "train_model"]
