import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import draw_masks, load_mask_set, make_mask_set


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_frozen_set_layout_and_manifest(tmp_path):
    folder = make_mask_set("L3", count=12, size=64, seed=2, out=tmp_path / "set")
    manifest = pd.read_parquet(folder / "manifest.parquet")
    assert list(manifest.columns) == ["index", "area_ratio", "components", "touches_border", "sha256"]
    assert len(manifest) == 12 and (folder / "000011.png").exists()
    masks, _, info = load_mask_set(folder)
    assert info["seed"] == 2 and info["size"] == 64
    np.testing.assert_array_equal(masks, draw_masks("L3", 12, size=64, seed=2))
    np.testing.assert_allclose(manifest["area_ratio"], masks.reshape(12, -1).mean(1))
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("level", ["L2", "L6", "lama-thin-256", "deepfillv2-ff"])
def test_one_and_two_workers_give_identical_bytes(tmp_path, level):
    one = make_mask_set(level, count=24, size=64, seed=9, out=tmp_path / "one", workers=1)
    two = make_mask_set(level, count=24, size=64, seed=9, out=tmp_path / "two", workers=2)
    assert _files(one) == _files(two)


def test_existing_set_is_kept_and_a_different_one_refused(tmp_path):
    folder = make_mask_set("L1", count=3, size=32, out=tmp_path / "s")
    before = _files(folder)
    assert make_mask_set("L1", count=3, size=32, out=tmp_path / "s") == folder
    assert _files(folder) == before
    with pytest.raises(InpaintbenchError, match="different mask set"):
        make_mask_set("L1", count=4, size=32, out=tmp_path / "s")
    assert json.loads((folder / "set.json").read_text())["count"] == 3


def test_every_mask_is_checked_against_its_manifest(tmp_path):
    from inpaintbench.masks.sets import MaskSetMismatch, mask_png, verify_mask_set

    folder = make_mask_set("L2", count=6, size=32, out=tmp_path / "s")
    verify_mask_set(folder)
    victim = folder / "000004.png"
    original = victim.read_bytes()
    victim.write_bytes(mask_png(np.zeros((32, 32), np.uint8)))  # another valid PNG
    with pytest.raises(MaskSetMismatch, match=r"000004.png does not match the manifest \(sha256 ") as err:
        load_mask_set(folder)
    assert err.value.path == victim and "\n" not in str(err.value)
    victim.unlink()
    with pytest.raises(MaskSetMismatch, match="000004.png is missing"):
        verify_mask_set(folder)
    victim.write_bytes(original)
    manifest = pd.read_parquet(folder / "manifest.parquet")
    manifest.iloc[:5].to_parquet(folder / "manifest.parquet")
    with pytest.raises(MaskSetMismatch, match="lists 5 masks, set.json says 6"):
        verify_mask_set(folder)
    (folder / "manifest.parquet").write_bytes(b"garbage")
    with pytest.raises(MaskSetMismatch, match="manifest.parquet is unreadable"):
        verify_mask_set(folder)


def test_a_set_another_process_froze_first_is_kept(tmp_path, monkeypatch):
    from inpaintbench.masks import sets

    folder = tmp_path / "s"
    real = sets.atomic_folder

    def racing(path, *args, **kwargs):  # the same set appears while ours is written
        if Path(path) == folder:
            make_mask_set("L1", count=3, size=32, out=tmp_path / "other")
            (tmp_path / "other").rename(folder)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sets, "atomic_folder", racing)
    assert make_mask_set("L1", count=3, size=32, out=folder) == folder
    load_mask_set(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    monkeypatch.setattr(sets, "atomic_folder", real)
    with pytest.raises(InpaintbenchError, match="holds a different mask set"):
        sets._write_set(folder, [b""], [{"index": 0}], {"name": "another"})


def test_set_name_carries_the_spec_version_past_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert make_mask_set("L1-v1", count=2, size=32).name == "L1-v1-32px-n2-seed0"
    assert make_mask_set("L1", count=2, size=32).name == "L1-v2-32px-n2-seed0"  # never an old L1 set's name
    assert make_mask_set("lama-thin-256", count=2, size=32).name == "lama-thin-256-v2-32px-n2-seed0"
    info = json.loads((tmp_path / "masks/sets/lama-thin-256-v2-32px-n2-seed0/set.json").read_text())
    assert info["spec"]["version"] == 2


def test_a_set_from_before_versions_is_kept_when_unchanged_and_refused_when_the_drawing_changed(tmp_path):
    old = make_mask_set("L1-v1", count=3, size=32, out=tmp_path / "L1")
    info = json.loads((old / "set.json").read_text())
    del info["spec"]["version"]  # set.json as written before specs had versions
    (old / "set.json").write_text(json.dumps(info))
    assert make_mask_set("L1-v1", count=3, size=32, out=old) == old  # the first ladder: still version 1
    with pytest.raises(InpaintbenchError, match="drawing version 1, this spec draws version 2"):
        make_mask_set("L1", count=3, size=32, out=old)  # an old L1 set is never taken for the new ladder's
    legacy = make_mask_set("lama-thin-256", count=3, size=32, out=tmp_path / "lama")
    info = json.loads((legacy / "set.json").read_text())
    info["spec"]["version"] = 1
    (legacy / "set.json").write_text(json.dumps(info))
    with pytest.raises(InpaintbenchError, match="drawing version 1, this spec draws version 2"):
        make_mask_set("lama-thin-256", count=3, size=32, out=legacy)


def test_a_folder_of_the_users_files_is_refused_without_advice_to_delete_it(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InpaintbenchError, match=r"mine is a folder of other files \(notes.txt\), not a mask set: "
                                                r"choose another --out$"):
        make_mask_set("L1", count=2, size=32, seed=0, out=tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
