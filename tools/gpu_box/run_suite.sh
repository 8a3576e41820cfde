#!/usr/bin/env bash
# Run the whole GPU suite on a GPU box and keep the evidence.
#   bash tools/gpu_box/run_suite.sh [extra pytest args]
# Writes $OUT/gpu-suite.log (pytest -m gpu -v), $OUT/figures.json (every figure a GPU lab
# recorded, with GPU, driver and library versions) and $OUT/junit.xml. OUT defaults to
# ./gpu-out. Works on a normal box (vllm installed with pip) and on the offline route
# (vllm in /tmp/site, see prepare.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# vLLM's environment for every GPU run, defined once (course/vllm.env says why each is set).
set -a; . course/vllm.env; set +a
export PYTHONUNBUFFERED=1
export MINI_VLLM_FIGURES_DIR="$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee -a "$OUT/gpu.txt"
import importlib
for m in ("torch", "triton", "vllm", "transformers"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:
        print(m, "MISSING", type(exc).__name__)
PY
python3 -m pytest -m gpu -v -rs --durations=0 -p no:cacheprovider --junitxml="$OUT/junit.xml" "$@" 2>&1 | tee "$OUT/gpu-suite.log"
exit "${PIPESTATUS[0]}"
