#!/usr/bin/env bash
# Run here, where the package registry answers: fetches into .whl/ (git-ignored) the wheels of the packages that
# benchmarks/gpu.py needs and the lent device machine's image lacks (the device tool's KINDS.md lists what the
# image holds: torch, torchvision, numpy, Pillow, OpenCV, scikit-image, pandas, pyarrow, click, tqdm, ...). The
# versions are the ones the tests run with; all are pure Python, so they install under the image's Python 3.12.
# PyPatchMatch (a classical baseline, not trained) is left out. Then: benchmarks/gpu_device.sh, on the device.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
    webdataset==1.0.2 braceexpand==0.1.7 lpips==0.1.4 torch-fidelity==0.4.0 aiolimiter==1.3.0 tenacity==9.2.1
ls .whl
du -sh .whl
