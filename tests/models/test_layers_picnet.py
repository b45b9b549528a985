"""PICNet's blocks in models/layers: residual down/up blocks and the short+long term attention."""

import pytest
import torch

from inpaintbench.models.layers import PicnetResidualBlock, ResidualUpBlock, ShortLongAttention
from inpaintbench.models.layers.residual import settle_spectral_norm


def _auto_attn_reference(attn, x, pre, hole):
    """PICNet's Auto_Attn.forward, element by element (hole = 1 - PICNet's mask)."""
    n, c, h, w = x.shape
    q = attn.query(x).reshape(n, -1, h * w)
    out = torch.empty_like(x)
    flow = torch.empty_like(pre)
    for b in range(n):
        energy = q[b].T @ q[b]  # N x N
        a = torch.softmax(energy, dim=-1)
        xv, pv = x[b].reshape(c, -1), pre[b].reshape(pre.shape[1], -1)
        for i in range(h * w):
            out[b].reshape(c, -1)[:, i] = attn.gamma * (xv * a[i]).sum(1) + xv[:, i]
            flow[b].reshape(pre.shape[1], -1)[:, i] = (pv * a[i]).sum(1)
    flow = attn.alpha * hole * flow + (1 - hole) * pre
    return attn.fuse(torch.cat([out, flow], dim=1))


def test_short_long_attention_matches_picnets_formula():
    torch.manual_seed(0)
    attn = ShortLongAttention(8, context_channels=6).double().eval()
    with torch.no_grad():
        attn.gamma.fill_(0.7)
        attn.alpha.fill_(1.3)
        attn.query.weight.mul_(10)  # a peaked attention map
    x, pre = torch.randn(2, 8, 3, 4, dtype=torch.float64), torch.randn(2, 6, 3, 4, dtype=torch.float64)
    hole = (torch.rand(2, 1, 3, 4) > 0.5).double()
    with torch.no_grad():
        out, attention = attn(x, pre, hole)
        torch.testing.assert_close(out, _auto_attn_reference(attn, x, pre, hole))
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 12, dtype=torch.float64))


def test_attention_starts_as_the_identity_on_known_pixels():
    """gamma = alpha = 0 at initialisation: the short-term output is x and the context flow is pre outside holes."""
    attn = ShortLongAttention(4)
    x = torch.randn(1, 4, 5, 5)
    out, _ = attn(x)
    assert torch.equal(out, x)
    with pytest.raises(ValueError, match="hole mask"):
        attn(x, torch.randn(1, 4, 5, 5))


def test_residual_blocks_keep_or_halve_and_double_the_side():
    down = PicnetResidualBlock(3, 16, pre_activation=False, reflect_second=True, downsample=True)
    assert down(torch.zeros(2, 3, 12, 10)).shape == (2, 16, 6, 5)
    assert isinstance(down.skip, torch.nn.Conv2d) and down.skip.kernel_size == (1, 1)
    up = ResidualUpBlock(16, 8)
    assert up(torch.zeros(2, 16, 6, 5)).shape == (2, 8, 12, 10)
    kinds = [type(m).__name__ for m in up.body]
    assert kinds == ["InstanceNorm2d", "LeakyReLU", "Conv2d", "InstanceNorm2d", "LeakyReLU", "ConvTranspose2d"]
    assert isinstance(up.skip, torch.nn.ConvTranspose2d) and up.skip.stride == (2, 2)
    assert all(hasattr(m, "weight_orig") for m in (up.skip, up.body[2], up.body[5]))  # spectral norm


def test_settle_spectral_norm_brings_the_estimate_to_the_largest_singular_value():
    torch.manual_seed(0)
    block = ResidualUpBlock(8, 8)
    conv = block.body[2]
    with torch.no_grad():
        conv.weight_orig.mul_(5)  # re-initialised after wrapping: the stored vectors are stale
    settle_spectral_norm(block, iterations=50)
    block.eval()
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    torch.testing.assert_close(sigma, torch.tensor(1.0), atol=1e-3, rtol=0)
