import pytest
import torch
import torch.nn.functional as F

from inpaintbench import InpaintbenchError
from inpaintbench.models.layers import PartialConv2d, conv_norm_act, make_activation, make_norm


def reference_pconv(conv: PartialConv2d, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's formula evaluated window by window with python loops (mask: 1 = valid)."""
    n, c, h, w = x.shape
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    ph, pw = conv.padding
    dh, dw = conv.dilation
    mask_c = mask.expand(n, c, h, w)  # a single-channel mask is broadcast over the channels
    xp = F.pad(x, (pw, pw, ph, ph))
    mp = F.pad(mask_c, (pw, pw, ph, ph))
    mp_own = F.pad(mask, (pw, pw, ph, ph))  # the mask as given, for sum(M) and sum(1)
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = torch.zeros(n, conv.out_channels, out_h, out_w, dtype=x.dtype)
    new = torch.zeros(n, 1, out_h, out_w, dtype=x.dtype)
    weight = conv.weight.detach().reshape(conv.out_channels, -1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=x.dtype)
    for b in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                ys = [oy * sh + i * dh for i in range(kh)]
                xs = [ox * sw + j * dw for j in range(kw)]
                xw = xp[b][:, ys][:, :, xs]
                mw = mp[b][:, ys][:, :, xs]
                m_own = mp_own[b][:, ys][:, :, xs]
                sum_m = m_own.sum().item()
                sum_1 = m_own.numel()
                if sum_m > 0:
                    out[b, :, oy, ox] = weight @ (xw * mw).reshape(-1) * (sum_1 / sum_m) + bias
                    new[b, 0, oy, ox] = 1
    return out, new


CONFIGS = [
    # (in, out, kernel, stride, padding, dilation, bias, mask channels, hole probability)
    (3, 4, 3, 1, 1, 1, True, 1, 0.5),
    (3, 4, 3, 1, 1, 1, True, 3, 0.5),
    (3, 5, 3, 2, 1, 1, False, 1, 0.4),
    (2, 3, 5, 2, 2, 1, True, 2, 0.6),
    (3, 2, 3, 1, 2, 2, True, 3, 0.5),
    (3, 2, 3, 1, 0, 2, False, 1, 0.3),
    (4, 3, (3, 2), (2, 1), (1, 0), (1, 2), True, 4, 0.5),
    (3, 4, 3, 1, 1, 1, True, 1, 0.9),  # mostly holes: many all-hole windows
]


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_partial_conv_matches_the_formula(index):
    c_in, c_out, k, s, p, d, bias, mask_c, hole_p = CONFIGS[index]
    gen = torch.Generator().manual_seed(index)
    torch.manual_seed(index)
    conv = PartialConv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, bias=bias).double()
    if bias:
        torch.nn.init.uniform_(conv.bias, -1, 1)  # a visible bias: all-hole windows must still be 0
    x = torch.randn(2, c_in, 7, 8, dtype=torch.float64, generator=gen)
    mask = (torch.rand(2, mask_c, 7, 8, generator=gen) > hole_p).double()
    mask[1, :, :6, :6] = 0  # a large hole so that some windows see no valid pixel
    out, new = conv(x, mask)
    ref_out, ref_new = reference_pconv(conv, x, mask)
    assert out.shape == ref_out.shape
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    assert torch.equal(new[:, :1], ref_new)
    assert new.shape[1] == (1 if mask_c == 1 else c_out)
    assert (ref_new == 0).any(), "the config should include all-hole windows"
    assert (out * (1 - new)).abs().max() == 0


def test_partial_conv_float32_and_gradients():
    torch.manual_seed(1)
    conv = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    mask = (torch.rand(2, 1, 6, 6) > 0.5).float()
    out, new = conv(x, mask)
    ref_out, ref_new = reference_pconv(conv, x.detach(), mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    assert torch.equal(new, ref_new)
    out.sum().backward()
    assert conv.weight.grad is not None and x.grad is not None
    assert torch.equal(x.grad * (1 - mask) == 0, torch.ones_like(x, dtype=torch.bool))  # holes get no gradient


def test_partial_conv_full_mask_is_plain_conv_inside_and_default_mask():
    torch.manual_seed(2)
    conv = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    out, new = conv(x, torch.ones(1, 3, 8, 8))
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    corner = F.conv2d(x, conv.weight, None, padding=1)[0, :, 0, 0] * 9 / 4 + conv.bias
    torch.testing.assert_close(out[0, :, 0, 0], corner)  # partial padding renormalises the border
    assert new.shape == (1, 4, 8, 8) and bool(new.all())
    out_default, new_default = conv(x)
    torch.testing.assert_close(out_default, out)
    assert new_default.shape == (1, 1, 8, 8)


def test_partial_conv_chains_and_masks_shrink_holes():
    conv1 = PartialConv2d(3, 8, 3, padding=1)
    conv2 = PartialConv2d(8, 8, 3, padding=1)
    hole = torch.zeros(1, 1, 9, 9)
    hole[..., 2:7, 2:7] = 1
    valid = (1 - hole).expand(-1, 3, -1, -1)
    out, m1 = conv1(torch.rand(1, 3, 9, 9), valid)
    out, m2 = conv2(out, m1)
    assert m1.shape == (1, 8, 9, 9) and m2.shape == (1, 8, 9, 9)
    assert (1 - m1[0, 0]).sum() == 9 and (1 - m2[0, 0]).sum() == 1  # the 5x5 hole shrinks to 3x3, then 1x1


def test_partial_conv_autocast_bf16_keeps_exact_mask():
    conv = PartialConv2d(64, 8, 3, padding=1)
    x = torch.rand(1, 64, 8, 8)
    mask = (torch.rand(1, 64, 8, 8) > 0.3).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new = conv(x, mask)
    ref, ref_new = conv(x, mask)
    assert torch.equal(new.float(), ref_new)
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


def test_partial_conv_rejects_bad_arguments():
    conv = PartialConv2d(3, 4, 3)
    with pytest.raises(InpaintbenchError, match="channels"):
        conv(torch.rand(1, 3, 5, 5), torch.ones(1, 2, 5, 5))
    with pytest.raises(InpaintbenchError, match="does not fit"):
        conv(torch.rand(1, 3, 5, 5), torch.ones(1, 1, 4, 5))
    with pytest.raises(InpaintbenchError, match="groups"):
        PartialConv2d(4, 4, 3, groups=2)
    with pytest.raises(InpaintbenchError, match="zeros"):
        PartialConv2d(4, 4, 3, padding_mode="reflect")
    assert "mask_kernel" not in conv.state_dict()  # checkpoints hold the conv parameters only


def test_conv_norm_act():
    block = conv_norm_act(4, 16, 3, dilation=4, norm="instance", act="lrelu", padding_mode="reflect")
    assert block(torch.rand(2, 4, 12, 12)).shape == (2, 16, 12, 12)
    assert block[0].bias is not None and block[0].dilation == (4, 4)
    down = conv_norm_act(4, 8, 4, stride=2, padding=1)
    assert down(torch.rand(1, 4, 8, 8)).shape == (1, 8, 4, 4)
    assert down[0].bias is None and isinstance(down[1], torch.nn.BatchNorm2d)
    sn = conv_norm_act(3, 8, 3, norm="none", act="none", spectral_norm=True)
    assert hasattr(sn[0], "weight_orig")
    with pytest.raises(InpaintbenchError, match="unknown activation"):
        make_activation("swish7")
    with pytest.raises(InpaintbenchError, match="unknown norm"):
        make_norm("layer9", 4)


def test_patch_discriminator_is_the_70x70_patchgan_and_returns_features():
    from inpaintbench.models.layers.patchgan import PatchDiscriminator, receptive_field

    d = PatchDiscriminator(4, widths=(64, 128, 256, 512, 1), strides=(2, 2, 2, 1, 1), spectral_norm=True,
                           bias=False)
    assert d.receptive_field() == 70 == receptive_field([4] * 5, [2, 2, 2, 1, 1])
    out, feats = d(torch.rand(2, 4, 64, 64), return_features=True)
    assert out.shape == (2, 1, 6, 6) and len(feats) == 5 and feats[-1] is out
    assert all(hasattr(layer[0], "weight_orig") for layer in d.layers)  # spectral norm on every conv
    assert d.layers[0][0].bias is None and isinstance(d.layers[1][1], torch.nn.Identity)
    # a single output pixel depends on a 70x70 window of the input, not more
    x = torch.zeros(1, 4, 128, 128, requires_grad=True)
    d.eval()
    d(x)[0, 0, 5, 5].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    assert rows.max() - rows.min() + 1 <= 70
