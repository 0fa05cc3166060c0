#!/usr/bin/env bash
# Profiles a benchmark server under one ferrio-bench scenario (the commands behind the
# profiles in docs/BENCHMARKS.md).
#
#   bench/profile.sh perf SERVER_BIN OUT.data SCENARIO [ferrio-bench args...]
#       CPU: `perf record -e cpu-clock` of the server (pinned to CPU 0) for 3 s of the
#       scenario (generator on CPU 1), then the top symbols.
#   bench/profile.sh heap SERVER_BIN OUT_PREFIX SCENARIO [ferrio-bench args...]
#       Memory: the server under heaptrack, then its peak consumers.
#
# Example: bench/profile.sh perf target/release/bench-server /tmp/echo.data echo --clients 100
# Build first: cargo build --release -p ferrio-test-servers --bin bench-server \
#   -p ferrio-bench --bin ferrio-bench
set -euo pipefail
mode=$1 bin=$2 out=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
gen="$root/target/release/ferrio-bench"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

case "$mode" in
perf) taskset -c 0 "$bin" 0 >"$log" 2>/dev/null & ;;
heap) heaptrack -o "$out" "$bin" 0 >"$log" 2>/dev/null & ;;
*) echo "usage: $0 perf|heap SERVER_BIN OUT SCENARIO [args...]" >&2; exit 2 ;;
esac
for _ in $(seq 100); do grep -q ' pid ' "$log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on \([^ ]*\) pid .*/\1/p' "$log")
pid=$(sed -n 's/.* pid \([0-9]*\)$/\1/p' "$log")
stop() { kill -INT "$pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap 'stop; rm -f "$log"' EXIT

if [ "$mode" = perf ]; then
    taskset -c 1 "$gen" "$@" --addr "$addr" --pid "$pid" --warmup 1 --duration 5 &
    gen_pid=$!
    sleep 1.5
    perf record -e cpu-clock -F 2000 -p "$pid" -o "$out" -- sleep 3 >/dev/null 2>&1
    wait "$gen_pid"
    stop
    perf report -i "$out" --stdio --no-children --sort dso,symbol 2>/dev/null \
        | grep -E '^\s+[0-9.]+%' | head -30
else
    "$gen" "$@" --addr "$addr" --pid "$pid"
    stop
    heaptrack_print -f "$out".zst --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 --peak-limit 30 --sub-peak-limit 25 2>/dev/null \
        | grep -E 'consumed over|ferrio|hyper::|tokio::sync|RawTask::new' \
        | sed -e 's/::h[0-9a-f]\{16\}//g' | head -120
fi
