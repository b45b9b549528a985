"""Small building blocks shared by every family: activations, normalisations and conv-norm-activation."""

from __future__ import annotations

import torch  # noqa: F401  (the docstring examples use it)
from torch import nn

from ..._registry import InpaintbenchError

__all__ = ["conv_norm_act", "deconv_norm_act", "make_activation", "make_norm"]


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "gelu": lambda: nn.GELU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "none": lambda: nn.Identity(),
}

_NORMS = {
    "batch": lambda c: nn.BatchNorm2d(c),
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
    "none": lambda c: nn.Identity(),
}


def make_activation(name: str) -> nn.Module:
    """An activation by name.

    Args:
        name: one of ``relu``, ``lrelu`` (LeakyReLU slope 0.2), ``elu``, ``gelu``, ``tanh``, ``sigmoid``, ``none``.

    Returns:
        The module (``nn.Identity`` for ``none``).

    Raises:
        InpaintbenchError: for an unknown name.

    """
    if name not in _ACTIVATIONS:
        raise InpaintbenchError(f"unknown activation {name!r}; known: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def make_norm(name: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name.

    Args:
        name: ``batch``, ``instance`` (no affine, no running stats, as EdgeConnect) or ``none``.
        channels: number of channels.

    Returns:
        The module (``nn.Identity`` for ``none``).

    Raises:
        InpaintbenchError: for an unknown name.

    """
    if name not in _NORMS:
        raise InpaintbenchError(f"unknown norm {name!r}; known: {', '.join(_NORMS)}")
    return _NORMS[name](channels)


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                  padding: int | None = None, norm: str = "batch", act: str = "relu", bias: bool | None = None,
                  padding_mode: str = "zeros", spectral_norm: bool = False) -> nn.Sequential:
    """Conv2d followed by a normalisation and an activation, the unit of GLCIC, EdgeConnect, AOT-GAN and friends.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: stride.
        dilation: dilation.
        padding: padding; ``None`` gives ``dilation * (kernel_size - 1) // 2`` ("same" size at stride 1
            for odd kernels).
        norm: a name for :func:`make_norm`.
        act: a name for :func:`make_activation`.
        bias: conv bias; ``None`` means "unless followed by batch norm".
        padding_mode: ``zeros``, ``reflect``, ``replicate`` or ``circular`` (as ``nn.Conv2d``).
        spectral_norm: wrap the conv in ``torch.nn.utils.spectral_norm`` (EdgeConnect, SN-PatchGAN).

    Returns:
        ``nn.Sequential(conv, norm, act)``; ``[0]`` is the convolution.

    Example:
        >>> block = conv_norm_act(4, 32, 3, dilation=2)
        >>> tuple(block(torch.zeros(1, 4, 16, 16)).shape)
        (1, 32, 16, 16)

    """
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    if bias is None:
        bias = norm != "batch"
    conv: nn.Module = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                dilation=dilation, bias=bias, padding_mode=padding_mode)
    if spectral_norm:
        conv = nn.utils.spectral_norm(conv)
    return nn.Sequential(conv, make_norm(norm, out_channels), make_activation(act))


def deconv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2, padding: int = 1,
                    norm: str = "batch", act: str = "relu", bias: bool | None = None,
                    spectral_norm: bool = False) -> nn.Sequential:
    """Transposed convolution followed by a normalisation and an activation (the up-sampling unit of decoders).

    The defaults (4x4, stride 2, padding 1) double the side exactly, as in GLCIC, EdgeConnect and pix2pix.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: stride (the up-sampling factor).
        padding: padding of the transposed convolution.
        norm: a name for :func:`make_norm`.
        act: a name for :func:`make_activation`.
        bias: bias; ``None`` means "unless followed by batch norm".
        spectral_norm: wrap it in ``torch.nn.utils.spectral_norm`` (which normalises along dim 1 for a
            transposed convolution, as EdgeConnect's edge generator).

    Returns:
        ``nn.Sequential(deconv, norm, act)``; ``[0]`` is the transposed convolution.

    Example:
        >>> block = deconv_norm_act(8, 4, norm="instance")
        >>> tuple(block(torch.zeros(1, 8, 16, 16)).shape)
        (1, 4, 32, 32)

    """
    if bias is None:
        bias = norm != "batch"
    deconv: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                           bias=bias)
    if spectral_norm:
        deconv = nn.utils.spectral_norm(deconv)
    return nn.Sequential(deconv, make_norm(norm, out_channels), make_activation(act))
