"""Helpers of the fault-injection tests: the nine findings of issue 23, each reproduced and shown fixed.

1. a frozen mask replaced by another valid PNG      6. a full disk
2. a kill between the two result tables              7. exact resume through `bench`
3. truncated weights / resumable state               8. a corrupt results.parquet
4. two runs at once                                  9. a suite whose dataset is missing
5. wrong types in a suite (more in test_suite.py)

test_faults_files.py has 1, 3 and 8; test_faults_runs.py 2, 4, 7 and SIGKILL at random points;
test_faults_inputs.py 5, 6 and 9. Kills run in children forked by tests/benchmarks/fault_runner.py (it imports
the package once, so a kill and restart costs milliseconds, not torch's import); everything else runs in the
test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import inpaintbench as ib
from inpaintbench.benchmarks.results import RESULTS_FILE, RUN_METRICS_FILE

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


def ops(cwd: Path) -> list[tuple[str, str]]:
    """Every (operation, target) the attempts in ``cwd`` logged, in order."""
    lines = (cwd / ".fault-ops.log").read_text().splitlines()
    return [tuple(line.split("\t")[1:3]) for line in lines]


def output_log(cwd: Path) -> str:
    return (cwd / ".fault-output.log").read_text()
