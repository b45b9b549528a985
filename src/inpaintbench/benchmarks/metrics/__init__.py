"""Metrics: pure per-image functions plus their metadata (direction, convention) in the METRICS registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..._registry import Registry
from .pixel import l1, l1_hole, psnr, ssim


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn(pred, target, mask) -> per-image tensor`` and how to read it."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    higher_is_better: bool
    label: str
    convention: str


METRICS: Registry[Metric] = Registry("metric")
for _metric in [
    Metric("psnr", lambda p, t, m: psnr(p, t), True, "PSNR (dB)",
           "RGB in [0, 1], data range 1, MSE over all pixels of the composite; MSE floored at 1e-10 (100 dB)"),
    Metric("ssim", lambda p, t, m: ssim(p, t), True, "SSIM",
           "Gaussian window 11 taps, sigma 1.5, population covariance, data range 1, K1 0.01, K2 0.03, "
           "5-px border excluded, mean over RGB (= scikit-image with gaussian_weights=True, "
           "use_sample_covariance=False)"),
    Metric("l1", lambda p, t, m: l1(p, t), False, "L1",
           "mean absolute error over all pixels and channels of the composite, [0, 1] units"),
    Metric("l1_hole", l1_hole, False, "L1 hole",
           "mean absolute error over hole pixels only, [0, 1] units (mmagic's MAE is this x 100)"),
]:
    METRICS.register(_metric.name, _metric)


def compute_all(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Every registered metric (or ``names``) on a batch: name -> per-image values."""
    return {name: METRICS.get(name).fn(pred, target, mask) for name in (names or METRICS.names())}


__all__ = ["METRICS", "Metric", "compute_all", "l1", "l1_hole", "psnr", "ssim"]
