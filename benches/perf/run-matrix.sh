#!/usr/bin/env bash
# The throughput and latency matrix: the server under test against the
# built-in baseline (a constant-reply server in the generator's process), at
# 10, 100 and 1,000 connections, for the `send,inbox` mix and for `send`
# alone, unpipelined and at pipeline depth 16. Each point is RUNS runs of
# each, alternating, with a fresh server process per point; the report is
# benches/perf/results/matrix-*.json and, from benches/perf/summarize.py, a markdown table.
#
#   benches/perf/run-matrix.sh                       # the reference server
#   SERVER_CMD="python3 server_thread_chat.py" ADDR=127.0.0.1:8889 PIPELINES=1 \
#     OUT=benches/perf/results/python benches/perf/run-matrix.sh
#
# Environment: see benches/perf/common.sh, and
#   RUNS (3), DURATION (5s), WARMUP (1s), CONNECTIONS ("10 100 1000"),
#   MIXES ("send,inbox send"), PIPELINES ("1 16").
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-"10 100 1000"}
MIXES=${MIXES:-"send,inbox send"}
PIPELINES=${PIPELINES:-"1 16"}

note_load
for mix in $MIXES; do
    for c in $CONNECTIONS; do
        for p in $PIPELINES; do
            name="matrix-${mix//,/-}-c$c-p$p"
            echo "== $name"
            start_server
            "$BIN" bench --connect "$ADDR" --baseline --mix "$mix" -c "$c" --pipeline "$p" \
                -d "$DURATION" --warmup "$WARMUP" --runs "$RUNS" --server-pid "$SERVER_PID" \
                --quiet --json "$OUT/$name.json" | { grep -E "^(server|baseline)[: ]|^warning" || true; }
            stop_server
        done
    done
done
note_load
python3 benches/perf/summarize.py "$OUT" | tee "$OUT/summary.md"
