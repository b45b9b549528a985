"""Fault injection (issue 23), interrupted and concurrent runs: a kill between the two tables, two runs at once,
exact resume through `bench`, SIGKILL at random points.

Each test reproduces one finding and shows it fixed; the helpers are in faults.py, the shared fault runner
and the uninterrupted reference run in conftest.py.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading

import pandas as pd
import pytest

import inpaintbench as ib
from inpaintbench.benchmarks import harness
from inpaintbench.benchmarks.results import RESULTS_FILE, RUN_METRICS_FILE, locked
from inpaintbench.cli import main
from inpaintbench.masks.sets import load_mask_set
from tests.benchmarks.faults import (
    CNN,
    MEAN_FILL,
    Runner,
    assert_same_results,
    assert_tables_equal,
    ops,
    output_log,
    partials,
    tables,
    weights_of,
    write_suite,
)

pytestmark = pytest.mark.slow  # end to end: every test runs a suite (the mechanisms have fast unit tests)


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
