"""benchmarks/gpu.py --quick runs on the CPU, so the prepared device benchmark cannot rot."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import inpaintbench as ib
from inpaintbench.models import MODELS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def _load(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_bench", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_writes_every_field_for_every_tiny_model(tmp_path, monkeypatch):
    module = _load(monkeypatch)
    markdown = module.main(["--quick", "--out-dir", str(tmp_path)])
    report = json.loads(markdown.with_suffix(".json").read_text())
    tiny = [n for n in ib.list_models("*-tiny") if MODELS.get(n).model_cls.trainable]
    # every tiny model once, the target generators first (a run cut short by its budget keeps those), the rest in
    # the registry's order
    order = [r["model"] for r in report["models"]]
    targets = ["unet-tiny", "glcic-tiny", "pconv-tiny", "deepfill-v1-tiny", "deepfill-v2-tiny", "edgeconnect-tiny",
               "aot-gan-tiny", "lama-tiny"]
    assert order[:8] == targets and order[8:] == [n for n in tiny if n not in targets] and sorted(order) == sorted(tiny)
    for row in report["models"]:
        assert "failed" not in row["notes"], row
        assert row["fp32_images_s"] > 0 and row["inference_images_s"] > 0 and row["train_gflops_per_image"] > 0
        assert row["batch"] == 4 and row["size"] == 32
        shares = [float(entry.rsplit(" ", 1)[1].rstrip("%")) for entry in row["profile_top"]]
        assert 0 < len(shares) <= 5 and shares == sorted(shares, reverse=True) and sum(shares) <= 101
    assert report["data"]["loader_images_s"] > 0
    assert all(0 <= w["wait_share"] <= 1 and w["steps"] == 2 for w in report["data"]["waits"])
    assert report["metrics"]["psnr_ssim_images_s"] > 0 and "inception_images_s" in report["metrics"]
    text = markdown.read_text()
    assert all(f"| {name} |" in text for name in tiny) and "Data path" in text and "Where the step's time goes" in text


def test_what_was_measured_is_on_disk_when_a_later_part_fails(tmp_path, monkeypatch):
    # a device run is lent for minutes: the files are written after every row, and a failing part is reported
    module = _load(monkeypatch)
    monkeypatch.setattr(module, "data_path", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(module, "metric_speed", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # the command cut short, say
        module.main(["--quick", "--models", "cnn-tiny", "--out-dir", str(tmp_path)])
    (json_file,) = tmp_path.glob("gpu-*.json")
    report = json.loads(json_file.read_text())
    assert [r["model"] for r in report["models"]] == ["cnn-tiny"] and report["models"][0]["fp32_images_s"] > 0
    assert report["data_error"].startswith("ZeroDivisionError") and "metrics" not in report
    assert "Data measurement failed: ZeroDivisionError" in json_file.with_suffix(".md").read_text()


@pytest.mark.slow
def test_the_device_command_writes_both_result_files_and_its_log(tmp_path):
    # benchmarks/gpu_device.sh is what a lent GPU machine runs: inpaintbench from src/, output into $OUT
    import os
    import subprocess

    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    subprocess.run(["bash", str(SCRIPT.parent / "gpu_device.sh"), "--quick", "--models", "cnn-tiny"], env=env,
                   check=True, capture_output=True, timeout=600)
    (json_file,) = out.glob("gpu-*.json")
    assert [r["model"] for r in json.loads(json_file.read_text())["models"]] == ["cnn-tiny"]
    assert json_file.with_suffix(".md").is_file()
    log = (out / "gpu-log.txt").read_text()
    assert log.startswith("python ") and "| torch " in log and str(json_file.with_suffix(".md")) in log
