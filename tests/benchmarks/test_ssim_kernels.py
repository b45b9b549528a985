import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import structural_similarity

from inpaintbench.benchmarks.metrics import ssim_kernels
from inpaintbench.benchmarks.metrics.ssim_kernels import FUSED_MAX_SHAPES, FusedSSIM, ssim_terms


def _photo_pair(height, width):
    """A crop of a real photo and a noisy copy, float32 1 x 3 x H x W in [0, 1]."""
    image = torch.from_numpy(skimage.data.chelsea()[:height, :width].copy()).permute(2, 0, 1)[None].float() / 255
    noisy = (image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return noisy, image


def test_taps_are_scikit_images_window():
    # scikit-image filters with scipy's gaussian_filter at truncate 3.5: 11 taps for sigma 1.5
    from scipy.ndimage import gaussian_filter1d
    impulse = np.zeros(11)
    impulse[5] = 1.0
    np.testing.assert_allclose(ssim_kernels.GAUSSIAN_TAPS, gaussian_filter1d(impulse, 1.5, truncate=3.5), atol=1e-15)


@pytest.mark.slow  # compiles the kernel for a new shape (about 12 s with an empty inductor cache)
def test_fused_and_eager_agree_on_a_non_square_image_with_scikit_image():
    pred, target = _photo_pair(160, 200)
    s_fused, cs_fused = ssim_terms(pred, target, fused=True)
    s_eager, cs_eager = ssim_terms(pred, target, fused=False)
    torch.testing.assert_close(s_fused, s_eager, atol=1e-6, rtol=0)
    torch.testing.assert_close(cs_fused, cs_eager, atol=1e-6, rtol=0)
    reference = structural_similarity(target[0].permute(1, 2, 0).double().numpy(),
                                      pred[0].permute(1, 2, 0).double().numpy(), gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1, channel_axis=-1)
    assert abs(s_fused.mean().item() - reference) < 1e-5


def test_automatic_mode_keeps_small_images_and_new_shapes_past_the_cap_eager():
    kernel = FusedSSIM()
    assert not kernel.accepts(torch.zeros(1, 3, 64, 64))  # below FUSED_MIN_SIDE
    assert kernel.accepts(torch.zeros(1, 3, 256, 256))
    kernel._shapes.update((3, 200 + i, 200) for i in range(FUSED_MAX_SHAPES))
    assert kernel.accepts(torch.zeros(2, 3, 200, 200))  # already compiled
    assert not kernel.accepts(torch.zeros(2, 3, 256, 256))  # would be one compilation too many
    kernel.broken = "no compiler"
    assert not kernel.accepts(torch.zeros(2, 3, 200, 200))


def test_a_failed_compilation_warns_once_and_falls_back(monkeypatch):
    kernel = FusedSSIM()

    def cannot_compile(x, y):
        raise OSError("no C++ compiler\nmore detail")

    monkeypatch.setattr(kernel, "_kernel", cannot_compile)
    monkeypatch.setattr(ssim_kernels, "fused_ssim", lambda: kernel)
    pred, target = _photo_pair(128, 128)
    with pytest.warns(RuntimeWarning, match="unavailable here: OSError: no C.. compiler; SSIM uses the eager"):
        s, _ = ssim_terms(pred, target)
    torch.testing.assert_close(s, ssim_terms(pred, target, fused=False)[0])
    assert kernel.broken == "OSError: no C++ compiler"
    with pytest.raises(RuntimeError, match="unavailable here"):
        ssim_terms(pred, target, fused=True)


@pytest.mark.slow
def test_without_a_cxx_compiler_ssim_still_computes(tmp_path):
    # a real failure of torch.compile: the compiler it would call does not exist
    script = textwrap.dedent("""
        import warnings, torch, inpaintbench as ib
        x, y = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = ib.metrics.ssim(x, y)
        assert any("SSIM uses the eager path" in str(w.message) for w in caught), [str(w.message) for w in caught]
        torch.testing.assert_close(auto, ib.metrics.ssim(x, y, fused=False))
        print("ok")
    """)
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
