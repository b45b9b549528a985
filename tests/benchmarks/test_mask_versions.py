"""A suite run before a preset's drawing changed and after it: the old mask sets' results are not reused."""

import dataclasses
import json

import numpy as np
import pandas as pd

import inpaintbench as ib
from inpaintbench.benchmarks import harness
from inpaintbench.masks import MASK_FAMILIES, MASK_PRESETS
from inpaintbench.masks.sets import set_fingerprint

SUITE = """
name = "versions"
seed = 0
output = "out"
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = { size = 32, seed = 0, crops_per_photo = { train = 4, val = 2, test = 4 } }
[masks]
levels = ["L1", "lama-thin-256"]
count = 8
[[models]]
name = "mean-fill"
"""


def _thinner(mask):
    return mask & np.roll(mask, 1, axis=0)


def test_a_rerun_after_a_drawing_change_recomputes_on_new_sets_and_keeps_the_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    # "before": lama-thin-256 drawn as version 1 drew it (thinner strokes: here each mask less its pixels whose
    # upper neighbour is known), and set.json written without a version, as the code before versions wrote it
    lama = MASK_FAMILIES.get("lama")
    with monkeypatch.context() as before:
        before.setitem(MASK_PRESETS._entries, "lama-thin-256",
                       dataclasses.replace(MASK_PRESETS.get("lama-thin-256"), version=1))
        before.setitem(MASK_FAMILIES._entries, "lama",
                       dataclasses.replace(lama, draw=lambda *args: _thinner(lama.draw(*args))))
        old = pd.read_parquet(ib.run_suite(suite, report=False))
    old_set = tmp_path / "masks/sets/lama-thin-256-32px-n8-seed0"
    info = json.loads((old_set / "set.json").read_text())
    del info["spec"]["version"]
    (old_set / "set.json").write_text(json.dumps(info))
    old_bytes = {p.name: p.read_bytes() for p in old_set.iterdir()}

    calls = []
    real = harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    new = pd.read_parquet(ib.run_suite(suite, report=False))  # resume: cached runs are reused where valid
    assert len(calls) == 1  # only lama-thin-256 was evaluated again; L1's run is reused
    old_lama, new_lama = old[old["level"] == "lama-thin-256"], new[new["level"] == "lama-thin-256"]
    assert set(old_lama["run_id"]).isdisjoint(new_lama["run_id"])
    assert set(new_lama["mask_set"]) == {str(tmp_path.joinpath("masks/sets/lama-thin-256-v2-32px-n8-seed0")
                                              .relative_to(tmp_path))}
    assert set_fingerprint(new_lama["mask_set"].iloc[0]) != set_fingerprint(old_set)
    assert old_lama["area_ratio"].mean() < new_lama["area_ratio"].mean()  # the rows hold the new masks
    assert set(old[old["level"] == "L1"]["run_id"]) == set(new[new["level"] == "L1"]["run_id"])
    assert {p.name: p.read_bytes() for p in old_set.iterdir()} == old_bytes  # the old set is left as it was
