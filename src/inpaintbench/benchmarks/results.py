"""A suite's output folder: its lock, one folder per run committed in one atomic step, and the two tables.

::

    <out>/outputs/<run id>/results.parquet      the run's per-image metrics
    <out>/outputs/<run id>/run_metrics.parquet  its set metrics (dataset PSNR, FID, KID; unavailable ones and why)
    <out>/outputs/<run id>/NNNNNN.png           the composites shown in the report grids
    <out>/results.parquet                       every run of the suite, in plan order (derived from outputs/)
    <out>/run_metrics.parquet                   the same for the set metrics
    <out>/.lock, <out>/.lock.json               the folder's lock (filelock) and who holds it

A run's folder is written under a temporary name and renamed, so a run is either all there (its two tables and
its composites) or absent: a kill at any moment never leaves a run half-recorded, and no run appears twice. The
two tables at the top are rebuilt from the run folders whenever they are written, so a truncated or corrupt one
costs nothing (a message says it was rebuilt); deleting a run's folder makes the next resume compute it again.
Folders written before run folders held their tables are migrated on the first resume: each run present in
both old tables (once, duplicates dropped) whose folder holds its composites gets its tables.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from .._io import atomic_folder, atomic_write, named_os_errors, remove_stale_partials
from .._registry import InpaintbenchError, error_summary
from .layout import HOLDER_FILE, LOCK_FILE, RESULTS_FILE, RUN_METRICS_FILE, RUNS_DIR

__all__ = ["HOLDER_FILE", "LOCK_FILE", "RESULTS_FILE", "RUNS_DIR", "RUN_METRICS_FILE", "OutputLocked", "RunStore",
           "locked"]



class OutputLocked(InpaintbenchError):
    """Another run holds the output folder; the message names it (pid, host, start time, command)."""


def _holder(out: Path) -> str:
    try:
        info = json.loads((out / HOLDER_FILE).read_text())
        return (f"pid {info['pid']} on {info['host']} (user {info['user']}), running since {info['since']}: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError):
        return "another process (it has not said who yet)"


@contextmanager
def locked(out: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold the output folder's lock (created with the folder) for the time of the block.

    The lock is an ``flock`` (filelock), released by the kernel when its holder dies, SIGKILL included: a stale
    lock never blocks a folder. ``.lock.json`` says who holds it, for the message of a second run.

    Args:
        out: the output folder.
        wait: wait for another run holding it to finish (then this one finds its results); False stops at once.

    Raises:
        OutputLocked: naming the holder, when another run holds the folder and ``wait`` is False.

    """
    from filelock import FileLock, Timeout

    out = Path(out)
    with named_os_errors("creating the output folder", out):
        out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK_FILE, thread_local=False)  # one holder per process, whichever thread releases it
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(out)
        if not wait:
            raise OutputLocked(f"output folder {out} is in use by {holder}; wait for it to finish (or pass --wait), "
                               "or choose another --out") from None
        tqdm.write(f"output folder {out} is in use by {holder}; waiting for it to finish")
        lock.acquire()
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv) or "python"}
        atomic_write(out / HOLDER_FILE, lambda p: p.write_text(json.dumps(info) + "\n"))
        yield
    finally:
        (out / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without /etc/passwd entry
        return str(os.getuid())


class RunStore:
    """The runs of one output folder (call under :func:`locked`).

    Args:
        out: the output folder.
        resume: keep the runs already there; False computes every run again (their folders are replaced).

    """

    def __init__(self, out: str | Path, resume: bool = True) -> None:
        self.out = Path(out)
        self.runs_dir = self.out / RUNS_DIR
        self.tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}  # run id -> (results, run metrics)
        for folder in (self.out, self.runs_dir):
            remove_stale_partials(folder)  # under the lock: only a dead writer's temporary files can be there
        if resume:
            self._load()

    @property
    def done(self) -> set[str]:
        """The ids of the runs recorded here."""
        return set(self.tables)

    def _load(self) -> None:
        """Read every complete run folder, then migrate the runs that only the old top-level tables hold."""
        old_layout = set()
        for folder in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            if not (folder / RESULTS_FILE).is_file() or not (folder / RUN_METRICS_FILE).is_file():
                old_layout.add(folder.name)  # composites only: written before run folders held their tables
                continue
            try:
                self.tables[folder.name] = (pd.read_parquet(folder / RESULTS_FILE),
                                            pd.read_parquet(folder / RUN_METRICS_FILE))
            except (OSError, ValueError) as err:
                warnings.warn(f"{folder} holds an unreadable table ({error_summary(err)}); the run is computed again",
                              stacklevel=3)
        old = {name: self._read_table(self.out / name) for name in (RESULTS_FILE, RUN_METRICS_FILE)}
        if old[RESULTS_FILE] is None or old[RUN_METRICS_FILE] is None:
            return
        results, run_rows = old[RESULTS_FILE], old[RUN_METRICS_FILE]
        # Only a run present in both tables was complete; an older harness could repeat a run's rows. A run whose
        # folder is gone is not migrated: deleting a run's folder is how a run is computed again.
        for rid in sorted(set(results["run_id"]) & set(run_rows["run_id"]) & old_layout):
            rows = results[results["run_id"] == rid].drop_duplicates("image", keep="last").reset_index(drop=True)
            per_run = run_rows[run_rows["run_id"] == rid].drop_duplicates("metric", keep="last")
            self._write_tables(self.runs_dir / rid, rows, per_run.reset_index(drop=True))
            self.tables[rid] = (pd.read_parquet(self.runs_dir / rid / RESULTS_FILE),
                                pd.read_parquet(self.runs_dir / rid / RUN_METRICS_FILE))

    def _read_table(self, path: Path) -> pd.DataFrame | None:
        if not path.exists():
            return None
        try:
            frame = pd.read_parquet(path)
            if "run_id" not in frame:
                raise ValueError("no run_id column")
            return frame
        except (OSError, ValueError) as err:
            kept = len(self.tables)
            warnings.warn(f"{path} is unreadable ({error_summary(err)}); it is rebuilt from the {kept} run"
                          f"{'s' * (kept != 1)} kept in {self.runs_dir}, and runs without an intact copy are "
                          "computed again", stacklevel=4)
            return None

    def _write_tables(self, folder: Path, rows: pd.DataFrame, per_run: pd.DataFrame) -> None:
        with named_os_errors("creating the run folder", folder):
            folder.mkdir(parents=True, exist_ok=True)
        # the set metrics first: a run counts as recorded only when its per-image table is there too
        atomic_write(folder / RUN_METRICS_FILE, lambda p: per_run.to_parquet(p, index=False), "writing")
        atomic_write(folder / RESULTS_FILE, lambda p: rows.to_parquet(p, index=False), "writing")

    def commit(self, rid: str, rows: pd.DataFrame, per_run: pd.DataFrame,
               composites: dict[int, np.ndarray]) -> None:
        """Record one run in one atomic step: its tables and composites in a folder renamed into place.

        Raises:
            InpaintbenchError: naming the folder and the cause when writing fails (nothing of the run is kept).

        """
        folder = self.runs_dir / rid
        with atomic_folder(folder, "writing the run folder") as tmp:
            for index, composite in composites.items():
                Image.fromarray(composite).save(tmp / f"{index:06d}.png")
            rows.to_parquet(tmp / RESULTS_FILE, index=False)
            per_run.to_parquet(tmp / RUN_METRICS_FILE, index=False)
        self.tables[rid] = (pd.read_parquet(folder / RESULTS_FILE), pd.read_parquet(folder / RUN_METRICS_FILE))

    def write(self, planned: list[str]) -> Path:
        """Write results.parquet and run_metrics.parquet with the ``planned`` runs recorded here, in plan order.

        Returns:
            The path of results.parquet.

        """
        ids = [rid for rid in dict.fromkeys(planned) if rid in self.tables]
        results = pd.concat([self.tables[rid][0] for rid in ids], ignore_index=True) if ids else pd.DataFrame()
        run_rows = pd.concat([self.tables[rid][1] for rid in ids], ignore_index=True) if ids else pd.DataFrame()
        # run metrics first: a reader keys on results.parquet, whose runs are then always in both
        atomic_write(self.out / RUN_METRICS_FILE, lambda p: run_rows.to_parquet(p, index=False), "writing")
        return atomic_write(self.out / RESULTS_FILE, lambda p: results.to_parquet(p, index=False), "writing")
