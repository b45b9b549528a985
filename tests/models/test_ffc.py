"""The FFC layer (models/layers/ffc.py) against direct computations, and its precision under autocast."""

import pytest
import torch
import torch.nn.functional as F

from inpaintbench.models.layers.ffc import FFC, FourierUnit, SpectralTransform, split_channels


def _randomise_batchnorm(module, seed=0):
    """Random affine parameters and running statistics, so eval-mode BatchNorm is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.1
            m.running_mean = torch.randn(c, generator=g) * 0.1
            m.running_var = torch.rand(c, generator=g) + 0.5
    return module.eval()


def _bn(x, bn):
    shape = (1, -1, 1, 1)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def _conv1x1(x, weight):
    return torch.einsum("oi,nihw->nohw", weight[:, :, 0, 0], x)


@pytest.mark.parametrize("size", [(7, 9), (8, 8), (5, 12)])
def test_spectral_transform_equals_a_direct_fft_computation(size):
    """Global branch = conv2(y + irfft2(relu(bn(W [Re; Im] rfft2(y))))) with y = relu(bn(conv1(x))), written out.

    The weight W acts on the official interleaved layout (real and imaginary part of channel 0, then of channel 1,
    ...): its even rows/columns are real parts, odd ones imaginary. Odd sizes check the inverse FFT's output size.
    """
    torch.manual_seed(0)
    st = _randomise_batchnorm(SpectralTransform(6, 8))
    x = torch.randn(2, 6, *size)
    with torch.no_grad():
        ours = st(x)
        y = torch.relu(_bn(_conv1x1(x, st.reduce[0].weight), st.reduce[1]))
        full = torch.fft.fft2(y, norm="ortho")  # the full 2-D DFT; the unit keeps the non-negative x frequencies
        half = full[..., : size[1] // 2 + 1]
        w = st.fourier.conv.weight[:, :, 0, 0]
        re = torch.einsum("oi,nihw->nohw", w[0::2, 0::2], half.real) + torch.einsum("oi,nihw->nohw", w[0::2, 1::2],
                                                                                      half.imag)
        im = torch.einsum("oi,nihw->nohw", w[1::2, 0::2], half.real) + torch.einsum("oi,nihw->nohw", w[1::2, 1::2],
                                                                                      half.imag)
        bn = st.fourier.norm
        stacked = torch.stack([re, im], dim=2).flatten(1, 2)  # back to the interleaved layout for BatchNorm
        z = torch.relu(_bn(stacked, bn)).unflatten(1, (-1, 2))
        fu = torch.fft.irfft2(torch.complex(z[:, :, 0], z[:, :, 1]), s=size, norm="ortho")
        direct = _conv1x1(y + fu, st.expand.weight)
    assert ours.shape == (2, 8, *size)
    torch.testing.assert_close(ours, direct, atol=1e-5, rtol=1e-5)


def test_fourier_unit_mixes_the_whole_image():
    """One output pixel depends on every input pixel (the image-wide receptive field LaMa is built on)."""
    torch.manual_seed(0)
    fu = FourierUnit(2, 2).eval()
    x = torch.randn(1, 2, 16, 16, requires_grad=True)
    fu(x)[0, :, 0, 0].sum().backward()
    assert (x.grad.abs().sum(1)[0] > 0).float().mean() > 0.95


def test_ffc_branches_are_the_four_convolutions_of_the_channel_groups():
    torch.manual_seed(0)
    ffc = _randomise_batchnorm(FFC(16, 16, 3, 0.75, 0.75, padding=1))
    assert split_channels(16, 0.75) == (4, 12)
    x_l, x_g = torch.randn(2, 4, 8, 8), torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        out_l, out_g = ffc((x_l, x_g))

        def conv(x, m):
            return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), m.weight)

        torch.testing.assert_close(out_l, conv(x_l, ffc.local_to_local) + conv(x_g, ffc.global_to_local))
        torch.testing.assert_close(out_g, conv(x_l, ffc.local_to_global) + ffc.global_to_global(x_g))


def test_ffc_without_global_input_has_no_global_branches():
    ffc = FFC(8, 16, 3, 0.0, 0.75, stride=2, padding=1)
    assert ffc.global_to_local is None and ffc.global_to_global is None
    out_l, out_g = ffc((torch.randn(1, 8, 8, 8), None))
    assert out_l.shape == (1, 4, 4, 4) and out_g.shape == (1, 12, 4, 4)
    plain = FFC(8, 8, 3, 0.0, 0.0, padding=1)
    assert plain.local_to_global is None and plain((torch.randn(1, 8, 4, 4), None))[1] is None


def test_the_fourier_unit_runs_in_float32_under_bf16_autocast(monkeypatch):
    """Under CPU bf16 autocast the FFTs see float32 input with autocast off, and the output stays close to fp32.

    A spy stands for cuFFT's refusal of half-precision sizes that are not powers of two: it raises on any FFT
    input that is not float32. Plain bf16 input (no autocast) works too, where torch.fft itself refuses it.
    """
    from inpaintbench.models.lama import LaMaGenerator

    seen = []
    real_rfftn, real_irfftn = torch.fft.rfftn, torch.fft.irfftn

    def spy(fn):
        def wrapped(x, *args, **kwargs):
            seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
            if x.dtype not in (torch.float32, torch.complex64):
                raise RuntimeError(f"cuFFT-style failure: FFT of {x.dtype}")
            return fn(x, *args, **kwargs)
        return wrapped

    torch.manual_seed(0)
    net = _randomise_batchnorm(LaMaGenerator(blocks=2, width=8))
    x = torch.rand(1, 4, 40, 24)  # 5 x 3 at the bottleneck: not powers of two
    with torch.no_grad():
        reference = net(x)
        monkeypatch.setattr(torch.fft, "rfftn", spy(real_rfftn))
        monkeypatch.setattr(torch.fft, "irfftn", spy(real_irfftn))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    assert len(seen) == 2 * 2 * 2  # two FFC per block, two blocks, forward and inverse
    assert all(dtype in (torch.float32, torch.complex64) and not autocast for dtype, autocast in seen)
    assert torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), reference, atol=0.05, rtol=0)
    with pytest.raises(RuntimeError, match="BFloat16"):
        real_rfftn(torch.randn(1, 2, 5, 6, dtype=torch.bfloat16), dim=(-2, -1))
    unit = FourierUnit(2, 2).eval()
    assert unit(torch.randn(1, 2, 5, 6, dtype=torch.bfloat16)).dtype == torch.float32
