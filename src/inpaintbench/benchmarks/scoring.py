"""Scoring one model on a frozen mask set: per-image metrics of its composites, then the run-level ones.

The harness (:mod:`.harness`) decides what to run and records it; this module only computes: the model fills
each hole, the composite keeps the known pixels, and every metric compares the composite with the original.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..models.base import InpaintModel
from ..models.train import pick_device
from .metrics import METRICS, MetricContext, WeightsUnavailable
from .metrics.networks import to_uint8
from .metrics.pixel import dataset_psnr, l2
from .suite import Suite

__all__ = ["EVAL_BATCH", "build_metrics", "evaluate", "set_metrics"]

EVAL_BATCH = 32


def build_metrics(names: tuple[str, ...], context: MetricContext) -> tuple[dict, dict[str, str]]:
    """Per-image metric functions for ``names``, and the reasons of those that cannot be computed here."""
    functions, unavailable = {}, {}
    for name in names:
        metric = METRICS.get(name)
        if metric.kind != "image":
            continue
        try:
            functions[name] = metric.make(context)
        except WeightsUnavailable as err:
            unavailable[name] = str(err)
    return functions, unavailable


@torch.no_grad()
def evaluate(model: InpaintModel, images: torch.Tensor, masks: torch.Tensor, metrics: dict,
             keep: list[int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, torch.Tensor]:
    """Metrics per image of ``model`` on uint8 ``images`` (N x 3 x H x W) with ``masks`` (N x 1 x H x W).

    ``metrics`` maps names to per-image functions (see build_metrics). Returns the metric columns (plus
    ``mse``), the composites of the images ``keep`` as uint8 K x H x W x 3, and every composite as uint8
    N x 3 x H x W (for set metrics such as FID).
    """
    device = pick_device()
    model.to(device)
    columns: dict[str, list[np.ndarray]] = {m: [] for m in [*metrics, "mse"]}
    kept, all_composites = [], []
    keep = keep or []
    for start in range(0, len(images), EVAL_BATCH):
        image = images[start:start + EVAL_BATCH].to(device).float() / 255.0
        mask = masks[start:start + EVAL_BATCH].to(device).float()
        guide = model.oracle_guide(image)  # None except for oracle ablations (EdgeConnect's true edges)
        masked = image * (1 - mask)
        pred = (model(masked, mask) if guide is None else model(masked, mask, guide=guide)).float().clamp(0, 1)
        composite = mask * pred + (1 - mask) * image
        for name, fn in metrics.items():
            columns[name].append(fn(composite, image, mask).cpu().numpy())
        columns["mse"].append(l2(composite, image).cpu().numpy())
        as_uint8 = to_uint8(composite).cpu()  # as the public fid/kid round float images
        all_composites.append(as_uint8)
        local = [i - start for i in keep if start <= i < start + len(image)]
        if local:
            kept.append(as_uint8[local].permute(0, 2, 3, 1).numpy())
    composites = np.concatenate(kept) if kept else np.zeros((0, *images.shape[2:], 3), np.uint8)
    return {m: np.concatenate(v) for m, v in columns.items()}, composites, torch.cat(all_composites)


def set_metrics(suite: Suite, composites: torch.Tensor, real: torch.Tensor, mse: np.ndarray, cache_name: str,
                context: MetricContext) -> list[dict[str, Any]]:
    """Run-level rows: dataset PSNR, and FID and KID when the suite asks for them (or why they are unavailable)."""
    n = len(composites)
    rows = [{"metric": "psnr_dataset", "value": dataset_psnr(torch.from_numpy(mse)), "n_images": n,
             "comparable": True, "status": "ok", "reason": ""}]
    wanted = [m for m in ("fid", "kid") if m in suite.metrics]
    ids = [m for m in ("p_ids", "u_ids") if m in suite.metrics]
    if ids:
        from .metrics.distribution import inception_features, paired_ids

        try:
            values = paired_ids(inception_features(composites, context.weights_dir, context.verify_weights),
                                inception_features(real, context.weights_dir, context.verify_weights))
            rows += [{"metric": m, "value": values[m], "n_images": n, "comparable": True, "status": "ok",
                      "reason": ""} for m in ids]
        except WeightsUnavailable as err:
            rows += [{"metric": m, "value": float("nan"), "n_images": n, "comparable": False,
                      "status": "unavailable", "reason": str(err)} for m in ids]
    if wanted:
        from .metrics.distribution import fid_kid, weights_tag

        try:
            tag = weights_tag(context.weights_dir, context.verify_weights)
            values = fid_kid(composites, real, context.weights_dir, context.verify_weights,
                             real_cache_name=f"inpaintbench-{cache_name}-{tag}")
            for m in wanted:
                rows.append({"metric": m, "value": values[m], "n_images": n, "comparable": values["comparable"],
                             "status": "ok", "reason": "" if values["comparable"] else
                             f"{n} images < 2048: the FID's covariance is rank-deficient"})
                if m == "kid" and not math.isnan(values["kid_std"]):  # NaN: the subsets were all the images
                    rows.append({"metric": "kid_std", "value": values["kid_std"], "n_images": n,
                                 "comparable": values["comparable"], "status": "ok", "reason": ""})
        except WeightsUnavailable as err:
            rows += [{"metric": m, "value": float("nan"), "n_images": n, "comparable": False,
                      "status": "unavailable", "reason": str(err)} for m in wanted]
    return rows
