"""Fault injection (issue 23), damaged files: a frozen mask or a dataset shard changed, truncated weights or
resumable state, corrupt result tables.

Each test reproduces one finding and shows it fixed; the helpers are in faults.py, the shared fault runner
and the uninterrupted reference run in conftest.py.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import inpaintbench as ib
from inpaintbench.benchmarks import harness
from inpaintbench.benchmarks.results import RESULTS_FILE, RUN_METRICS_FILE
from inpaintbench.cli import main
from inpaintbench.masks.sets import MaskSetMismatch, load_mask_set, mask_png
from tests.benchmarks.faults import (
    CNN,
    MEAN_FILL,
    assert_same_results,
    assert_tables_equal,
    boom,
    ops,
    output_log,
    tables,
    weights_of,
    write_suite,
)

pytestmark = pytest.mark.slow  # end to end: every test runs a suite (the mechanisms have fast unit tests)


# 1 ------------------------------------------------------------------------------------------------------------


def test_1_a_replaced_mask_png_is_caught_and_the_set_rebuilt(tmp_path, monkeypatch, sample32):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32)
    first = tables(ib.run_suite(suite, report=False).parent)
    folder = tmp_path / "masks" / "sets" / "L1-v2-32px-n8-seed0"
    victim = folder / "000003.png"
    original = victim.read_bytes()
    other = mask_png(np.ones((32, 32), np.uint8))  # another valid mask PNG of the same size
    victim.write_bytes(other)
    with pytest.raises(MaskSetMismatch, match="000003.png does not match the manifest") as err:
        load_mask_set(folder)
    assert err.value.path == victim
    # before: the PNG was read silently and its metrics stored under the old run id; now the set is rebuilt
    shutil.rmtree(tmp_path / "out" / "outputs")  # force every run to be evaluated again
    with pytest.warns(UserWarning, match=r"000003.png does not match the manifest.*rebuilding the set"):
        again = tables(ib.run_suite(suite, report=False).parent)
    assert victim.read_bytes() == original
    assert_tables_equal(again, first)


def test_1_a_frozen_set_it_cannot_rebuild_is_an_error_naming_the_file(tmp_path, monkeypatch, sample32, capsys):
    monkeypatch.chdir(tmp_path)
    imported = ib.make_mask_set("L2", count=8, size=32, out=tmp_path / "imported")
    suite = write_suite(tmp_path, sample32, levels=[str(imported)])
    ib.run_suite(suite, report=False)
    (imported / "000005.png").write_bytes(mask_png(np.zeros((32, 32), np.uint8)))
    shutil.rmtree(tmp_path / "out" / "outputs")
    assert main(["bench", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: mask set {imported}: {imported / '000005.png'} does not match the manifest "
                          "(sha256 ")
    assert err.endswith("...): it changed after the set was frozen") and "\n" not in err
    assert not (tmp_path / "out" / "outputs").exists()  # nothing evaluated with it


def test_1_a_changed_dataset_shard_is_an_error_naming_it(tmp_path, monkeypatch, sample32, capsys):
    from inpaintbench.datasets.shards import image_members

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    shutil.copytree(sample32, data)
    shard = sorted((data / "test").glob("*.tar"))[0]
    key, (offset, size) = next(iter(image_members(shard).items()))
    with open(shard, "r+b") as f:  # one byte of an image member changed, the tar still valid
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert main(["bench", str(write_suite(tmp_path, data))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: shard {shard}: the image of {key} does not match the sha256 the manifest recorded")
    assert "\n" not in err and not (tmp_path / "out").exists()


# 3 ------------------------------------------------------------------------------------------------------------


def test_3_truncated_weights_do_not_block_a_suite_whose_results_exist(tmp_path, monkeypatch, sample32):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=6))
    first = tables(ib.run_suite(suite, report=False).parent)
    (weights,) = (tmp_path / "models" / "checkpoints").glob("cnn-tiny-*/model.safetensors")
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    # before: every rerun stopped with a raw torch message; now recorded runs need no weights at all
    monkeypatch.setattr(harness, "evaluate", boom)
    monkeypatch.setattr(harness.torch.optim, "Adam", boom)
    assert_tables_equal(tables(ib.run_suite(suite, report=False).parent), first)
    assert len(weights.read_bytes()) == len(original) // 2  # not even read
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # a run that needs them: the Trainer names the file, trains the run again, and gets the same bytes
    cnn_run = first[0].loc[first[0]["model"] == "cnn-tiny", "run_id"].iloc[0]
    shutil.rmtree(tmp_path / "out" / "outputs" / cnn_run)
    named = weights.relative_to(tmp_path)
    with pytest.warns(UserWarning, match=rf"^{named} changed after it was stored .*; training the run again$"):
        again = tables(ib.run_suite(suite, report=False).parent)
    assert weights.read_bytes() == original
    assert_tables_equal(again, first)


def test_3_a_truncated_resumable_state_is_set_aside_and_the_run_trained_again(runner, reference, tmp_path, sample32):
    write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=12))
    assert runner.run(tmp_path, ["bench", "s.toml"], kill={"op": 8, "kind": "train step"})["signal"] == 9
    (state,) = (tmp_path / "models" / "checkpoints").glob("cnn-tiny-*/checkpoint.pt")
    state.write_bytes(state.read_bytes()[:1000])
    start = len(ops(tmp_path))
    assert runner.run(tmp_path, ["bench", "s.toml"])["rc"] == 0
    assert f"warning: {state.relative_to(tmp_path)} is unreadable (truncated or corrupt)" in output_log(tmp_path)
    assert state.with_name("checkpoint.pt.unreadable").stat().st_size == 1000  # set aside, not deleted
    steps = [int(t) for name, t in ops(tmp_path)[start:] if name == "train step"]
    assert steps == list(range(12))  # from step 0 again
    assert weights_of(tmp_path) == weights_of(reference)
    assert_same_results(tmp_path / "out", reference / "out")


# 8 ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("table", [RESULTS_FILE, RUN_METRICS_FILE])
def test_8_a_corrupt_table_is_rebuilt_from_the_run_folders(tmp_path, monkeypatch, sample32, table, damage):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32)
    first = tables(ib.run_suite(suite, report=False).parent)
    path = tmp_path / "out" / table
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not a parquet file" * 10, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    monkeypatch.setattr(harness, "evaluate", boom)
    with pytest.warns(UserWarning, match=rf"out/{table} is unreadable .*rebuilt from the 2 runs kept in out/outputs"):
        again = tables(ib.run_suite(suite, report=False).parent)
    assert_tables_equal(again, first)


def test_8_a_corrupt_run_folder_costs_only_its_run(tmp_path, monkeypatch, sample32):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32)
    first = tables(ib.run_suite(suite, report=False).parent)
    victim = tmp_path / "out" / "outputs" / first[0]["run_id"].iloc[-1] / RESULTS_FILE
    victim.write_bytes(b"\0" * 100)
    evaluated = []
    real = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: evaluated.append(1) or real(*a, **k))
    named = victim.parent.relative_to(tmp_path)
    with pytest.warns(UserWarning, match=rf"^{named} holds an unreadable table .*; the run is computed again$"):
        again = tables(ib.run_suite(suite, report=False).parent)
    assert len(evaluated) == 1
    assert_tables_equal(again, first)
