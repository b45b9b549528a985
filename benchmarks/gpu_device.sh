#!/usr/bin/env bash
# The command for a lent device machine: the device tool's `run` with carry [".whl"] (made here first by
# benchmarks/gpu_wheels.sh) and the command `bash benchmarks/gpu_device.sh --budget 300`. It runs under the image's
# python3 and its packages, torch included (the project's pins do not apply there), with the carried wheels
# unpacked into a temporary folder and inpaintbench from src/ on PYTHONPATH: nothing is installed into the image.
# It prints the versions and the GPU it runs on, then runs benchmarks/gpu.py with its arguments, writing the two
# result files and the log (gpu-log.txt) into $OUT (benchmarks/results/ where OUT is unset).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-benchmarks/results}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
if compgen -G ".whl/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
fi
export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out"
{
    "$python" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| torchvision', torchvision.__version__, '| CUDA', torch.version.cuda, torch.cuda.is_available())"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
    "$python" benchmarks/gpu.py --out-dir "$out" "$@"
} 2>&1 | tee "$out/gpu-log.txt"
