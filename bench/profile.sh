#!/usr/bin/env bash
# Profiles a benchmark server under one ferrio-bench scenario (the commands behind the
# profiles in docs/BENCHMARKS.md).
#
#   bench/profile.sh perf SERVER_BIN OUT.data SCENARIO [ferrio-bench args...]
#       CPU: `perf record -e cpu-clock` of the server (pinned to CPU 0) for 3 s of the
#       scenario (generator on CPU 1), then the top symbols.
#   bench/profile.sh heap SERVER_BIN OUT_PREFIX SCENARIO [ferrio-bench args...]
#       Memory: the server under heaptrack, then its peak consumers.
#   bench/profile.sh callgrind SERVER_BIN OUT.cg SCENARIO [ferrio-bench args...]
#       CPU, repeatable on a busy machine: the server under callgrind, instructions counted
#       only in a 4 s window of the scenario (after 4 s of load), then the instructions per
#       operation (divided by the calls of COUNT_FN, default the Socket.IO decoder's
#       `handle_text_at`: one per incoming text packet) and the top functions.
#   bench/profile.sh callgrind-total SERVER_BIN OUT.cg SCENARIO [ferrio-bench args...]
#       As callgrind, but instructions counted over the server's whole life (start, the
#       scenario, the closes, the stop). The difference of two runs that differ only in
#       --clients, divided by the difference of clients, is the cost of one connection's
#       life (handshake, CONNECT, close), e.g. connections --clients 1000 and 3000.
#
# Example: bench/profile.sh perf target/release/bench-server /tmp/echo.data echo --clients 100
# Build first: cargo build --release -p ferrio-test-servers --bin bench-server \
#   -p ferrio-bench --bin ferrio-bench
set -euo pipefail
mode=$1 bin=$2 out=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
gen="${GEN:-$root/target/release/ferrio-bench}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

case "$mode" in
perf) taskset -c 0 "$bin" 0 >"$log" 2>/dev/null & ;;
heap) heaptrack -o "$out" "$bin" 0 >"$log" 2>/dev/null & ;;
callgrind) taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bin" 0 >"$log" 2>/dev/null & ;;
callgrind-total) taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin" 0 >"$log" 2>/dev/null & ;;
*) echo "usage: $0 perf|heap|callgrind|callgrind-total SERVER_BIN OUT SCENARIO [args...]" >&2; exit 2 ;;
esac
for _ in $(seq 600); do grep -q ' pid ' "$log" && break; sleep 0.1; done
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
elif [ "$mode" = callgrind ]; then
    taskset -c 1 "$gen" "$@" --addr "$addr" --pid "$pid" --warmup 4 --duration 6 >/dev/null &
    gen_pid=$!
    sleep 4.5
    callgrind_control -i on "$pid" >/dev/null
    sleep 4
    callgrind_control -i off "$pid" >/dev/null
    wait "$gen_pid"
    stop
    python3 - "$out" "${COUNT_FN:-handle_text_at}" <<'PY'
import re, sys
path, count_fn = sys.argv[1], sys.argv[2]
names, total, calls, cfn = {}, 0, 0, None
for line in open(path):
    m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?', line)
    if m:
        kind, ident, name = m.groups()
        if name:
            names[ident] = name
        if kind == 'cfn':
            cfn = names.get(ident, '')
        continue
    if line.startswith('summary:') or line.startswith('totals:'):
        total = int(line.split()[1])
    elif line.startswith('calls=') and cfn is not None and count_fn in cfn:
        calls += int(line.split('=')[1].split()[0])
ops = calls or 1
print(f"instructions {total} calls of {count_fn} {calls} instructions per op {total // ops}")
PY
    callgrind_annotate --auto=no "$out" 2>/dev/null | sed -e 's/::h[0-9a-f]\{16\}//g' \
        | grep -E '^ *[0-9,]+ \(' | head -30
elif [ "$mode" = callgrind-total ]; then
    taskset -c 1 "$gen" "$@" --addr "$addr" --pid "$pid" >/dev/null
    # Let the server see every close before it stops.
    sleep 2
    stop
    grep -E '^(summary|totals):' "$out" | head -1
else
    "$gen" "$@" --addr "$addr" --pid "$pid"
    stop
    heaptrack_print -f "$out".zst --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 --peak-limit 30 --sub-peak-limit 25 2>/dev/null \
        | grep -E 'consumed over|ferrio|hyper::|tokio::sync|RawTask::new' \
        | sed -e 's/::h[0-9a-f]\{16\}//g' | head -120
fi
