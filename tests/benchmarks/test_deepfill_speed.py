"""benchmarks/deepfill_speed.py runs end to end in its --quick mode and writes its table."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_deepfill_speed_quick_mode_writes_both_models_rows(tmp_path):
    out = tmp_path / "deepfill_speed.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TQDM_DISABLE": "1"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "deepfill_speed.py"), "--quick", "--out", str(out)],
                   check=True, env=env, capture_output=True, cwd=ROOT / "benchmarks", timeout=600)
    text = out.read_text()
    assert "attention share (ablation)" in text
    rows = [line for line in text.splitlines() if line.startswith("| deepfill-")]
    assert {row.split("|")[1].strip() for row in rows} == {"deepfill-v1-tiny", "deepfill-v2-tiny"}
    measured = [row for row in rows if "not measured" not in row]
    assert measured and all(float(row.split("|")[4]) > 0 for row in measured)
