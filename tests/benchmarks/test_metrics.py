import numpy as np
import pytest
import skimage.data
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import inpaintbench as ib
from inpaintbench.masks import draw_masks

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


def _pair(name, level, seed=0):
    """A real photo and a composite whose holes (from a ladder level) hold a blurred estimate."""
    image = getattr(skimage.data, name)()[:256, :256].astype(np.float64) / 255.0
    mask = draw_masks(level, 1, size=256, seed=seed)[0, 0].astype(bool)[:, :, None]
    blurred = gaussian_filter(image, sigma=(6, 6, 0))
    return np.where(mask, blurred, image), image, mask


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("level", ["L1", "L3"])
@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_psnr_and_ssim_equal_scikit_image(name, level, fused):
    pred, target, _ = _pair(name, level)
    # scikit-image on the same float32 values that the torch functions receive
    pred32, target32 = pred.astype(np.float32).astype(np.float64), target.astype(np.float32).astype(np.float64)
    ref_ssim = structural_similarity(target32, pred32, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1, channel_axis=-1)
    ref_psnr = peak_signal_noise_ratio(target32, pred32, data_range=1)
    assert abs(ib.metrics.ssim(_t(pred), _t(target), fused=fused).item() - ref_ssim) < 1e-5
    assert abs(ib.metrics.psnr(_t(pred), _t(target)).item() - ref_psnr) < 1e-5


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_batched_values_are_per_image(fused):
    pairs = [_pair(name, "L3", seed=i) for i, name in enumerate(PHOTOS)]
    pred = torch.cat([_t(p) for p, _, _ in pairs])
    target = torch.cat([_t(t) for _, t, _ in pairs])
    batched = ib.metrics.ssim(pred, target, fused=fused)
    single = torch.stack([ib.metrics.ssim(pred[i:i + 1], target[i:i + 1], fused=fused)[0]
                          for i in range(len(pairs))])
    assert batched.shape == (4,)
    torch.testing.assert_close(batched, single)


def test_l1_whole_and_hole():
    pred, target, mask = _pair("coffee", "L2")
    m = torch.from_numpy(mask[..., 0])[None, None].float()
    diff = np.abs(pred.astype(np.float32).astype(np.float64) - target.astype(np.float32).astype(np.float64))
    assert abs(ib.metrics.l1(_t(pred), _t(target)).item() - diff.mean()) < 1e-6
    assert abs(ib.metrics.l1_hole(_t(pred), _t(target), m).item() - diff[mask[..., 0]].mean()) < 1e-6
    # on a composite the whole-image L1 is the hole L1 scaled by the hole area
    assert ib.metrics.l1(_t(pred), _t(target)).item() == pytest.approx(
        ib.metrics.l1_hole(_t(pred), _t(target), m).item() * mask.mean(), rel=1e-5)


def test_masked_metrics_of_a_batch_are_those_of_each_image():
    pairs = [_pair(name, "L3", seed=i) for i, name in enumerate(PHOTOS)]
    pred, target = torch.cat([_t(p) for p, _, _ in pairs]), torch.cat([_t(t) for _, t, _ in pairs])
    masks = torch.cat([torch.from_numpy(m[..., 0])[None, None].float() for _, _, m in pairs])
    for metric in (ib.metrics.psnr, ib.metrics.l1_hole, ib.metrics.l2_hole):
        batched = metric(pred, target, masks)
        single = torch.cat([metric(pred[i:i + 1], target[i:i + 1], masks[i:i + 1]) for i in range(4)])
        torch.testing.assert_close(batched, single)
        shared = metric(pred, target, masks[:1])  # one mask for every image
        torch.testing.assert_close(shared[0], batched[0])
        assert not torch.equal(shared[1:], batched[1:])
        with pytest.raises(ValueError, match="mask must be N x 1 x H x W with N = 1 or 4"):
            metric(pred, target, masks[:2])


def test_psnr_of_identical_images_is_finite_and_masked_psnr_uses_the_hole():
    _, target, mask = _pair("rocket", "L1")
    assert ib.metrics.psnr(_t(target), _t(target)).item() == pytest.approx(100.0)
    pred, _, _ = _pair("rocket", "L1")
    m = torch.from_numpy(mask[..., 0])[None, None].float()
    hole_mse = ((pred.astype(np.float32) - target.astype(np.float32)) ** 2)[mask[..., 0]].mean()
    assert ib.metrics.psnr(_t(pred), _t(target), m).item() == pytest.approx(10 * np.log10(1 / hole_mse), abs=1e-4)


@pytest.mark.parametrize("name", PHOTOS)
def test_ms_ssim_equals_pytorch_msssim(name):
    from pytorch_msssim import ms_ssim as reference

    pred, target, _ = _pair(name, "L3")
    ours = ib.metrics.ms_ssim(_t(pred), _t(target)).item()
    expected = reference(_t(pred).double(), _t(target).double(), data_range=1.0, size_average=False).item()
    assert abs(ours - expected) < 1e-4
    # three scales (what fits a 64 px image) with the first weights renormalised, on the same 256 px pair
    weights = torch.tensor(ib.metrics.pixel.MS_SSIM_WEIGHTS[:3], dtype=torch.float64)
    three = reference(_t(pred).double(), _t(target).double(), data_range=1.0, size_average=False,
                      weights=(weights / weights.sum()).tolist()).item()
    assert abs(ib.metrics.ms_ssim(_t(pred), _t(target), scales=3).item() - three) < 1e-4


@pytest.mark.parametrize("name", ["chelsea", "rocket"])
def test_ms_ssim_equals_pytorch_msssim_on_whole_photos_of_odd_and_uneven_sides(name):
    # chelsea is 300 x 451 and rocket 427 x 640: the odd side is padded before each 2x2 pooling, on its own axis
    from pytorch_msssim import ms_ssim as reference

    target = getattr(skimage.data, name)().astype(np.float64) / 255.0
    h, w = target.shape[:2]
    pred = target.copy()
    pred[h // 4:h // 2, w // 3:w // 2] = gaussian_filter(target, sigma=(6, 6, 0))[h // 4:h // 2, w // 3:w // 2]
    ours = ib.metrics.ms_ssim(_t(pred), _t(target)).item()
    expected = reference(_t(pred).double(), _t(target).double(), data_range=1.0, size_average=False).item()
    assert abs(ours - expected) < 1e-5


def test_ms_ssim_scales_follow_the_image_size():
    assert [ib.metrics.ms_ssim_scales(s, s) for s in (256, 161, 160, 81, 64, 32)] == [5, 5, 4, 4, 3, 2]
    pred, target, _ = _pair("coffee", "L2")
    small = ib.metrics.ms_ssim(_t(pred)[..., :64, :64], _t(target)[..., :64, :64])
    assert 0 < small.item() <= 1
    with pytest.raises(ValueError, match="do not fit"):
        ib.metrics.ms_ssim(_t(pred)[..., :64, :64], _t(target)[..., :64, :64], scales=5)


def test_l2_and_dataset_psnr():
    pred, target, mask = _pair("chelsea", "L3")
    m = torch.from_numpy(mask[..., 0])[None, None].float()
    sq = (pred.astype(np.float32).astype(np.float64) - target.astype(np.float32).astype(np.float64)) ** 2
    assert ib.metrics.l2(_t(pred), _t(target)).item() == pytest.approx(sq.mean(), rel=1e-5)
    assert ib.metrics.l2_hole(_t(pred), _t(target), m).item() == pytest.approx(sq[mask[..., 0]].mean(), rel=1e-5)
    mse = torch.tensor([1e-3, 1e-2])
    assert ib.metrics.dataset_psnr(mse) == pytest.approx(10 * np.log10(1 / 5.5e-3))
    # the dataset PSNR is not the mean of per-image PSNRs
    assert ib.metrics.dataset_psnr(mse) < float((10 * torch.log10(1 / mse)).mean())
