"""Metrics: pure per-image functions, network-based metrics and set metrics, with their metadata.

Each registered Metric says whether higher is better, its stated convention, and its kind: ``image``
metrics give one value per image (pixel metrics, LPIPS), ``set`` metrics one value per run (FID, KID).
Metrics that need pretrained networks are built through ``build(context)`` and raise WeightsUnavailable
with the reason when their file is missing; the harness then reports them as unavailable. The same networks
are public functions on tensors or image folders: ``lpips``, ``fid``, ``kid``, ``p_ids_u_ids`` (:mod:`.networks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import torch

from ..._registry import Registry
from ..._weights import WEIGHTS, WeightsUnavailable, download_weights, import_weights, weights_status
from .accumulate import MeanAccumulator
from .networks import fid, kid, load_images, lpips, p_ids_u_ids, to_uint8
from .pixel import dataset_psnr, l1, l1_hole, l2, l2_hole, ms_ssim, ms_ssim_scales, psnr, ssim

# the conventions name the installed libraries that compute the numbers, not the versions they were written for
_FIDELITY, _LPIPS = f"torch-fidelity {version('torch-fidelity')}", f"lpips {version('lpips')}"

PerImage = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricContext:
    """What network-based metrics need to build themselves."""

    weights_dir: str | Path | None = None
    verify_weights: bool = True  # False only in tests that plug in randomly initialised networks


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: registry name and results column.
        higher_is_better: the direction, for arrows and bold in reports.
        label: the column header.
        convention: how it is computed, printed in every report header.
        fn: ``fn(pred, target, mask) -> per-image values`` for plain image metrics.
        build: ``build(context) -> fn`` for image metrics that need a network.
        kind: ``image`` or ``set``.
        default: part of a suite that names no metrics (optional extras are not).
        weights: the pretrained files (``inpaintbench._weights.WEIGHTS`` names) the metric needs.

    """

    name: str
    higher_is_better: bool
    label: str
    convention: str
    fn: PerImage | None = None
    build: Callable[[MetricContext], PerImage] | None = field(default=None)
    kind: str = "image"
    default: bool = True
    weights: tuple[str, ...] = ()

    def make(self, context: MetricContext) -> PerImage:
        """The per-image function (building the network if needed; may raise WeightsUnavailable)."""
        return self.fn if self.fn is not None else self.build(context)


def _lpips(net: str) -> Callable[[MetricContext], PerImage]:
    def build(context: MetricContext) -> PerImage:
        from .perceptual import LPIPS

        model = LPIPS(net, context.weights_dir, context.verify_weights)
        return lambda p, t, m: model(p, t)

    return build


METRICS: Registry[Metric] = Registry("metric")
for _metric in [
    Metric("psnr", True, "PSNR (dB)", "RGB in [0, 1], data range 1, MSE over all pixels of the composite; MSE floored "
           "at 1e-10 (100 dB); the mean of per-image PSNRs (the dataset PSNR from the mean MSE is in the run table)",
           fn=lambda p, t, m: psnr(p, t)),
    Metric("ssim", True, "SSIM", "Gaussian window 11 taps, sigma 1.5, population covariance, data range 1, K1 0.01, "
           "K2 0.03, 5-px border excluded, mean over RGB (= scikit-image with gaussian_weights=True, "
           "use_sample_covariance=False)", fn=lambda p, t, m: ssim(p, t)),
    Metric("ms_ssim", True, "MS-SSIM", "the SSIM window at up to 5 scales with weights 0.0448, 0.2856, 0.3001, "
           "0.2363, 0.1333 (first weights renormalised when the images fit fewer scales: the header says how many), "
           "2x2 average pooling, negative terms clamped, mean over RGB (= pytorch-msssim)",
           fn=lambda p, t, m: ms_ssim(p, t)),
    Metric("l1", False, "L1", "mean absolute error over all pixels and channels of the composite, [0, 1] units",
           fn=lambda p, t, m: l1(p, t)),
    Metric("l1_hole", False, "L1 hole", "mean absolute error over hole pixels only, [0, 1] units (mmagic's MAE is "
           "this x 100)", fn=l1_hole),
    Metric("l2", False, "L2", "mean squared error over all pixels and channels of the composite, [0, 1] units",
           fn=lambda p, t, m: l2(p, t)),
    Metric("l2_hole", False, "L2 hole", "mean squared error over hole pixels only, [0, 1] units", fn=l2_hole),
    Metric("lpips", False, "LPIPS", f"{_LPIPS}, version 0.1, AlexNet trunk (torchvision alexnet-owt-7be5be79), "
           "composite against ground truth, inputs [0, 1] mapped to [-1, 1]", build=_lpips("alex"),
           weights=("alexnet",)),
    Metric("lpips_vgg", False, "LPIPS (VGG)", "as LPIPS with the VGG16 trunk (torchvision vgg16-397923af), as LaMa "
           "reports", build=_lpips("vgg"), weights=("vgg16",)),
    Metric("fid", False, "FID", f"{_FIDELITY}, inception-v3-compat pool3 (2048 features, weights "
           "2015-12-05-6726825d), uint8 composites against the uint8 ground truth of the same images, "
           "TensorFlow-1 bilinear resize to 299 (LaMa's evaluator, pytorch-fid, resizes with torch's bilinear "
           "interpolate instead, a mean 1/255 apart at 256 px); FID is biased by the image count, so it is "
           "comparable only at the same count, which is given; under 2,048 images its covariance is rank-deficient "
           "and flagged", kind="set", weights=("inception",)),
    Metric("kid", False, "KID", f"{_FIDELITY}, the same features, unbiased MMD with a cubic polynomial "
           "kernel, 100 subsets of min(1000, N) images; the ± over subsets only when they differ (with N <= 1000 "
           "each is all the images)", kind="set", weights=("inception",)),
    Metric("p_ids", True, "P-IDS", "CoModGAN's paired inception discriminative score: a linear SVM "
           "(scikit-learn LinearSVC, dual=False) on the same Inception features tells real from inpainted; the "
           "share of pairs whose inpainted image scores more real than its ground truth (optional extra `ids`)",
           kind="set", default=False, weights=("inception",)),
    Metric("u_ids", True, "U-IDS", "the same SVM's misclassification rate on all real and inpainted features "
           "(optional extra `ids`)", kind="set", default=False, weights=("inception",)),
]:
    METRICS.register(_metric.name, _metric)

PIXEL_METRICS = [name for name in METRICS if METRICS.get(name).fn is not None]
DEFAULT_METRICS = [name for name in METRICS if METRICS.get(name).default]


def compute_all(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The plain per-image metrics (or ``names`` of them) on a batch: name -> per-image values."""
    return {name: METRICS.get(name).fn(pred, target, mask) for name in (names or PIXEL_METRICS)}


__all__ = ["DEFAULT_METRICS", "METRICS", "PIXEL_METRICS", "WEIGHTS", "MeanAccumulator", "Metric", "MetricContext",
           "WeightsUnavailable", "compute_all", "dataset_psnr", "download_weights", "fid", "import_weights", "kid",
           "l1", "l1_hole", "l2", "l2_hole", "load_images", "lpips", "ms_ssim", "ms_ssim_scales", "p_ids_u_ids", "psnr",
           "ssim", "to_uint8", "weights_status"]
