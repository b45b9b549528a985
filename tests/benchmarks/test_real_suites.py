"""The real-data suites: valid, every registered method, and without their data they stop with the build command."""

from pathlib import Path

import pytest

import inpaintbench as ib
from inpaintbench.benchmarks.harness import MissingRequirements
from inpaintbench.benchmarks.suite import load_suite
from inpaintbench.models.base import MODELS

ROOT = Path(__file__).parents[2] / "benchmarks"
REAL = sorted((ROOT / "real").glob("*.toml"))
BUILD = {"celeba-256": "inpaintbench data build celeba", "places2-256": "inpaintbench data build places2",
         "inat-128": "inpaintbench data build inat", "nvidia-bins": "inpaintbench data build places2",
         "lama": "inpaintbench data build places2"}


def test_every_named_suite_is_there():
    assert sorted(p.stem for p in REAL) == sorted(BUILD)


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_a_real_suite_without_data_stops_with_the_build_command(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no datasets/ here
    with pytest.raises(MissingRequirements) as err:
        ib.run_suite(path)
    assert len(err.value.items) == 1 and err.value.items[0].startswith("dataset datasets/")
    assert BUILD[path.stem] in str(err.value) and "--out datasets/" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing was written


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_a_real_suite_runs_every_registered_method(path):
    suite = load_suite(path)
    families = {MODELS.get(m.name).model_cls for m in suite.models}
    # every family, by one of its presets (a guided family by its unguided one: deepfill-v2 computes no sketch,
    # EdgeConnect draws its own edges)
    wanted = {MODELS.get(n).model_cls for n in ib.list_models("*") if not n.endswith("-tiny")}
    if suite.dataset.path.endswith("-256"):  # the mlp's weights grow with the side^2: 268M at 256, left out there
        wanted -= {MODELS.get("mlp").model_cls}
    assert wanted <= families, sorted(c.__name__ for c in wanted - families)
