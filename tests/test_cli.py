"""The CLI wiring: help, and one-line errors with exit code 2 for bad input."""

import subprocess
import sys

import pytest

from inpaintbench.cli import main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ["demo", "data", "masks", "models", "train", "bench", "report"]:
        assert command in out


def test_models_list_and_levels(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "cnn" in out and "cnn-tiny" in out and "parameters" in out
    assert main(["masks", "levels"]) == 0
    levels = capsys.readouterr().out
    for name in ["L6", "lama-thick-256", "nvidia-bin6", "area-50-60-interior", "loc-side"]:
        assert name in levels


@pytest.mark.parametrize("args, message", [
    (["train", "gan-9000", "--data", "x"], "unknown model 'gan-9000'"),
    (["masks", "make", "L42", "--count", "2"], "unknown mask level or preset 'L42'"),
    (["train", "cnn", "--data", "no/such/dataset", "--steps", "1"], "no dataset at no/such/dataset"),
    (["bench", "no-such-suite.toml"], "suite file no-such-suite.toml does not exist"),
    (["report", "missing.parquet"], "results file missing.parquet does not exist"),
    (["data", "build", "imagenet"], "unknown dataset source 'imagenet'"),
    (["data", "build", "sample", "--source", "x"], "dataset source 'sample' takes no option source_dir"),
    (["data", "build", "celeba", "--source", "missing"], "CelebA source missing is not a folder"),
    (["masks", "make", "L1", "--count", "nope"], "'nope' is not a valid integer"),
    (["masks", "import", "missing.zip", "--holes", "white"], "missing.zip does not exist"),
    (["masks", "import", "missing.zip", "--holes", "grey"], "'grey' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_malformed_suite_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('name = "x"\n[dataset]\npath = "d"\n[masks]\nlevels = ["L1"]\n'
                                     '[[models]]\nname = "cnn"\nlr = 3\n')
    assert main(["bench", "s.toml"]) == 2
    assert "s.toml: [[models]] #1 (cnn) lr: unknown key; allowed: checkpoint" in capsys.readouterr().err


def test_console_script_exit_code_and_debug_traceback(tmp_path):
    cmd = [sys.executable, "-m", "inpaintbench.cli"]
    quiet = subprocess.run(cmd + ["bench", "nope.toml"], capture_output=True, text=True, cwd=tmp_path)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = subprocess.run(cmd + ["--debug", "bench", "nope.toml"], capture_output=True, text=True, cwd=tmp_path)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_masks_make_and_preview(tmp_path, capsys):
    assert main(["masks", "make", "L2", "--size", "32", "--count", "4", "--out", str(tmp_path / "set")]) == 0
    assert (tmp_path / "set" / "manifest.parquet").exists()
    assert main(["masks", "preview", "L1", "--size", "32", "--count", "16", "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "L1.png").exists()


def test_eval_takes_a_run_folder_its_weights_file_or_its_resumable_state(tmp_path, capsys, sample32):
    run = tmp_path / "run"
    assert main(["train", "cnn-tiny", "--data", str(sample32), "--out", str(run), "--steps", "4", "--batch-size", "4",
                 "-T", "keep_state=true"]) == 0
    printed = []
    for checkpoint in (run, run / "model.safetensors", run / "checkpoint.pt"):
        capsys.readouterr()
        assert main(["eval", str(checkpoint), "--data", str(sample32), "--masks", "L3", "--count", "4",
                     "--out", str(tmp_path / "rows.parquet")]) == 0
        out = capsys.readouterr().out
        assert "cnn-tiny on 4 images of test" in out and "| psnr" in out
        printed.append(out.split("\n", 1)[1])
    assert printed[0] == printed[1] == printed[2]  # the same weights, whichever file names them
    assert main(["eval", str(tmp_path / "nothing-here"), "--data", str(sample32), "--masks", "L3"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["eval", str(run), "--data", str(sample32), "--masks", "L3", "--count", "0"]) == 2
    assert capsys.readouterr().err == "error: count must be at least 1, got 0\n"


def test_report_refuses_a_damaged_or_foreign_parquet_file_in_one_line(tmp_path, capsys):
    import pandas as pd

    (tmp_path / "cut.parquet").write_bytes(b"PAR1\x00")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")
    for name, message in [("cut", "is not a readable parquet file (ArrowInvalid)"),
                          ("other", "is not a results file of `inpaintbench bench`: it has no model or level column")]:
        assert main(["report", str(tmp_path / f"{name}.parquet"), "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not (tmp_path / name).exists()  # nothing written
    (tmp_path / "suite").mkdir()
    assert main(["report", str(tmp_path / "suite")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'suite'} is a folder without a results.parquet; run "
                                       "`inpaintbench bench` first\n")
