"""Published-protocol suites: missing items stop the suite before anything is written; ours next to theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintbench.bench import run_suite
from inpaintbench.benchmarks.harness import MissingRequirements
from inpaintbench.benchmarks.metrics import METRICS
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


@pytest.fixture
def no_metric_weights(tmp_path_factory, monkeypatch):
    """A torch hub without any file (outside the working area), so every metric network a suite needs is missing."""
    hub = tmp_path_factory.mktemp("empty-hub")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def _metric_weights(suite) -> list[str]:
    return list(dict.fromkeys(w for m in suite.metrics for w in METRICS.get(m).weights))


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_without_data_a_published_suite_lists_what_is_missing_and_writes_nothing(path, tmp_path, monkeypatch,
                                                                                   capsys, no_metric_weights):
    monkeypatch.chdir(tmp_path)  # an empty working area: no datasets, no store, no metric networks
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err
    suite = load_suite(path)
    lines = [line for line in err.splitlines() if line.startswith("  - ")]
    sets = [level for level in suite.levels if "/" in level]
    # the dataset, imported mask sets, checkpoints, and the metrics' networks (a strict suite checks them first)
    assert len(lines) == 1 + len(sets) + len(suite.models) + len(_metric_weights(suite))
    assert all("`inpaintbench " in line for line in lines)  # each with the command that provides it
    assert list(tmp_path.iterdir()) == []


def test_lama_celebahq_without_data_names_each_missing_item_and_exits_2(tmp_path, monkeypatch, capsys,
                                                                         no_metric_weights):
    """Issue 13's acceptance: `inpaintbench bench benchmarks/published/lama-celebahq.toml` without data."""
    path = next(p for p in PUBLISHED if p.name == "lama-celebahq.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    first, *items = captured.err.splitlines()
    assert "lama-celebahq cannot run: 4 missing items (nothing was written)" in first
    assert items[0].startswith("  - dataset datasets/celebahq-256-lama: `inpaintbench data build folder ")
    assert "--list val_shuffled.flist --size 256" in items[0]
    assert items[1].startswith("  - checkpoint lama-fourier-celebahq (LaMa-Fourier (authors, CelebA-HQ)): "
                               "`inpaintbench weights import-model lama-fourier best.ckpt ")
    assert [i.split(":")[0] for i in items[2:]] == ["  - weights inception", "  - weights vgg16"]  # FID, LPIPS-VGG
    assert list(tmp_path.iterdir()) == []
    suite = load_suite(path)  # LaMa's own evaluation masks, one per image of the 2,000
    assert suite.levels == ("lama-thin-256", "lama-medium-256", "lama-thick-256") and suite.mask_count == 2000
    # LaMa's Table 1 (CelebA-HQ 256, LaMa-Fourier): narrow and wide masks, read as thin and thick
    assert [(p.level, p.values) for p in suite.models[0].published] == [
        ("lama-thin-256", {"fid": 7.26, "lpips_vgg": 0.085}), ("lama-thick-256", {"fid": 6.96, "lpips_vgg": 0.098})]


def test_aotgan_suite_publishes_each_area_bin_of_the_paper_and_of_mmagic():
    suite = load_suite(next(p for p in PUBLISHED if p.name == "aotgan-places512.toml"))
    authors, mmagic = suite.models
    assert [p.level for p in authors.published] == list(suite.levels) == [p.level for p in mmagic.published]
    assert [p.values["psnr"] for p in authors.published] == [34.79, 29.49, 26.03, 23.58, 21.65, 19.01]
    assert "psnr" not in mmagic.published[0].values  # MMagic printed inf for 1-10%
    assert all("l1" not in p.values for p in authors.published + mmagic.published)  # a relative L1: notes only


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


def test_a_stored_training_run_reports_its_cards_steps_and_an_imported_file_none(tmp_path, monkeypatch, sample32):
    """A suite row that evaluates a stored checkpoint shows the steps that made it (0 for an imported file)."""
    import pandas as pd

    from inpaintbench.models.train import train_model

    monkeypatch.chdir(tmp_path)
    train_model("cnn-tiny", sample32, out="models/checkpoints/cnn-run", steps=3, batch_size=4)
    state, _ = mmagic_gl_state_dict()
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "gl.pth")
    import_checkpoint("glcic", tmp_path / "gl.pth", name="gl-zoo")
    (tmp_path / "suite.toml").write_text(f'''
name = "stored"
metrics = ["psnr"]
[dataset]
path = "{sample32}"
split = "test"
[masks]
levels = ["L1"]
count = 4
[[models]]
name = "cnn-tiny"
checkpoint = "cnn-run"
[[models]]
name = "glcic"
checkpoint = "gl-zoo"
''')
    results = run_suite(tmp_path / "suite.toml")
    steps = pd.read_parquet(results).groupby("model_name")["train_steps"].first().to_dict()
    assert steps == {"cnn-tiny": 3, "glcic": 0}
    report = (results.parent / "README.md").read_text()
    assert next(line for line in report.splitlines() if line.startswith("| cnn-tiny ")).split("|")[4].strip() == "3"
