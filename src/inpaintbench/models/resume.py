"""A training run's resumable state: ``checkpoint.pt`` while a run is unfinished.

The state holds every network, every optimiser and learning-rate schedule, the EMA and the step: what an
exact resume needs. It exists only while the run is unfinished; the finished run keeps its inference weights in
the checkpoint store (``model.safetensors`` + ``card.json``, :mod:`.store`) and this file is deleted, so a
finished run costs the size of its generator, not of its optimiser states and discriminators.

There is no RNG state in it: every step seeds the global generators from (seed, step) (see
:func:`seed_step`), so a resumed run draws the same random numbers as an uninterrupted one whatever happened
to the generators in between (DataLoader iterators, for example, consume them when they start).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from .._io import named_os_errors, os_error_cause
from .._registry import InpaintbenchError, error_summary

__all__ = ["STATE_FILE", "load_state", "save_state", "seed_step"]

STATE_FILE = "checkpoint.pt"
_FULL_BYTES = 1 << 20  # free space below which a failed torch.save is reported as a full disk


def seed_step(seed: int, step: int) -> None:
    """Seed torch's global generators (CPU and CUDA) for step ``step`` of a run seeded with ``seed``."""
    torch.manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def save_state(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a resumable state atomically (temporary file, then rename); no ``.partial`` is left on failure.

    Raises:
        InpaintbenchError: naming the file and the cause when writing fails (a full disk, for example).

    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with named_os_errors("writing", path):
            torch.save(payload, tmp)
            os.replace(tmp, path)
    except RuntimeError as err:  # torch's writer reports a short write as "unexpected pos N vs M", naming nothing
        full = shutil.disk_usage(path.parent).free < _FULL_BYTES
        cause = os_error_cause(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) if full else \
            (str(err).splitlines() or ["torch.save failed"])[0][:160]
        raise InpaintbenchError(f"writing {path} failed: {cause}") from None
    finally:
        tmp.unlink(missing_ok=True)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a resumable state with ``weights_only=True`` (memory-mapped).

    Raises:
        InpaintbenchError: naming the file when it is truncated, corrupt or not a state of this project.

    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # any unreadable file is the same problem for the user
        raise InpaintbenchError(f"{path} is unreadable (truncated or corrupt): {error_summary(err)}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise InpaintbenchError(f"{path} is not an inpaintbench training state")
    return state
