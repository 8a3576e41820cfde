#!/usr/bin/env bash
# Run the GPU suite past a per-command time limit, and always bring its evidence back.
#
#   bash tools/gpu_box/background.sh start [pytest args]   # run_suite.sh, detached (setsid)
#   bash tools/gpu_box/background.sh wait [SECONDS]         # wait up to SECONDS (default 540)
#
# `start` writes into $BG (default /tmp/gpu-bg), outside the folder a remote-run tool
# returns, so `wait` copies gpu-suite.log, figures.json, junit.xml and gpu.txt into $OUT
# every time it returns, finished or not. Exit status of `wait`: the suite's own when it
# has finished, 99 while it is still running (call `wait` again).
# Seen on 2026-12-05: a suite started like this outlived its 10-minute call, finished, and
# its files were lost because nothing copied them before the machine went back.
set -uo pipefail
cd "$(dirname "$0")/../.."
BG=${BG:-/tmp/gpu-bg}
OUT=${OUT:-gpu-out}

case "${1:-}" in
  start)
    shift
    rm -rf "$BG" && mkdir -p "$BG"
    quoted=$(printf ' %q' "$@")
    setsid nohup bash -c "OUT='$BG' bash tools/gpu_box/run_suite.sh$quoted; echo \$? > '$BG/rc'" \
      > "$BG/console.txt" 2>&1 < /dev/null &
    echo "suite started in the background (pid $!); results in $BG"
    ;;
  wait)
    limit=${2:-540}
    for ((i = 0; i < limit; i++)); do
      [ -f "$BG/rc" ] && break
      sleep 1
    done
    mkdir -p "$OUT"
    for f in gpu-suite.log figures.json junit.xml gpu.txt console.txt; do
      [ -f "$BG/$f" ] && cp "$BG/$f" "$OUT/"
    done
    if [ -f "$BG/rc" ]; then
      tail -n 40 "$BG/gpu-suite.log"
      exit "$(cat "$BG/rc")"
    fi
    echo "still running after ${limit}s: $(grep -cE 'PASSED|FAILED|ERROR|SKIPPED' "$BG/gpu-suite.log" 2>/dev/null) tests done"
    exit 99
    ;;
  *)
    sed -n '2,/^set -uo/p' "$0" | sed '$d'
    exit 2
    ;;
esac
