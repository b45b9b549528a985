"""Published-protocol suites: missing items stop the suite before anything is written; ours next to theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintbench.benchmarks.harness import MissingRequirements, run_suite
from inpaintbench.benchmarks.suite import load_suite
from inpaintbench.cli import main
from inpaintbench.datasets.folder import build_folder
from inpaintbench.models.store import import_checkpoint
from tests.models.test_checkpoints import mmagic_gl_state_dict

PUBLISHED = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "published").glob("*.toml"))


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_every_published_suite_validates_and_names_its_sources(path):
    suite = load_suite(path)
    assert suite.strict and suite.dataset.requires
    for run in suite.models:
        assert run.checkpoint and run.requires
        # the published numbers with their source, or why there are none yet and where to copy them from
        assert (run.published and all(p.source for p in run.published)) or run.published_note


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_without_data_a_published_suite_lists_what_is_missing_and_writes_nothing(path, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.chdir(tmp_path)  # an empty working area: no datasets, no store
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err
    suite = load_suite(path)
    lines = [line for line in err.splitlines() if line.startswith("  - ")]
    sets = [level for level in suite.levels if "/" in level]
    assert len(lines) == 1 + len(sets) + len(suite.models)  # the dataset, imported mask sets, checkpoints
    assert all("`inpaintbench " in line for line in lines)  # each with the command that provides it
    assert list(tmp_path.iterdir()) == []


def _photo_folder(root: Path, n: int = 6) -> Path:
    import skimage.data

    folder = root / "photos"
    folder.mkdir()
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "camera", "cat"][:n]):
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        Image.fromarray(image[..., :3]).save(folder / f"{i:05d}.png")
    return folder


def test_a_published_suite_prints_ours_theirs_and_the_difference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _photo_folder(tmp_path)
    (tmp_path / "val.flist").write_text("00002.png\n00000.png\n00004.png\n00001.png\n")
    build_folder("datasets/faces-64", folder, size=64, list_file=tmp_path / "val.flist")
    state, _ = mmagic_gl_state_dict()
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "gl.pth")
    import_checkpoint("glcic", tmp_path / "gl.pth", name="gl-zoo")
    (tmp_path / "suite.toml").write_text('''
name = "zoo"
strict = true
metrics = ["psnr", "ssim", "l1_hole"]
[dataset]
path = "datasets/faces-64"
requires = "`inpaintbench data build folder ...`"
[masks]
levels = ["center-box"]
count = 4
[[models]]
name = "glcic"
label = "GL (zoo)"
checkpoint = "gl-zoo"
requires = "`inpaintbench weights import-model glcic FILE --name gl-zoo`"
[[models.published]]
source = "a zoo table"
psnr = 23.152
ssim = 0.862
l1_hole = 0.11164
''')
    results = run_suite(tmp_path / "suite.toml")
    report = (results.parent / "README.md").read_text()
    assert "## Against the published numbers" in report
    import pandas as pd

    frame = pd.read_parquet(results)
    ours = frame["psnr"].mean()
    row = next(line for line in report.splitlines() if line.startswith("| GL (zoo)") and "PSNR" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{ours:.2f}" and cells[4] == "23.15" and cells[5] == f"{ours - 23.152:+.2f}"
    assert ("beyond" in cells[6]) == (abs(ours - 23.152) > 0.5)
    assert list(frame["key"]) == ["folder-0000000", "folder-0000001", "folder-0000002", "folder-0000003"]


def test_missing_items_is_one_error_with_every_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingRequirements) as err:
        run_suite(PUBLISHED[0])
    assert len(err.value.items) >= 2 and not (tmp_path / "reports").exists()
