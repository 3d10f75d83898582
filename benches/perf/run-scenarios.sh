#!/usr/bin/env bash
# The resource scenarios, each on a fresh server process:
#   idle    10,000 idle authenticated connections: server RSS per connection
#   list    `list` with 10,000 live sessions, against the baseline
#   drain   one inbox of 10k, 100k and 1M messages drained by one `inbox`:
#           time (linear?) and peak server memory over the reply's size
#   cycles  1,000,000 auth/logout cycles after 100,000 warm-up cycles:
#           server RSS at the end of each (no growth)
# Reports go to benches/perf/results/{idle-rK,list,drain-N-rK,cycles-*}.json, and
# benches/perf/summarize.py turns them into tables.
#
# Environment: see benches/perf/common.sh, and RUNS (3), SCENARIOS ("idle list drain
# cycles"), DRAIN_SIZES ("10000 100000 1000000"), IDLE (10000),
# DRAIN_PIPELINE (64; use 1 for a server that merges pipelined requests).
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-"idle list drain cycles"}
DRAIN_SIZES=${DRAIN_SIZES:-"10000 100000 1000000"}
IDLE=${IDLE:-10000}
DRAIN_PIPELINE=${DRAIN_PIPELINE:-64}

note_load
for scenario in $SCENARIOS; do
    case $scenario in
    idle)
        for run in $(seq "$RUNS"); do
            echo "== idle: $IDLE idle authenticated connections, run $run"
            start_server
            "$BIN" bench --connect "$ADDR" --idle "$IDLE" -c 0 -n 0 \
                --server-pid "$SERVER_PID" --quiet --json "$OUT/idle-r$run.json" \
                | { grep -E "RSS|failure" || true; }
            stop_server
        done
        ;;
    list)
        echo "== list with $IDLE live sessions"
        start_server
        "$BIN" bench --connect "$ADDR" --baseline --mix list --sessions "$IDLE" -c 100 \
            -d 5s --warmup 1s --runs "$RUNS" --server-pid "$SERVER_PID" --quiet \
            --json "$OUT/list.json" | { grep -E "^(server|baseline)[: ]|^warning" || true; }
        stop_server
        ;;
    drain)
        for n in $DRAIN_SIZES; do
            for run in $(seq "$RUNS"); do
                echo "== drain: $n messages, run $run"
                start_server
                "$BIN" bench --connect "$ADDR" --inbox-drain "$n" -c 4 \
                    --pipeline "$DRAIN_PIPELINE" --server-pid "$SERVER_PID" --timeout 60s \
                    --quiet --json "$OUT/drain-$n-r$run.json" | { grep -E "messages|RSS" || true; }
                stop_server
            done
        done
        ;;
    cycles)
        echo "== auth/logout: 100,000 cycles, then 1,000,000 more, same server"
        start_server
        "$BIN" bench --connect "$ADDR" --mix auth,logout -c 10 -n 200000 \
            --server-pid "$SERVER_PID" --quiet --json "$OUT/cycles-warm.json" | { grep -E "req/s|RSS" || true; }
        "$BIN" bench --connect "$ADDR" --mix auth,logout -c 10 -n 2000000 \
            --server-pid "$SERVER_PID" --quiet --json "$OUT/cycles-1m.json" | { grep -E "req/s|RSS" || true; }
        stop_server
        ;;
    *)
        echo "unknown scenario $scenario" >&2
        exit 2
        ;;
    esac
done
note_load
python3 benches/perf/summarize.py "$OUT" | tee "$OUT/summary.md"
