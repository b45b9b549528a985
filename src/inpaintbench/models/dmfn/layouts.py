"""DMFN's official checkpoint: a bare state dict of ``InpaintingGenerator`` (116 keys), e.g. ``latest_G.pth``.

Zheng222/DMFN saves it with ``torch.save(netG.state_dict())`` (``base_model.save_network``); the key map below
turns it into our inference state dict.
"""

from __future__ import annotations

from typing import Any

import torch

from ..checkpoints import map_keys, register_layout, unwrap
from .model import DMFN

_OFFICIAL_RULES = (
    (r"encoder\.(\d+)\.conv\.(weight|bias)", r"generator.encoder.\1.0.\2"),
    (r"blocks\.(\d+)\.c1\.(weight|bias)", r"generator.blocks.\1.reduce.0.\2"),
    *((rf"blocks\.(\d+)\.d{i + 1}\.(weight|bias)", rf"generator.blocks.\1.branches.{i}.\2") for i in range(4)),
    (r"blocks\.(\d+)\.c2\.(weight|bias)", r"generator.blocks.\1.fuse.\2"),
    (r"decoder\.([03])\.conv\.(weight|bias)", r"generator.decoder.\1.0.\2"),
    (r"decoder\.([12])\.deconv\.(weight|bias)", r"generator.decoder.\1.deconv.\2"),
    (r"decoder\.([12])\.conv\.conv\.(weight|bias)", r"generator.decoder.\1.conv.0.\2"),
)


def _is_official(obj: Any) -> bool:
    keys = set(unwrap(obj))
    return "encoder.0.conv.weight" in keys and "blocks.0.c1.weight" in keys and "blocks.0.d4.weight" in keys


@register_layout("dmfn", "official", DMFN, _is_official,
                 source="Zheng222/DMFN: torch.save(netG.state_dict()) (base_model.save_network), e.g. latest_G.pth",
                 description="bare state dict of InpaintingGenerator (116 keys: encoder.N.conv, blocks.N.c1/d1-d4/c2, "
                             "decoder.N...)")
def convert_official(obj: Any) -> dict[str, torch.Tensor]:
    """Map the official generator's state dict (``encoder.0.conv.weight`` ...) to ours (``generator.`` ...).

    The official inference convention (``2 img - 1``, holes 0, mask channel, tanh) is :meth:`DMFN.forward`'s own,
    so the layout needs no config overrides.

    Args:
        obj: what :func:`~inpaintbench.models.checkpoints.read_checkpoint` returned (a bare state dict).

    Returns:
        Our inference state dict; keys no rule knows are kept as they are (reported as unexpected).

    """
    return map_keys(unwrap(obj), _OFFICIAL_RULES)
