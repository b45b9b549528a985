"""Key maps of DeepFill's official files: mmagic's v1 and v2 zoo files and nipponjo's PyTorch port of v2.

Each is a pure function from the object read from the file to our inference state dict, registered with the
conventions its weights need (the layout's ``config``); see the package docstring.
"""

from __future__ import annotations

from typing import Any

import torch

from ..checkpoints import register_layout, strip_prefix, unwrap
from .v1 import DeepFillV1
from .v2 import DeepFillV2

__all__: list[str] = []


def _rename(state: dict[str, torch.Tensor], layers: list[tuple[str, str]], suffixes: dict[str, str]
            ) -> dict[str, torch.Tensor]:
    """Rename ``official_layer.suffix`` to ``generator.our_layer.our_suffix``; unknown keys are kept (unexpected)."""
    out = {}
    for key, value in state.items():
        new = key
        for official, ours in layers:
            if key.startswith(official + "."):
                suffix = key[len(official) + 1:]
                new = f"generator.{ours}.{suffixes.get(suffix, suffix)}"
                break
        out[new] = value
    return out


def _bgr_to_rgb(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make a BGR generator an RGB one: reverse the image inputs of the first layers and the 3 output channels."""
    out = dict(state)
    for stage in ("coarse.encoder.0", "refine.conv_encoder.0", "refine.attention_encoder.0"):
        for key in [k for k in out if k.startswith(f"generator.{stage}.") and k.endswith("weight")]:
            w = out[key].clone()
            w[:, :3] = w[:, :3].flip(1)
            out[key] = w
    for stage in ("coarse.decoder.6", "refine.decoder.6"):
        for key in [k for k in out if k.startswith(f"generator.{stage}.")]:
            # 3 outputs for a plain layer; 3 features then 3 gates for a gated one
            out[key] = torch.cat([part.flip(0) for part in out[key].split(3)])
    return out


def _mmagic_layers() -> list[tuple[str, str]]:
    """Mmagic's module names (``DeepFillEncoderDecoder``) against ours."""
    layers = []
    for i in range(6):
        layers += [(f"stage1.encoder.enc{i + 1}", f"coarse.encoder.{i}"),
                   (f"stage2.encoder_conv.enc{i + 1}", f"refine.conv_encoder.{i}"),
                   (f"stage2.encoder_attention.enc{i + 1}", f"refine.attention_encoder.{i}")]
    for i in range(4):
        layers += [(f"stage1.dilation_neck.dilation_convs.{i}", f"coarse.dilated.{i}"),
                   (f"stage2.dilation_neck.dilation_convs.{i}", f"refine.conv_dilated.{i}")]
    for i in range(7):
        layers += [(f"stage1.decoder.dec{i + 1}", f"coarse.decoder.{i}"),
                   (f"stage2.decoder.dec{i + 1}", f"refine.decoder.{i}")]
    layers += [(f"stage2.contextual_attention_neck.conv{i + 1}", f"refine.attention_convs.{i}") for i in range(2)]
    return layers


_MMAGIC_FUSE = "stage2.contextual_attention_neck.contextual_attention.fuse_kernel"  # a constant identity kernel
# the conventions of mmagic's DeepFill configs (base_deepfillv1.py / base_deepfillv2.py)
_MMAGIC_COMMON = {"padding": "reflect", "masked_softmax": True, "normalize_overlap": True,
                  "attention_encoder_act": "elu"}
_MMAGIC_V2 = {**_MMAGIC_COMMON, "refine_mask_input": True, "gated_output": True, "refine_decoder_width": 32}
_ZOO = "https://download.openmmlab.com/mmediting/inpainting/"


def _mmagic_state(obj: Any) -> dict[str, torch.Tensor]:
    state = strip_prefix(unwrap(obj, "state_dict"), "generator.")
    state.pop(_MMAGIC_FUSE, None)
    return state


def _is_mmagic(obj: Any, gated: bool) -> bool:
    state = unwrap(obj, "state_dict")
    return f"generator.stage1.encoder.enc1.conv.{'conv.' if gated else ''}weight" in state


@register_layout("deepfill-v1", "mmagic", DeepFillV1, lambda obj: _is_mmagic(obj, gated=False),
                 config=_MMAGIC_COMMON, source=_ZOO + "deepfillv1/deepfillv1_256x256_8x2_places_20200619-c00a0e21.pth "
                 "(and ..._4x4_celeba_20200619-dd51a855.pth)",
                 description="mmagic DeepFill v1 ({'meta', 'state_dict'}, generator.stage1/stage2.*, BGR)")
def _convert_mmagic_v1(obj: Any) -> dict[str, torch.Tensor]:
    return _bgr_to_rgb(_rename(_mmagic_state(obj), _mmagic_layers(), {"conv.weight": "0.weight",
                                                                      "conv.bias": "0.bias"}))


@register_layout("deepfill-v2", "mmagic", DeepFillV2, lambda obj: _is_mmagic(obj, gated=True),
                 config=_MMAGIC_V2, source=_ZOO + "deepfillv2/deepfillv2_256x256_8x2_places_20200619-10d15793.pth "
                 "(and ..._8x2_celeba_20200619-c96e5f12.pth)",
                 description="mmagic DeepFill v2 ({'meta', 'state_dict'}, gated convs generator.stage1/stage2.*, BGR)")
def _convert_mmagic_v2(obj: Any) -> dict[str, torch.Tensor]:
    return _bgr_to_rgb(_rename(_mmagic_state(obj), _mmagic_layers(), {"conv.conv.weight": "conv.weight",
                                                                      "conv.conv.bias": "conv.bias"}))


def _port_layers() -> list[tuple[str, str]]:
    """Nipponjo's ``model/networks.py`` module names (``Generator``) against ours."""
    def encoder(stage: str, first: str, down: str, last: str, ours: str) -> list[tuple[str, str]]:
        return [(f"{stage}.{first}", f"{ours}.0"), (f"{stage}.{down}1.conv1_downsample", f"{ours}.1"),
                (f"{stage}.{down}1.conv2", f"{ours}.2"), (f"{stage}.{down}2.conv1_downsample", f"{ours}.3"),
                (f"{stage}.{down}2.conv2", f"{ours}.4"), (f"{stage}.{last}", f"{ours}.5")]

    def decoder(stage: str, first: str, ours: str) -> list[tuple[str, str]]:
        return [(f"{stage}.{first}6", f"{ours}.0"), (f"{stage}.{first}7", f"{ours}.1"),
                (f"{stage}.up_block1.conv1_upsample.conv", f"{ours}.2"), (f"{stage}.up_block1.conv2", f"{ours}.3"),
                (f"{stage}.up_block2.conv1_upsample.conv", f"{ours}.4"), (f"{stage}.up_block2.conv2", f"{ours}.5"),
                (f"{stage}.conv_to_rgb", f"{ours}.6")]

    layers = encoder("stage1", "conv1", "down_block", "conv_bn1", "coarse.encoder")
    layers += [(f"stage1.conv_bn{i + 2}", f"coarse.dilated.{i}") for i in range(4)]
    layers += decoder("stage1", "conv_bn", "coarse.decoder")
    layers += encoder("stage2", "conv_conv1", "conv_down_block", "conv_conv_bn1", "refine.conv_encoder")
    layers += [(f"stage2.conv_conv_bn{i + 2}", f"refine.conv_dilated.{i}") for i in range(4)]
    layers += encoder("stage2", "ca_conv1", "ca_down_block", "ca_conv_bn1", "refine.attention_encoder")
    layers += [("stage2.ca_conv_bn4", "refine.attention_convs.0"), ("stage2.ca_conv_bn5", "refine.attention_convs.1")]
    layers += decoder("stage2", "conv_bn", "refine.decoder")
    return layers


def _is_port(obj: Any) -> bool:
    return isinstance(obj, dict) and "stage1.conv1.conv.weight" in unwrap(obj, "G")


@register_layout("deepfill-v2", "nipponjo", DeepFillV2, _is_port, config={},
                 source="nipponjo/deepfillv2-pytorch: states_pt_places2.pth, states_pt_celebahq.pth "
                        "(model/networks.py)",
                 description="nipponjo's PyTorch port of DeepFill v2 ({'G': state_dict}, cnum_in=5, RGB)")
def _convert_port(obj: Any) -> dict[str, torch.Tensor]:
    state = unwrap(obj, "G")
    state.pop("stage2.contextual_attention.fuse_weight", None)  # a constant identity kernel
    renamed = _rename(state, _port_layers(), {})
    # conv_to_rgb is an ungated GConv (``.conv``); ours is a plain conv-act unit (``.0``)
    return {k.replace("decoder.6.conv.", "decoder.6.0."): v for k, v in renamed.items()}
