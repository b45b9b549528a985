"""Fault injection (issue 23), bad input and full disks: wrong types in a suite, failed writes and a full disk, a
missing dataset.

Each test reproduces one finding and shows it fixed; the helpers are in faults.py, the shared fault runner
and the uninterrupted reference run in conftest.py.
"""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks import harness
from inpaintbench.cli import main
from tests.benchmarks.faults import CNN, MEAN_FILL, SUITE, partials, tables, write_suite

pytestmark = pytest.mark.slow  # end to end: every test runs a suite (the mechanisms have fast unit tests)


# 5 ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count, shown", [('"lots"', '"lots" (a string)'), ('"32"', '"32" (a string)'),
                                          ("32.7", "32.7 (a number)"), ("true", "true (true/false)")])
def test_5_wrong_types_exit_2_naming_file_and_key(tmp_path, monkeypatch, capsys, count, shown):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.toml"
    path.write_text(f'name = "t"\n[dataset]\npath = "d"\n[masks]\nlevels = ["L1"]\ncount = {count}\n'
                    '[[models]]\nname = "cnn"\ntrain = { lr = "fast" }\n')
    assert main(["bench", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {path}: [masks] count: expected an integer >= 1, got {shown}",
        f'{path}: [[models]] #1 (cnn) train.lr: expected a number > 0, got "fast" (a string)']
    assert list(tmp_path.iterdir()) == [path]


# 6 ------------------------------------------------------------------------------------------------------------


def test_6_a_failed_write_names_the_file_and_leaves_nothing_half_written(tmp_path, monkeypatch, sample32):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32, levels=("L1", "L2", "L3"))
    real = Image.Image.save
    saved = []

    def full_disk(self, fp, *args, **kwargs):  # the second run folder's first PNG meets a full disk mid-write
        if "outputs" in str(fp):
            saved.append(fp)
            if len({Path(f).parent for f in saved}) == 2 and Path(fp).parent != Path(saved[0]).parent:
                Path(fp).write_bytes(b"\x89PNG\r\n")  # a torn file, as a full disk leaves it
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(InpaintbenchError) as err:
        ib.run_suite(suite, report=False)
    assert str(err.value).startswith("writing the run folder out/outputs/")
    assert str(err.value).endswith("failed: No space left on device (ENOSPC)")
    assert not partials(tmp_path)
    for png in (tmp_path / "out" / "outputs").rglob("*.png"):
        Image.open(png).load()  # every PNG left is whole
    first_run = tables(tmp_path / "out")[0]
    assert first_run["run_id"].nunique() == 1  # the run before the failure is kept
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    evaluated = []
    real_evaluate = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: evaluated.append(1) or real_evaluate(*a, **k))
    assert tables(ib.run_suite(suite, report=False).parent)[0]["run_id"].nunique() == 3 and len(evaluated) == 2


def test_6_a_full_disk_under_the_trainer_names_the_checkpoint(tmp_path, monkeypatch, sample32):
    import inpaintbench.models.resume as resume

    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32, CNN.format(steps=12))

    def short_write(payload, path):  # what torch.save raises when the disk fills under it
        Path(path).write_bytes(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(resume.torch, "save", short_write)
    monkeypatch.setattr(resume.shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9, free=0))
    with pytest.raises(InpaintbenchError) as err:
        ib.run_suite(suite, report=False)
    (lock,) = Path("models/checkpoints").glob(".cnn-tiny-*.lock")  # the run folder's lock names it
    folder = lock.parent / lock.name[1:].removesuffix(".lock")
    assert str(err.value) == f"writing {folder / 'checkpoint.pt'} failed: No space left on device (ENOSPC)"
    assert not partials(tmp_path) and not folder.exists() and not (tmp_path / "out").exists()


@contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (needs root and a kernel that allows it; else the test is skipped)."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                          capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_6_a_real_full_disk_at_several_points(tmp_path, monkeypatch, sample32):
    with tmpfs(tmp_path / "disk", "6m") as disk:
        monkeypatch.chdir(disk)
        write_suite(disk, sample32, MEAN_FILL)
        ib.run_suite(disk / "s.toml", report=False)
        first = tables(disk / "out")
        suite = write_suite(disk, sample32, MEAN_FILL + CNN.format(steps=12) + '[[models]]\nname = "biharmonic"\n')
        messages = []
        for free in (0, 8 << 10, 100 << 10, 550 << 10, 700 << 10):  # the disk fills up at several stages
            stat = os.statvfs(disk)
            filler = disk / "filler"
            filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))
            try:
                ib.run_suite(suite, report=False)
                messages.append("completed")
            except InpaintbenchError as err:
                messages.append(str(err))
                assert "No space left on device" in str(err) and "\n" not in str(err)
            filler.unlink()
            assert not partials(disk)
            for png in disk.rglob("*.png"):
                Image.open(png).load()
            for mine, theirs in zip(tables(disk / "out"), first, strict=True):  # what was recorded is intact
                pd.testing.assert_frame_equal(mine[mine["model"] == "mean-fill"].reset_index(drop=True), theirs)
        print("\nfull-disk messages:\n" + "\n".join(messages))
        assert sum(m != "completed" for m in messages) >= 3, messages
        results = tables(ib.run_suite(suite, report=False).parent)[0]
        assert set(results["model"]) == {"mean-fill", "cnn-tiny", "biharmonic"}


# 9 ------------------------------------------------------------------------------------------------------------


def test_9_a_missing_dataset_stops_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, tmp_path / "no-dataset")
    assert main(["bench", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "suite faults cannot run: 1 missing item (nothing was written)" in err
    assert f"dataset {tmp_path / 'no-dataset'}: a dataset folder with dataset.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_9_a_missing_loss_network_stops_before_anything_is_written(tmp_path, monkeypatch, capsys, sample32):
    # a training run's loss network (PConv's VGG16) is checked with the dataset, before any run: not hours later
    from inpaintbench.benchmarks.suite import load_suite
    from inpaintbench.models.losses import RANDOM_LOSS_NETWORKS

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RANDOM_LOSS_NETWORKS)
    pconv = ('[[models]]\nname = "pconv-tiny"\noptions = { vgg_weights_dir = "no-weights" }\n'
             'train = { steps = 2, batch_size = 4 }\n')
    suite = write_suite(tmp_path, sample32, models=MEAN_FILL + pconv)
    assert main(["bench", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "suite faults cannot run: 1 missing item (nothing was written)" in err
    assert "training pconv-tiny: " in err and "vgg16-397923af.pth" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no output, no run folder
    monkeypatch.setenv(RANDOM_LOSS_NETWORKS, "1")  # the same compute, no file needed
    assert harness.check_requirements(load_suite(suite)) == []


def test_9_a_dataset_that_fails_to_build_leaves_no_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.format(dataset='source = "folder"\npath = "data/mine"\nbuild = { source_dir = "nowhere" }',
                                  levels='["L1"]', models=MEAN_FILL))
    assert main(["bench", str(suite)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
