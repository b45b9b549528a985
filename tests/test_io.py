import errno
import os
import subprocess
import sys

import pytest

from inpaintbench._io import AlreadyThere, atomic_folder, atomic_write, partial_name, remove_stale_partials
from inpaintbench._registry import InpaintbenchError


def _full_disk(path):
    path.write_bytes(b"half of it")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_names_the_file_and_keeps_the_old_content(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_bytes(b"before")
    with pytest.raises(InpaintbenchError) as err:
        atomic_write(target, _full_disk)
    assert str(err.value) == f"writing {target} failed: No space left on device (ENOSPC)"
    assert target.read_bytes() == b"before" and sorted(tmp_path.iterdir()) == [target]
    atomic_write(target, lambda p: p.write_bytes(b"after"))
    assert target.read_bytes() == b"after" and sorted(tmp_path.iterdir()) == [target]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(InpaintbenchError, match=f"writing the run folder {folder} failed: No space left on device"):
        with atomic_folder(folder, "writing the run folder") as tmp:
            (tmp / "a.png").write_bytes(b"x")
            _full_disk(tmp / "b.png")
    assert list(tmp_path.iterdir()) == []
    with atomic_folder(folder) as tmp:
        (tmp / "a.png").write_bytes(b"x")
    assert [p.name for p in folder.iterdir()] == ["a.png"]
    with atomic_folder(folder) as tmp:  # replaces the folder that is there
        (tmp / "b.png").write_bytes(b"y")
    assert [p.name for p in folder.iterdir()] == ["b.png"]
    with pytest.raises(AlreadyThere):  # unless told to keep it
        with atomic_folder(folder, replace=False) as tmp:
            (tmp / "c.png").write_bytes(b"z")
    assert [p.name for p in folder.iterdir()] == ["b.png"] and sorted(tmp_path.iterdir()) == [folder]


def test_only_the_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = os.getppid()
    for name in [f"a.parquet.partial-{dead.stdout.strip()}", f"b.png.partial-{alive}", "c.csv.partial", "d.png"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / f"run.partial-{dead.stdout.strip()}").mkdir()
    removed = remove_stale_partials(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f"a.parquet.partial-{dead.stdout.strip()}", "c.csv.partial",
                                                      f"run.partial-{dead.stdout.strip()}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"b.png.partial-{alive}", "d.png"]
    assert partial_name(tmp_path / "x.json").name == f"x.json.partial-{os.getpid()}"
