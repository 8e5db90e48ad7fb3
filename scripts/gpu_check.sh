#!/usr/bin/env bash
# One prepared check of the GPU path on one CUDA GPU (at most ~8 minutes; default budget 450 s):
# the CUDA-marked tests, training throughput (MobileFaceNet / IR-50, plain vs ARFace, bf16), embedding
# throughput, MegaFace 1M and IJB-C full size on the GPU, torch.compile; every figure in one JSON.
#
#   bash scripts/gpu_check.sh [--out FILE] [--budget SECONDS] [--skip STAGES] [--smoke]
#
# The JSON goes to --out, else $ARFACE_OUT/gpu_check.json, else results/gpu_check.json, with gpu_check.log
# and gpu_check_pytest.xml beside it. Nothing is installed into site-packages: this checkout is put on
# PYTHONPATH; Python wheels in .whl/ (for a machine without a package index) go to a temporary folder.
# Stages and options: scripts/gpu_check.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PY" scripts/gpu_check.py "$@"
