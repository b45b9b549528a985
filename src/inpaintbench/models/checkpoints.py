"""Checkpoint files: safe reading, the layouts of official checkpoints (key maps) and strict loading.

Reading (:func:`read_checkpoint`) never unpickles arbitrary objects. A file is read with
``torch.load(weights_only=True)``, whose unpickler only rebuilds tensors, storages and plain containers. Official
checkpoints that carry metadata objects (a PyTorch Lightning checkpoint's OmegaConf hyper-parameters, as LaMa's
``best.ckpt``; Lightning's callback states, keyed by their class) get a few more names on the allowlist, each
mapped to an inert stand-in (:class:`Opaque`) that keeps the pickled state and runs none of the original
class's code: the real OmegaConf is neither needed nor imported. Anything else, such as a pickle whose
``__reduce__`` would call ``os.system``, is refused with one line naming the refused global. ``weights_only=False``
is never used. safetensors files are read with ``safetensors.torch.load_file``.

Layouts (:data:`LAYOUTS`): one entry per (model family, layout), e.g. ``pconv:naoto0804`` or ``glcic:mmagic``,
registered in the family's own module next to the model. An entry is a pure function from the object read from
the official file to this project's state dict (unwrap the container, rename keys, reshape or rescale where the
layout needs it, drop discriminators and optimisers), a detector that recognises the layout from the keys, and
the config overrides under which the imported weights run as their authors ran them (value range, hole fill,
colour order...). Every model also reads its own layout, ``inpaintbench`` (a state dict with our keys, a Trainer
checkpoint or a safetensors file from the store).

Strict loading (:func:`check_state_dict`): missing, unexpected and mis-shaped keys are all reported by name, in
one line; nothing is loaded or written unless every key fits.
"""

from __future__ import annotations

import collections
import pickle
import re
import typing
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._registry import InpaintbenchError, Registry, error_summary

__all__ = ["CHECKPOINT_SUFFIXES", "LAYOUTS", "CheckpointMismatch", "Layout", "OWN_LAYOUT", "Opaque",
           "check_state_dict", "convert", "detect_layouts", "layouts_for", "map_keys", "read_checkpoint",
           "register_layout", "strip_prefix", "unwrap"]

OWN_LAYOUT = "inpaintbench"


class CheckpointMismatch(InpaintbenchError):
    """A checkpoint's keys or shapes do not fit the model; the message names them."""


# --------------------------------------------------------------------------------------------------
# safe reading


class Opaque:
    """Inert stand-in for a metadata class of an official checkpoint (e.g. OmegaConf's ``DictConfig``).

    The unpickler creates it without arguments and hands it the pickled state, which it keeps in
    ``pickled_state``; no code of the original class runs. It is hashable, so it can stand for a class used as
    a dictionary key (Lightning keys its callback states by callback class).
    """

    def __setstate__(self, state: Any) -> None:
        self.__dict__["pickled_state"] = state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (inert stand-in)>"


# The names official files are known to need beyond tensors and plain containers, and why.
_METADATA_GLOBALS = (
    # OmegaConf containers and nodes: Lightning's `hyper_parameters` (LaMa's best.ckpt)
    "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode", "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.BytesNode", "omegaconf.nodes.PathNode", "omegaconf.nodes.EnumNode",
    # Lightning 1.x keys `callbacks` by the callback's class
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
)


def _stand_in(qualified_name: str) -> type:
    """A fresh :class:`Opaque` subclass named after the class it stands for."""
    return type(qualified_name.rsplit(".", 1)[1], (Opaque,), {"__module__": "inpaintbench.standin",
                                                             "stands_for": qualified_name})


# Plain builtins and typing.Any appear as globals in OmegaConf's pickled state; calling them builds plain values.
_ALLOWED_GLOBALS: list[Any] = [
    *[(_stand_in(name), name) for name in _METADATA_GLOBALS],
    (typing.Any, "typing.Any"), collections.OrderedDict, collections.defaultdict, dict, list, int, float, set,
    tuple,
]
_REFUSED = re.compile(r"GLOBAL ([\w.]+)")


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")  # what a release folder's files are read as


def read_checkpoint(path: str | Path) -> Any:
    """Read a checkpoint file without running code from it.

    Args:
        path: a ``.safetensors`` file or a file written by ``torch.save`` (zip or legacy format); or a folder, for
            official releases that ship one file per network (EdgeConnect's ``EdgeModel_gen.pth`` and
            ``InpaintingModel_gen.pth``).

    Returns:
        What the file holds: a state dict, or the official container (a dict with ``state_dict``, ``G``,
        ``generator``...), with tensors on the CPU and metadata objects as :class:`Opaque` stand-ins. For a
        folder, ``{file name: content}`` of each of its checkpoint files (:data:`CHECKPOINT_SUFFIXES`).

    Raises:
        InpaintbenchError: one line: the file is missing, truncated or corrupt, or it needs a global that is not
            on the allowlist (named in the message).

    """
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in CHECKPOINT_SUFFIXES)
        if not files:
            raise InpaintbenchError(f"folder {path} holds no checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")
        return {f.name: read_checkpoint(f) for f in files}
    if not path.is_file():
        raise InpaintbenchError(f"checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise InpaintbenchError(f"{path} is not a readable safetensors file (truncated or corrupt): "
                                    f"{error_summary(err)}") from None
    try:
        with torch.serialization.safe_globals(_ALLOWED_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _REFUSED.search(str(err))
        if refused:
            raise InpaintbenchError(f"refused to load {path}: it needs the global {refused.group(1)}, which is not "
                                    "on the allowlist of tensors, containers and known metadata classes (a "
                                    "pickle that could run code is never loaded)") from None
        raise InpaintbenchError(f"{path} is not a readable checkpoint (truncated or corrupt): "
                                f"{error_summary(err)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        raise InpaintbenchError(f"{path} is not a readable checkpoint (truncated or corrupt): "
                                f"{error_summary(err)}") from None


# --------------------------------------------------------------------------------------------------
# key-map helpers for the layouts


def unwrap(obj: Any, *keys: str) -> dict[str, torch.Tensor]:
    """The state dict inside an official container: ``obj[keys[0]]`` for the first key present, else ``obj``.

    Args:
        obj: what :func:`read_checkpoint` returned.
        *keys: container keys to try in order (``"state_dict"``, ``"G"``, ``"generator"``...).

    Returns:
        A plain dict of name -> tensor (non-tensor entries dropped).

    Raises:
        InpaintbenchError: when ``obj`` is not a mapping.

    """
    if not isinstance(obj, Mapping):
        raise InpaintbenchError(f"expected a dict of tensors, got a {type(obj).__name__}")
    for key in keys:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str, drop_others: bool = True
                 ) -> dict[str, torch.Tensor]:
    """Keys starting with ``prefix`` with the prefix removed; others dropped (or kept as they are).

    Args:
        state: a state dict.
        prefix: e.g. ``"generator."`` or ``"module."``.
        drop_others: drop the keys without the prefix (discriminators, loss networks).

    Returns:
        The new state dict.

    """
    out = {}
    for key, value in state.items():
        if key.startswith(prefix):
            out[key[len(prefix):]] = value
        elif not drop_others:
            out[key] = value
    return out


def map_keys(state: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]) -> dict[str, torch.Tensor]:
    r"""Rename keys by the first matching regular expression of ``rules``; a key no rule matches is kept as is.

    Unmatched keys are kept so that :func:`check_state_dict` reports them as unexpected, by name.

    Args:
        state: the official state dict.
        rules: ``(pattern, replacement)`` pairs for ``re.fullmatch`` / ``Match.expand`` (``\1`` groups).

    Returns:
        The renamed state dict.

    Raises:
        InpaintbenchError: when two official keys map to the same new key.

    """
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for pattern, replacement in compiled:
            match = pattern.fullmatch(key)
            if match:
                new = match.expand(replacement)
                break
        if new in out:
            raise InpaintbenchError(f"key map sends two keys to {new!r}")
        out[new] = value
    return out


# --------------------------------------------------------------------------------------------------
# layouts


@dataclass(frozen=True)
class Layout:
    """How one kind of official file maps onto a model family.

    Attributes:
        family: the family's registered base name (``pconv``); the layout applies to every model of its class.
        name: the layout's name (``naoto0804``, ``mmagic``...).
        model_cls: the family's model class.
        convert: pure function from what :func:`read_checkpoint` returned to our inference state dict.
        detect: whether an object read from a file is in this layout (from its keys and shapes).
        config: config overrides the weights need to run as their authors ran them (input conventions).
        source: where the official files come from.
        description: one line for ``inpaintbench weights layouts`` and the model card.

    """

    family: str
    name: str
    model_cls: type
    convert: Callable[[Any], dict[str, torch.Tensor]]
    detect: Callable[[Any], bool]
    config: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    description: str = ""

    @property
    def key(self) -> str:
        """The registry key, ``family:name``."""
        return f"{self.family}:{self.name}"


LAYOUTS: Registry[Layout] = Registry("checkpoint layout", listing="inpaintbench weights layouts")


def register_layout(family: str, name: str, model_cls: type, detect: Callable[[Any], bool],
                    config: Mapping[str, Any] | None = None, source: str = "", description: str = ""
                    ) -> Callable[[Callable[[Any], dict[str, torch.Tensor]]], Callable[[Any], dict[str, torch.Tensor]]]:
    """Decorator registering a key map (official object -> our state dict) as layout ``family:name``.

    Args:
        family: the family's base model name.
        name: the layout's name.
        model_cls: the family's model class (every registered model of this class can import the layout).
        detect: recognises the layout from the object read from the file.
        config: config overrides the imported weights need.
        source: where the official files come from.
        description: one line describing the layout.

    Returns:
        The decorator; it returns the key map unchanged.

    """
    def add(convert: Callable[[Any], dict[str, torch.Tensor]]) -> Callable[[Any], dict[str, torch.Tensor]]:
        layout = Layout(family, name, model_cls, convert, detect, dict(config or {}), source, description)
        LAYOUTS.register(layout.key, layout)
        return convert

    return add


def layouts_for(model_cls: type) -> list[Layout]:
    """The registered layouts of ``model_cls``'s family."""
    return [LAYOUTS.get(key) for key in LAYOUTS if LAYOUTS.get(key).model_cls is model_cls]


def detect_layouts(obj: Any) -> list[Layout]:
    """Every registered layout whose detector recognises ``obj`` (any family)."""
    found = []
    for key in LAYOUTS:
        layout = LAYOUTS.get(key)
        try:
            if layout.detect(obj):
                found.append(layout)
        except Exception:  # a detector that trips over a foreign structure simply does not recognise it
            continue
    return found


def own_state(obj: Any) -> dict[str, torch.Tensor] | None:
    """Our own layout: a safetensors/state dict with our keys, or a Trainer checkpoint; None when it is neither."""
    if not isinstance(obj, Mapping):
        return None
    if isinstance(obj.get("model"), Mapping) and "model_name" in obj:  # the Trainer's resumable checkpoint
        return unwrap(obj.get("ema") or obj["model"])
    if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return dict(obj)
    return None


def convert(model_cls: type, model_name: str, obj: Any, expected: Mapping[str, torch.Tensor],
            layout: str | None = None, source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], Layout | None]:
    """Convert what an official file holds into our state dict for ``model_name``, choosing or checking the layout.

    Args:
        model_cls: the model's class.
        model_name: its registered name (for messages).
        obj: what :func:`read_checkpoint` returned.
        expected: the model's inference state dict (the keys and shapes to produce).
        layout: force a layout by name (``naoto0804``, or ``inpaintbench`` for our own); None detects it.
        source: the file, for messages.

    Returns:
        The state dict and the layout used (None for our own layout).

    Raises:
        InpaintbenchError: one line: an unknown layout, a file of another model, or no recognisable layout.
        CheckpointMismatch: missing, unexpected or mis-shaped keys, by name.

    """
    family = layouts_for(model_cls)
    names = [OWN_LAYOUT, *(lay.name for lay in family)]
    if layout is not None and layout not in names:
        raise InpaintbenchError(f"{model_name} has no checkpoint layout {layout!r}; known: {', '.join(names)}")
    if layout == OWN_LAYOUT or layout is None:
        own = own_state(obj)
        if own is not None and (layout == OWN_LAYOUT or set(own) == set(expected)):
            check_state_dict(expected, own, source, model_name)
            return own, None
        if layout == OWN_LAYOUT:
            raise InpaintbenchError(f"{source} is not an inpaintbench state dict")
    if layout is not None:
        chosen = next(lay for lay in family if lay.name == layout)
    else:
        matches = [lay for lay in family if _detects(lay, obj)]
        if not matches:
            others = [lay for lay in detect_layouts(obj) if lay.model_cls is not model_cls]
            if others:
                raise InpaintbenchError(f"{source} is a {others[0].family} checkpoint ({others[0].name} layout), not "
                                        f"{model_name}: import it as {others[0].family}")
            raise InpaintbenchError(f"{source} matches no checkpoint layout of {model_name} (known: {', '.join(names)})"
                                    f"; its first keys are {_first_keys(obj)}; pass --layout to force one")
        chosen = matches[0]
    state = chosen.convert(obj)
    check_state_dict(expected, state, source, model_name)
    return state, chosen


def _detects(layout: Layout, obj: Any) -> bool:
    try:
        return bool(layout.detect(obj))
    except Exception:  # see detect_layouts
        return False


def _first_keys(obj: Any, n: int = 4) -> str:
    if not isinstance(obj, Mapping):
        return f"(a {type(obj).__name__}, not a dict)"
    keys = [str(k) for k in list(obj)[:n]]
    return ", ".join(keys) + (" ..." if len(obj) > n else "") if keys else "(none)"


def check_state_dict(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], source: str,
                     model_name: str) -> None:
    """Raise one line naming every missing, unexpected and mis-shaped key (the first few of each, and counts).

    Args:
        expected: the model's state dict (names and shapes).
        got: the converted checkpoint.
        source: the file, for the message.
        model_name: the model, for the message.

    Raises:
        CheckpointMismatch: when the keys or shapes differ.

    """
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if tuple(expected[k].shape) != tuple(got[k].shape))
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if shapes:
        shown = ", ".join(f"{k} is {_shape(got[k])} in the file, {_shape(expected[k])} in the model"
                          for k in shapes[:3])
        parts.append(f"{len(shapes)} of the wrong shape ({shown}{', ...' if len(shapes) > 3 else ''})")
    raise CheckpointMismatch(f"{source} does not fit {model_name}: " + "; ".join(parts))


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"
