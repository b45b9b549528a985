"""The model contract: InpaintModel, the MODELS registry and create_model."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._registry import InpaintbenchError, Registry


@dataclass(frozen=True)
class OptimizerGroup:
    """One optimiser of a model: which parameters, how they learn and how often they step.

    Attributes:
        name: ``generator``, ``discriminator``, ... (the EMA, when enabled, follows ``generator``).
        modules: attribute names of the submodules whose parameters this group trains; empty = all parameters.
        optimizer: ``adam``, ``adamw`` or ``adadelta``.
        lr: the group's own learning rate (the paper's); None = 2e-4. A run's ``lr`` replaces the generator's and
            scales the others by the same factor.
        betas: Adam betas; None takes the TrainConfig's.
        weight_decay: weight decay.
        every: the group steps on steps ``s`` with ``s % every == 0`` (a generator with ``every=5`` gets one update
            per five discriminator updates: WGAN-GP's n_critic = 5).
        lr_milestones: steps at which the learning rate is multiplied by ``lr_gamma`` (e.g. PConv's fine-tuning).
        lr_gamma: the factor applied at each milestone.
        clip_norm: gradient-norm clipping of this group (0 = none).

    """

    name: str
    modules: tuple[str, ...] = ()
    optimizer: str = "adam"
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float = 0.0
    every: int = 1
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    clip_norm: float = 0.0


class InpaintModel(nn.Module):
    """Base class of every method: ``forward(image, mask) -> pred``.

    ``image`` is N x 3 x H x W in [0, 1] with holes already filled with 0, ``mask`` is N x 1 x H x W with
    1 = hole; ``pred`` is a full image in [0, 1]. The harness composites ``mask * pred + (1 - mask) * image``.

    Guided models (``guidance`` is ``"edges"`` for EdgeConnect, ``"sketch"`` for DeepFill v2 with its sketch
    channel) take ``forward(image, mask, guide=None)``: ``guide`` is N x 1 x H x W in [0, 1], 1 on the user's
    strokes (edges or sketch lines); without it the model runs unguided. The harness never passes a guide.

    Trainable models give the Trainer: ``optimizer_groups()`` (default: one ``generator`` group over every
    parameter), ``active_groups(step)`` (the phase schedule; default: every group), and
    ``training_losses(group, image, mask, step, cache)``, the losses one update of ``group`` minimises (default:
    ``loss(forward(...), image, mask)``). Single-network models only define ``loss``.
    """

    trainable: bool = False
    # The submodules that inference runs, by attribute name; () = the whole model. Their weights are what the
    # checkpoint store keeps (a GAN's discriminators are training-only) and what the parameter count reports.
    inference_modules: tuple[str, ...] = ()
    # What the optional ``guide`` input of forward means: "" (none), "edges" or "sketch".
    guidance: str = ""
    # The submodules the published parameter count covers, when not all of inference_modules (EdgeConnect's
    # 10.77M is its image generator alone; its edge generator runs at inference too). () = inference_modules.
    parameter_modules: tuple[str, ...] = ()
    # Config fields that change what inference does but never the trained weights (EdgeConnect's ``edges``
    # oracle switch): a suite trains once for rows that differ only in them.
    inference_options: tuple[str, ...] = ()
    # Input sides must be multiples of this (single-image inference pads to it and crops back).
    size_multiple: int = 1

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict of :attr:`inference_modules` (full-model keys), what a stored checkpoint holds."""
        state = self.state_dict()
        if not self.inference_modules:
            return state
        prefixes = tuple(f"{name}." for name in self.inference_modules)
        return {k: v for k, v in state.items() if k.startswith(prefixes)}

    def load_inference_state_dict(self, state: dict[str, torch.Tensor], source: str = "weights",
                                  model_name: str = "") -> None:
        """Load inference weights strictly: every key present, none unexpected, every shape right.

        Args:
            state: a state dict with the keys of :meth:`inference_state_dict`.
            source: where it came from (a file), for the message.
            model_name: the registered name, for the message.

        Raises:
            CheckpointMismatch: (one line) naming the missing, unexpected and mis-shaped keys.

        """
        from .checkpoints import check_state_dict

        check_state_dict(self.inference_state_dict(), state, source, model_name or type(self).__name__)
        self.load_state_dict(state, strict=not self.inference_modules)

    def fixed_size(self) -> int | None:
        """The one input side the network accepts (fully connected layers), or None when any side works."""
        return None

    def oracle_guide(self, truth: torch.Tensor) -> torch.Tensor | None:
        """The guide an oracle ablation passes to forward, computed from the ground truth; None for other models.

        The harness calls it with the uncorrupted images and passes a non-None result as ``guide`` (EdgeConnect
        with ``edges="oracle"`` returns the true edge map). No model reads the truth otherwise.
        """
        return None

    def sample_inputs(self) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]] | None:
        """A function the Trainer's DataLoader workers run on every training sample, or None (the default).

        It takes one sample's image (3 x H x W in [0, 1]) and mask (1 x H x W) on the CPU and returns tensors
        that join the batch (collated, moved to the device) and reach :meth:`training_losses` as entries of its
        ``cache``, under the same names. For host-side preprocessing that must not stall a GPU step, as
        EdgeConnect's Canny edges (the official code computes them in its dataset). It must be picklable (a
        module-level function or a ``functools.partial`` of one), not a bound method of the model.
        """
        return None

    def prepare_training(self, image_size: int) -> None:
        """Check, before a run folder is created, that this model can train on images of side ``image_size``.

        Families override it to check what would otherwise fail at the first step: a fixed training size
        (discriminators with fully connected layers), the loss networks' pretrained weights.

        Raises:
            InpaintbenchError: a one-line message with the exact option or command that fixes it.

        """

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training losses of a single-network model; the Trainer minimises their sum. ``image`` is the truth."""
        raise InpaintbenchError(f"{type(self).__name__} is not trainable")

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """The optimisers, in the order they update within a step (discriminators before the generator)."""
        return (OptimizerGroup("generator"),)

    def active_groups(self, step: int) -> tuple[str, ...]:
        """Names of the groups trained at ``step`` (0-based); phase schedules override this."""
        return tuple(group.name for group in self.optimizer_groups())

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses (already weighted) that one update of ``group`` minimises at ``step``; the Trainer sums them.

        ``image`` is the ground truth (N x 3 x H x W in [0, 1]), ``mask`` 1 = hole. ``cache`` is shared by the
        groups of one step on one batch: a GAN computes the generator's output once, stores it, and its
        discriminator update uses it detached. The Trainer only accumulates each group's gradients into that
        group's parameters, so a generator loss may run the discriminator freely.
        """
        if "pred" not in cache:
            cache["pred"] = self(image * (1 - mask), mask)
        return self.loss(cache["pred"].float(), image, mask)


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
    reference_params: str = ""  # the paper's or a reference implementation's parameter count, with its source
    reference_count: int = 0  # the same count as a number (inference parameters), 0 when there is none


MODELS: Registry[ModelEntry] = Registry("model", listing="inpaintbench models list")


def register_model(name: str, model_cls: type[InpaintModel], config: Any, paper: str = "",
                   description: str = "", reference_params: str = "", reference_count: int = 0) -> None:
    """Register ``model_cls`` with its default ``config`` (a frozen dataclass) under ``name``.

    ``reference_params`` is the parameter count published for the paper's configuration (or computed from a
    reference implementation), with its source, shown by ``inpaintbench models list`` next to the count of this
    code; ``reference_count`` is the same figure as a number, which a test holds the inference parameters to
    (within 1%).
    """
    MODELS.register(name, ModelEntry(name, model_cls, config, paper, description, reference_params,
                                     reference_count))


def resolve_config(name: str, **overrides: Any) -> Any:
    """The default config of model ``name`` with ``overrides``; unknown keys fail at once."""
    entry = MODELS.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        from .._registry import suggestion

        hint = suggestion(unknown[0], sorted(fields)) if fields else "; it has no options"
        raise InpaintbenchError(f"model {name!r} has no option {', '.join(unknown)}{hint}")
    # TOML and JSON give lists where the frozen configs hold tuples
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    try:
        hints = typing.get_type_hints(type(entry.config))
    except NameError:  # an annotation only importable for type checkers: nothing to check against
        hints = {}
    for key, value in overrides.items():
        if key in hints and not _fits(hints[key], value):
            raise InpaintbenchError(f"model {name!r} option {key} must be {_type_name(hints[key])}, got {value!r}")
    return dataclasses.replace(entry.config, **overrides)


def _fits(annotation: Any, value: Any) -> bool:
    """Whether ``value`` is of the config field type ``annotation`` (an int is a float; a bool is no number)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(arg, value) for arg in args)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation in (int, float):
        return isinstance(value, int if annotation is int else (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(args[0], v) for v in value)
        return not args or (len(args) == len(value) and all(_fits(a, v) for a, v in zip(args, value, strict=True)))
    return True  # other types (modules, tensors, mappings) are the code's own business


def _type_name(annotation: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text", type(None): "none"}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        return "a list"
    return names.get(annotation, str(annotation))


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


def count_generator_parameters(model: InpaintModel) -> int:
    """Parameters the published count covers: :attr:`InpaintModel.parameter_modules`, else the inference modules.

    Without either, the ``generator`` group's modules (or the whole model).
    """
    modules = model.parameter_modules or model.inference_modules
    if modules:
        return sum(count_parameters(getattr(model, name)) for name in modules)
    groups = {g.name: g for g in model.optimizer_groups()} if model.trainable else {}
    modules = groups["generator"].modules if "generator" in groups else ()
    if not modules:
        return count_parameters(model)
    return sum(count_parameters(getattr(model, name)) for name in modules)


def parameter_breakdown(model: InpaintModel) -> str:
    """The inference parameters as ``models list`` shows them.

    One figure, or one per module when the published count covers only some of the inference modules
    (``10,774,595 generator + 10,761,089 edge_generator``).
    """
    counted = model.parameter_modules or model.inference_modules
    if not model.parameter_modules or set(counted) == set(model.inference_modules):
        return f"{count_generator_parameters(model):,}"
    others = [name for name in model.inference_modules if name not in counted]
    return " + ".join(f"{count_parameters(getattr(model, name)):,} {name}" for name in (*counted, *others))
