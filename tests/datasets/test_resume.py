"""Builders: the output does not depend on workers, and a SIGKILLed build resumes to the same bytes."""

import os
import signal
import subprocess
import sys
import time

import pytest

from inpaintbench.datasets import build_dataset

CROPS = {"train": 160, "val": 8, "test": 8}  # 800 training crops: four shards of 256


def _tars(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.tar"))}


@pytest.mark.slow
def test_workers_do_not_change_the_output(tmp_path):
    build_dataset("sample", tmp_path / "one", size=32, crops_per_photo=CROPS, workers=1)
    build_dataset("sample", tmp_path / "two", size=32, crops_per_photo=CROPS, workers=2)
    assert _tars(tmp_path / "one") == _tars(tmp_path / "two")


@pytest.mark.slow
def test_sigkill_half_way_then_rerun_equals_an_uninterrupted_build(tmp_path):
    build_dataset("sample", tmp_path / "clean", size=48, crops_per_photo=CROPS)
    script = ("import inpaintbench as ib; "
              f"ib.build_dataset('sample', r'{tmp_path / 'killed'}', size=48, crops_per_photo={CROPS!r})")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 120
    first_shard = tmp_path / "killed" / "train" / "train-000000.tar"
    while not first_shard.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _tars(tmp_path / "killed")
    assert 0 < len(done_before) < len(_tars(tmp_path / "clean"))  # killed half-way, some shards complete
    build_dataset("sample", tmp_path / "killed", size=48, crops_per_photo=CROPS)  # the same command again
    assert _tars(tmp_path / "killed") == _tars(tmp_path / "clean")
    assert not list((tmp_path / "killed").rglob("*.partial"))
