"""EdgeConnect's official checkpoints: ``EdgeModel_gen.pth`` and ``InpaintingModel_gen.pth`` of a release folder.

Each file is ``{'iteration': n, 'generator': state_dict}`` (knazeri/edge-connect ``src/models.py``); the key
map below turns both into our inference state dict.
"""

from __future__ import annotations

from typing import Any

import torch

from ..._registry import InpaintbenchError
from ..checkpoints import map_keys, register_layout, strip_prefix, unwrap
from .model import EdgeConnect

EDGE_FILE = "EdgeModel_gen.pth"
INPAINT_FILE = "InpaintingModel_gen.pth"

# networks.py's nn.Sequential indices -> ours (the ReflectionPad2d layers, encoder.0, conv_block.0 and .4 and
# decoder.6, are our convs' reflect padding; InstanceNorm without affine and ReLU hold no weights)
_GENERATOR_RULES = (
    (r"encoder\.1\.(\w+)", r"encoder.0.0.\1"),
    (r"encoder\.4\.(\w+)", r"encoder.1.0.\1"),
    (r"encoder\.7\.(\w+)", r"encoder.2.0.\1"),
    (r"middle\.(\d+)\.conv_block\.1\.(\w+)", r"middle.\1.body.0.0.\2"),
    (r"middle\.(\d+)\.conv_block\.5\.(\w+)", r"middle.\1.body.1.0.\2"),
    (r"decoder\.0\.(\w+)", r"decoder.0.0.\1"),
    (r"decoder\.3\.(\w+)", r"decoder.1.0.\1"),
    (r"decoder\.7\.(\w+)", r"decoder.2.\1"),
)


def _generator_state(obj: Any) -> dict[str, torch.Tensor]:
    """The generator's state dict of one official file (``module.`` of a DataParallel run removed)."""
    state = unwrap(obj, "generator")
    if state and all(k.startswith("module.") for k in state):
        state = strip_prefix(state, "module.")
    return state


def _input_channels(obj: Any) -> int:
    """3 for an edge generator file, 4 for an inpainting generator file, 0 for anything else."""
    if not isinstance(obj, dict) or not isinstance(obj.get("generator"), dict):
        return 0
    state = _generator_state(obj)
    first = state.get("encoder.1.weight_orig", state.get("encoder.1.weight"))
    return int(first.shape[1]) if isinstance(first, torch.Tensor) and first.dim() == 4 else 0


def convert_generator(obj: Any, module: str) -> dict[str, torch.Tensor]:
    """Key map of one official generator file, ``EdgeModel_gen.pth`` or ``InpaintingModel_gen.pth``.

    The edge generator's file has 70 keys (spectral norm's ``weight_orig``, ``weight_u``, ``weight_v``), the
    inpainting generator's 44.

    Args:
        obj: the file's content, ``{'iteration': n, 'generator': state_dict}``.
        module: our submodule it fills, ``edge_generator`` or ``generator``.

    Returns:
        Our ``<module>.*`` keys.

    """
    state = map_keys(_generator_state(obj), _GENERATOR_RULES)
    return {f"{module}.{k}": v for k, v in state.items()}


def _is_release(obj: Any) -> bool:
    """A release folder read by ``read_checkpoint``: both generator files, by their official names."""
    return isinstance(obj, dict) and _input_channels(obj.get(EDGE_FILE)) == 3 and \
        _input_channels(obj.get(INPAINT_FILE)) == 4


def _is_one_generator(obj: Any) -> bool:
    return isinstance(obj, dict) and "generator" in obj and _input_channels(obj) in (3, 4)


@register_layout("edgeconnect", "official", EdgeConnect, detect=lambda obj: _is_release(obj) or _is_one_generator(obj),
                 config={"merge_edges": False},
                 source="knazeri/edge-connect release folders (checkpoints/<dataset>/EdgeModel_gen.pth and "
                        "InpaintingModel_gen.pth)",
                 description="the official release folder: EdgeModel_gen.pth (edge G, spectral norm) + "
                             "InpaintingModel_gen.pth (image G), each {'iteration', 'generator'}")
def convert_official(obj: Any) -> dict[str, torch.Tensor]:
    """Both official generator files (a release folder) -> our inference state dict.

    Args:
        obj: ``{"EdgeModel_gen.pth": ..., "InpaintingModel_gen.pth": ...}`` as ``read_checkpoint`` reads a folder.

    Returns:
        Our ``edge_generator.*`` and ``generator.*`` keys.

    Raises:
        InpaintbenchError: for one generator file alone (the model needs both).

    """
    if not _is_release(obj):
        which = EDGE_FILE if _input_channels(obj) == 3 else INPAINT_FILE
        raise InpaintbenchError(f"this is EdgeConnect's {which} alone; edgeconnect needs both generators: import the "
                                f"release folder that holds {EDGE_FILE} and {INPAINT_FILE}")
    return {**convert_generator(obj[EDGE_FILE], "edge_generator"), **convert_generator(obj[INPAINT_FILE], "generator")}
