"""The output folder: run folders committed atomically, tables derived from them, the lock."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks.results import RESULTS_FILE, RUN_METRICS_FILE, OutputLocked, RunStore, locked


def _run(rid, n=3):
    rows = pd.DataFrame({"run_id": rid, "image": np.arange(n), "psnr": np.arange(n) + 20.0})
    per_run = pd.DataFrame({"run_id": [rid], "metric": ["psnr_dataset"], "value": [21.0]})
    return rows, per_run, {0: np.zeros((4, 4, 3), np.uint8)}


def test_runs_are_recorded_and_read_back_in_plan_order(tmp_path):
    store = RunStore(tmp_path)
    for rid in ("b", "a"):
        store.commit(rid, *_run(rid))
    store.write(["a", "b", "missing"])
    results = pd.read_parquet(tmp_path / RESULTS_FILE)
    assert list(results["run_id"]) == ["a"] * 3 + ["b"] * 3
    assert list(pd.read_parquet(tmp_path / RUN_METRICS_FILE)["run_id"]) == ["a", "b"]
    assert sorted(p.name for p in (tmp_path / "outputs" / "a").iterdir()) == ["000000.png", RESULTS_FILE,
                                                                              RUN_METRICS_FILE]
    again = RunStore(tmp_path)
    assert again.done == {"a", "b"} and RunStore(tmp_path, resume=False).done == set()


def test_a_failed_commit_leaves_no_trace_of_the_run(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    store.commit("a", *_run("a"))

    def full_disk(self, path, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(InpaintbenchError, match="writing the run folder .*outputs/b failed: No space left on device"):
        store.commit("b", *_run("b"))
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["a"] and RunStore(tmp_path).done == {"a"}


def test_a_corrupt_table_is_rebuilt_with_a_message(tmp_path):
    store = RunStore(tmp_path)
    store.commit("a", *_run("a"))
    store.write(["a"])
    (tmp_path / RESULTS_FILE).write_bytes(b"PAR1 truncated")
    with pytest.warns(UserWarning, match=r"results.parquet is unreadable \(.*\); it is rebuilt from the 1 run kept"):
        again = RunStore(tmp_path)
    assert again.done == {"a"}
    again.write(["a"])
    assert list(pd.read_parquet(tmp_path / RESULTS_FILE)["image"]) == [0, 1, 2]


def test_an_old_folder_is_migrated_once_per_run(tmp_path):
    rows_a, per_a, _ = _run("a")
    rows_b, per_b, _ = _run("b")
    for rid in ("a", "b"):
        (tmp_path / "outputs" / rid).mkdir(parents=True)  # the old layout: composites only
    # the old harness's kill between the two writes: b's run metrics twice, a's per-image rows twice
    pd.concat([rows_a, rows_a, rows_b]).to_parquet(tmp_path / RESULTS_FILE)
    pd.concat([per_a, per_b, per_b]).to_parquet(tmp_path / RUN_METRICS_FILE)
    store = RunStore(tmp_path)
    assert store.done == {"a", "b"}
    store.write(["a", "b"])
    assert not pd.read_parquet(tmp_path / RESULTS_FILE).duplicated(["run_id", "image"]).any()
    assert list(pd.read_parquet(tmp_path / RUN_METRICS_FILE)["run_id"]) == ["a", "b"]


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    out = tmp_path / "out"
    with locked(out):
        with pytest.raises(OutputLocked, match=rf"output folder {out} is in use by pid {os.getpid()} on "):
            with locked(out):
                pass
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from inpaintbench.benchmarks.results import locked\n"
        f"with locked({str(out)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputLocked, match=f"pid {holder.pid} on "):
        with locked(out):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.1)
    with locked(out):  # the kernel released it with its holder: a stale lock never blocks
        pass
