"""Fault injection: the nine findings of issue 23, each reproduced and shown fixed, and SIGKILL at random points.

1. a frozen mask replaced by another valid PNG      6. a full disk
2. a kill between the two result tables              7. exact resume through `bench`
3. truncated weights / resumable state               8. a corrupt results.parquet
4. two runs at once                                  9. a suite whose dataset is missing
5. wrong types in a suite (more in test_suite.py)

Kills run in children forked by tests/benchmarks/fault_runner.py (it imports the package once, so a kill and
restart costs milliseconds, not torch's import); everything else runs here.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks import harness
from inpaintbench.benchmarks.results import RESULTS_FILE, RUN_METRICS_FILE, locked
from inpaintbench.cli import main
from inpaintbench.masks.sets import MaskSetMismatch, load_mask_set, mask_png

pytestmark = pytest.mark.slow  # end to end: every test runs a suite (the mechanisms have fast unit tests)

RUNNER = Path(__file__).with_name("fault_runner.py")
SRC = Path(ib.__file__).parents[1]
SUITE = """
name = "faults"
output = "out"
samples_per_grid = 2
[dataset]
{dataset}
[masks]
levels = {levels}
count = 8
{models}
"""
MEAN_FILL = '[[models]]\nname = "mean-fill"\n'
CNN = '[[models]]\nname = "cnn-tiny"\ntrain = {{ steps = {steps}, batch_size = 4 }}\n'
BUILD = ('source = "sample"\npath = "data/sample-32"\n'
         "build = { size = 32, seed = 0, crops_per_photo = { train = 12, val = 4, test = 8 } }")


def write_suite(folder: Path, data: Path | None = None, models: str = MEAN_FILL, levels=("L1", "L3"),
                name: str = "s.toml") -> Path:
    dataset = BUILD if data is None else f'path = "{data}"'
    path = folder / name
    path.write_text(SUITE.format(dataset=dataset, levels=json.dumps(list(levels)), models=models))
    return path


def tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / RESULTS_FILE), pd.read_parquet(out / RUN_METRICS_FILE)


def assert_tables_equal(mine: tuple[pd.DataFrame, ...], theirs: tuple[pd.DataFrame, ...]) -> None:
    for a, b in zip(mine, theirs, strict=True):
        pd.testing.assert_frame_equal(a, b)


def assert_same_results(out: Path, reference: Path) -> None:
    """The two tables equal, row for row, and every file of every run folder equal (tables as frames)."""
    assert_tables_equal(tables(out), tables(reference))
    mine = {p.relative_to(out): p for p in (out / "outputs").rglob("*") if p.is_file()}
    theirs = {p.relative_to(reference): p for p in (reference / "outputs").rglob("*") if p.is_file()}
    assert sorted(mine) == sorted(theirs)
    for name, path in mine.items():
        if path.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(theirs[name]))
        else:
            assert path.read_bytes() == theirs[name].read_bytes(), name


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".partial" in p.name]


def weights_of(root: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (root / "models" / "checkpoints").glob("*/model.safetensors")}


def boom(*args, **kwargs):
    raise AssertionError("recomputed something recorded")


class Runner:
    """The fault runner subprocess: requests on its stdin, answers on its stdout."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               "TQDM_DISABLE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def send(self, cwd: Path, argv: list[str], kill: dict | None = None) -> None:
        self.proc.stdin.write(json.dumps({"cwd": str(cwd), "argv": argv, "kill": kill}) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, "the fault runner died"
        return json.loads(line)

    def run(self, cwd: Path, argv: list[str], kill: dict | None = None) -> dict:
        self.send(cwd, argv, kill)
        return self.receive()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def runner():
    r = Runner()
    yield r
    r.close()


def ops(cwd: Path) -> list[tuple[str, str]]:
    """Every (operation, target) the attempts in ``cwd`` logged, in order."""
    lines = (cwd / ".fault-ops.log").read_text().splitlines()
    return [tuple(line.split("\t")[1:3]) for line in lines]


def output_log(cwd: Path) -> str:
    return (cwd / ".fault-output.log").read_text()


@pytest.fixture(scope="module")
def reference(runner, tmp_path_factory, sample32):
    """An uninterrupted run of the two-model suite, in a child of the fault runner (one torch thread)."""
    folder = tmp_path_factory.mktemp("reference")
    write_suite(folder, sample32, MEAN_FILL + CNN.format(steps=12))
    answer = runner.run(folder, ["bench", "s.toml"])
    assert answer["rc"] == 0, output_log(folder)
    return folder


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


# 2 ------------------------------------------------------------------------------------------------------------


def test_2_a_kill_between_the_two_tables_leaves_no_run_twice(runner, reference, tmp_path, sample32):
    # the kill the issue describes: after run_metrics.parquet is replaced, before results.parquet is
    replaces = [target for name, target in ops(reference) if name == "os.replace"]
    nth = next(i for i, t in enumerate(replaces, 1) if t.endswith("-> out/results.parquet"))
    assert replaces[nth - 2].endswith("-> out/run_metrics.parquet")
    write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=12))
    killed = runner.run(tmp_path, ["bench", "s.toml"], kill={"op": nth, "kind": "os.replace"})
    assert killed["signal"] == 9 and killed["point"].endswith("-> out/results.parquet")
    assert runner.run(tmp_path, ["bench", "s.toml"])["rc"] == 0
    results, run_rows = tables(tmp_path / "out")
    assert not run_rows.duplicated(["run_id", "metric"]).any() and not results.duplicated(["run_id", "image"]).any()
    assert set(results["run_id"]) == set(run_rows["run_id"])
    assert_same_results(tmp_path / "out", reference / "out")


def test_2_a_folder_left_with_repeated_rows_by_an_older_harness_is_reconciled(tmp_path, monkeypatch, sample32):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32)
    out = ib.run_suite(suite, report=False).parent
    results, run_rows = tables(out)
    first, second = results["run_id"].unique()
    # the old layout: composites only in the run folders; run_metrics repeats the first run and holds the second,
    # whose per-image rows never made it into results.parquet (the old kill between the two writes)
    for folder in (out / "outputs").iterdir():
        for name in (RESULTS_FILE, RUN_METRICS_FILE):
            (folder / name).unlink()
    pd.concat([run_rows, run_rows[run_rows["run_id"] == first]]).to_parquet(out / RUN_METRICS_FILE, index=False)
    results[results["run_id"] == first].to_parquet(out / RESULTS_FILE, index=False)
    evaluated = []
    real = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: evaluated.append(1) or real(*a, **k))
    again, again_rows = tables(ib.run_suite(suite, report=False).parent)
    assert len(evaluated) == 1  # only the run that was not in both tables
    pd.testing.assert_frame_equal(again, results)
    pd.testing.assert_frame_equal(again_rows, run_rows)
    assert {p.name for p in (out / "outputs" / first).iterdir()} >= {RESULTS_FILE, RUN_METRICS_FILE}
    assert second in set(again["run_id"])


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


# 4 ------------------------------------------------------------------------------------------------------------


def test_4_a_second_run_on_a_locked_folder_stops_naming_the_holder_or_waits(tmp_path, monkeypatch, sample32,
                                                                          capsys):
    import socket

    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, sample32)
    with locked(tmp_path / "out"):
        assert main(["bench", str(suite)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: output folder out is in use by pid {os.getpid()} on {socket.gethostname()}")
        assert "wait for it to finish (or pass --wait), or choose another --out" in err and "\n" not in err
        assert not (tmp_path / "masks").exists() and not partials(tmp_path)  # it stopped before anything
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another holder, which finishes a second after the waiting run started
        with locked(tmp_path / "out"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    threading.Timer(1.0, release.set).start()
    assert main(["bench", "--wait", str(suite)]) == 0
    holder.join()
    assert "is in use by pid" in capsys.readouterr().out and tables(tmp_path / "out")[0]["run_id"].nunique() == 2


def test_4_two_bench_runs_at_once_train_and_evaluate_once(reference, tmp_path, sample32):
    second = Runner()
    try:
        for name in ("same", "other"):
            (tmp_path / name).mkdir()
        # the same output folder, both told to wait: the second finds everything done
        write_suite(tmp_path / "same", sample32, MEAN_FILL + CNN.format(steps=12))
        first = Runner()
        try:
            first.send(tmp_path / "same", ["bench", "--wait", "s.toml"])
            second.send(tmp_path / "same", ["bench", "--wait", "s.toml"])
            answers = [first.receive(), second.receive()]
        finally:
            first.close()
        assert [a["rc"] for a in answers] == [0, 0], output_log(tmp_path / "same")
        logged = ops(tmp_path / "same")
        assert sum(name == "train step" for name, _ in logged) == 12  # trained once
        assert sum(name == "os.replace" and "/outputs/" in t and ".partial" in t for name, t in logged) == 4
        assert_same_results(tmp_path / "same" / "out", reference / "out")
        assert not partials(tmp_path / "same")
    finally:
        second.close()


def test_4_two_suites_sharing_masks_and_checkpoints_at_once(reference, tmp_path, sample32):
    runners = [Runner(), Runner()]
    try:
        write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=12))
        for r, out in zip(runners, ("out", "out2"), strict=True):
            r.send(tmp_path, ["bench", "s.toml", "--out", out])
        assert [r.receive()["rc"] for r in runners] == [0, 0], output_log(tmp_path)
    finally:
        for r in runners:
            r.close()
    assert sum(name == "train step" for name, _ in ops(tmp_path)) == 12  # the run lock: trained once
    for out in ("out", "out2"):
        assert_tables_equal(tables(tmp_path / out), tables(reference / "out"))
    assert weights_of(tmp_path) == weights_of(reference) and not partials(tmp_path)


def _freeze(folder: str, rounds: int) -> None:
    for _ in range(rounds):
        ib.make_mask_set("L3", count=64, size=32, out=folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_4_mask_sets_frozen_by_two_processes_at_once(tmp_path):
    import multiprocessing

    folder = str(tmp_path / "set")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_freeze, args=(folder, 15)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    ib.make_mask_set("L3", count=64, size=32, out=folder)
    load_mask_set(folder)  # complete and matching its manifest
    assert not partials(tmp_path)


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


# 7 ------------------------------------------------------------------------------------------------------------


def test_7_a_kill_in_training_resumes_to_the_same_bytes_without_repeating_a_step(runner, reference, tmp_path,
                                                                                sample32):
    write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=12))
    killed = runner.run(tmp_path, ["bench", "s.toml"], kill={"op": 8, "kind": "train step"})
    assert killed["signal"] == 9 and killed["point"] == "train step 7"
    start = len(ops(tmp_path))
    assert runner.run(tmp_path, ["bench", "s.toml"])["rc"] == 0
    steps = [int(t) for name, t in ops(tmp_path)[start:] if name == "train step"]
    assert steps == list(range(6, 12))  # from the checkpoint of step 6 (every 2 steps: a tenth of 12)
    assert weights_of(tmp_path) == weights_of(reference)  # so the run ids are the same too
    (log,) = (tmp_path / "models" / "checkpoints").glob("cnn-tiny-*/losses.csv")
    (ref_log,) = (reference / "models" / "checkpoints").glob("cnn-tiny-*/losses.csv")
    assert log.read_text() == ref_log.read_text()
    logged = pd.read_csv(log.with_name("log.csv"))
    assert logged["step"].is_unique and list(logged["step"]) == list(pd.read_csv(ref_log.with_name("log.csv"))["step"])
    assert_same_results(tmp_path / "out", reference / "out")


def test_7_a_killed_200_step_run_keeps_its_training(runner, tmp_path, sample32):
    write_suite(tmp_path, sample32, '[[models]]\nname = "cnn-tiny"\ntrain = { steps = 200, batch_size = 1 }\n')
    assert runner.run(tmp_path, ["bench", "s.toml"], kill={"op": 151, "kind": "train step"})["signal"] == 9
    (state,) = (tmp_path / "models" / "checkpoints").glob("cnn-tiny-*/checkpoint.pt")
    from inpaintbench.models.resume import load_state

    assert load_state(state)["step"] == 140  # every 20 steps: at most a tenth of the run is lost
    start = len(ops(tmp_path))
    assert runner.run(tmp_path, ["bench", "s.toml"])["rc"] == 0
    steps = [int(t) for name, t in ops(tmp_path)[start:] if name == "train step"]
    assert steps == list(range(140, 200))
    assert pd.read_csv(state.with_name("log.csv"))["step"].is_unique


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


# 9 ------------------------------------------------------------------------------------------------------------


def test_9_a_missing_dataset_stops_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path, tmp_path / "no-dataset")
    assert main(["bench", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "suite faults cannot run: 1 missing item (nothing was written)" in err
    assert f"dataset {tmp_path / 'no-dataset'}: a dataset folder with dataset.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_9_a_dataset_that_fails_to_build_leaves_no_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.format(dataset='source = "folder"\npath = "data/mine"\nbuild = { source_dir = "nowhere" }',
                                  levels='["L1"]', models=MEAN_FILL))
    assert main(["bench", str(suite)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# SIGKILL at random points -------------------------------------------------------------------------------------


def test_sigkill_at_random_points_gives_the_results_of_an_uninterrupted_run(runner, reference, tmp_path, sample32):
    """The whole suite (mask sets, training, evaluation, tables, report), killed again and again, then finished.

    Two kills in three come just before a random file operation (a third of the writes torn halfway first), the
    third from outside at a random moment. Each point is drawn within the work the previous attempt did, so the
    kills follow the suite from its start to its end (then its cached reruns and report).
    """
    rng = random.Random(23)
    write_suite(tmp_path, sample32, MEAN_FILL + CNN.format(steps=12))
    span, seconds = len(ops(reference)) // 4, 6.0  # a first attempt: somewhere in the first quarter
    kills = []
    for attempt in range(40):
        if len(kills) >= 15:
            break
        if attempt % 3 == 2:
            kill = {"after": round(rng.uniform(0.05, seconds), 2)}
        else:
            kill = {"op": rng.randint(1, max(1, span)), "torn": rng.random() < 0.33}
        answer = runner.run(tmp_path, ["bench", "s.toml"], kill=kill)
        if answer["signal"] == 9:
            kills.append({**kill, "at": answer["point"], "seconds": answer["elapsed"]})
        else:
            assert answer["rc"] == 0, output_log(tmp_path)
            span, seconds = answer["ops"], answer["elapsed"]  # finished: the next kills fall within a rerun
    assert runner.run(tmp_path, ["bench", "s.toml"])["rc"] == 0, output_log(tmp_path)
    print("\nSIGKILL points:\n" + "\n".join(json.dumps(k) for k in kills))
    assert len(kills) >= 10
    assert_same_results(tmp_path / "out", reference / "out")
    assert weights_of(tmp_path) == weights_of(reference)
    for mask in (reference / "masks").rglob("*.png"):
        assert (tmp_path / mask.relative_to(reference)).read_bytes() == mask.read_bytes()
    assert not partials(tmp_path) and (tmp_path / "out" / "README.md").is_file()
