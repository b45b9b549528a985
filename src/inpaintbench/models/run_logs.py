"""What a training run writes as it goes: the loss logs (CSV, TensorBoard when installed) and sample grids.

Both are rewritten atomically; on resume the logs are cut back to the resumed step, so a resumed run's files equal
an uninterrupted run's.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write
from .base import InpaintModel

__all__ = ["RunLogs", "keep_rows_up_to", "sample_grid"]


class RunLogs:
    """log.csv (step, summed loss, seconds), losses.csv (step, group, loss, value), TensorBoard when installed.

    On resume from step ``resume_step`` the rows written after it (by the interrupted run, after its last
    checkpoint) are dropped first, so no step appears twice and the files equal those of an uninterrupted run.
    """

    def __init__(self, out: Path, resume_step: int, enabled: bool) -> None:
        self.out, self.resume_step, self.enabled = out, resume_step, enabled
        self.files: list[Any] = []
        self.board = None

    def __enter__(self) -> RunLogs:
        if not self.enabled:
            return self
        names = ("log.csv", "losses.csv")
        headers = (["step", "loss", "seconds"], ["step", "group", "loss", "value"])
        for name, header in zip(names, headers, strict=True):
            keep_rows_up_to(self.out / name, header, self.resume_step)
        self.files = [open(self.out / name, "a", newline="") for name in names]
        self.log, self.losses = csv.writer(self.files[0]), csv.writer(self.files[1])
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(self.out / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.board = None
        return self

    def write(self, step: int, total: float, seconds: float, losses: dict[str, float]) -> None:
        """One row per log step (process 0 only)."""
        if not self.enabled:
            return
        self.log.writerow([step, f"{total:.6f}", f"{seconds:.2f}"])
        for key, value in losses.items():
            group, name = key.split("/", 1)
            self.losses.writerow([step, group, name, f"{value:.6f}"])
            if self.board is not None:
                self.board.add_scalar(key, value, step)
        for f in self.files:
            f.flush()

    def __exit__(self, *exc: object) -> None:
        for f in self.files:
            f.close()
        if self.board is not None:
            self.board.close()


def keep_rows_up_to(path: Path, header: list[str], step: int) -> None:
    """Rewrite a CSV log with its header and only the rows of steps <= ``step`` (a fresh file at step 0)."""
    rows = []
    if step > 0 and path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and r[0].isdigit() and int(r[0]) <= step]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(path, write)


@torch.no_grad()
def sample_grid(model: InpaintModel, image: torch.Tensor, mask: torch.Tensor, path: Path) -> None:
    """A PNG with rows input, output, composite, truth for the first four samples of the batch."""
    from torchvision.utils import save_image

    was_training = model.training
    model.eval()
    image, mask = image[:4].float(), mask[:4].float()
    pred = model(image * (1 - mask), mask).float().clamp(0, 1)
    model.train(was_training)
    rows = [image * (1 - mask) + mask * 0.5, pred, mask * pred + (1 - mask) * image, image]
    path.parent.mkdir(parents=True, exist_ok=True)
    # written under a temporary name: a full disk never leaves a truncated PNG behind
    atomic_write(path, lambda p: save_image(torch.cat(rows), p, nrow=len(image), padding=1, format="png"))
