"""benchmarks/lama_aot_speed.py runs end to end in its --quick mode and writes its tables."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_lama_aot_speed_quick_mode_writes_training_and_inference_rows(tmp_path):
    out = tmp_path / "lama_aot_speed.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lama_aot_speed.py"), "--quick", "--out", str(out)],
                   check=True, env=env, capture_output=True, cwd=ROOT / "benchmarks", timeout=600)
    text = out.read_text()
    assert "Training speed" in text and "Inference on the CPU" in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(("| lama-tiny", "| aot-gan-tiny"))]
    assert [(r[0], r[1]) for r in rows] == [("lama-tiny", "32x32"), ("aot-gan-tiny", "32x32")] * 2
    train, infer = rows[:2], rows[2:]
    assert all(float(r[2]) > 0 for r in train)  # images/s by CPU time
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in infer)  # CPU seconds per MP, GFLOPs counted at 256
