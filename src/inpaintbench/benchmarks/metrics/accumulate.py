"""Accumulators: per-metric running sums that reduce correctly across DDP processes.

Each process adds the per-image values of its shard of the data; ``reduce()`` sums the states of all
processes (``torch.distributed.all_reduce`` when a process group is initialised), after which every
process computes the same mean, 95% confidence interval and dataset PSNR as one process over all images.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from .pixel import MSE_FLOOR


class MeanAccumulator:
    """Count, sum and sum of squares of per-image values of several metrics, in float64.

    Args:
        names: the metrics accumulated (values added for other names are refused).

    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        # rows: count, sum, sum of squares; one column per metric
        self.state = torch.zeros(3, len(self.names), dtype=torch.float64)

    def update(self, values: dict[str, torch.Tensor]) -> None:
        """Add a batch of per-image values (NaNs are skipped, e.g. an image without a hole)."""
        for name, tensor in values.items():
            column = self.names.index(name)
            v = tensor.detach().double().cpu().flatten()
            v = v[~torch.isnan(v)]
            self.state[:, column] += torch.stack([torch.tensor(float(len(v)), dtype=torch.float64), v.sum(),
                                                  (v * v).sum()])

    def reduce(self) -> None:
        """Sum the states of every process of the default group (nothing to do without one)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.state, op=dist.ReduceOp.SUM)

    def compute(self) -> dict[str, dict[str, float]]:
        """Per metric: ``n``, ``mean`` and ``ci95`` (half-width, normal approximation for large n).

        The harness's reports use the Student-t interval on the per-image values; for n above a few
        hundred the two agree to three digits.
        """
        out = {}
        for column, name in enumerate(self.names):
            n, total, squares = (float(x) for x in self.state[:, column])
            mean = total / n if n else math.nan
            var = (squares - n * mean * mean) / (n - 1) if n > 1 else math.nan
            out[name] = {"n": n, "mean": mean, "ci95": 1.959964 * math.sqrt(max(var, 0.0) / n) if n > 1 else math.nan}
        return out

    def dataset_psnr(self, mse_name: str = "l2") -> float:
        """The dataset PSNR from the accumulated mean MSE (needs ``l2`` among the names)."""
        mean = self.compute()[mse_name]["mean"]
        return 10 * math.log10(1.0 / max(mean, MSE_FLOOR))
