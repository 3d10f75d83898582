#!/usr/bin/env bash
# Two builds of the server, side by side, at the matrix's depth-16 points:
# for each point, a fresh server of each build in turn (the order swapped
# every round), each measured against the built-in baseline by the same
# generator (AFTER's `bench`). The throughput ratio to the baseline of the
# same run is what is compared, so that a machine slower in one minute than
# the next moves both sides alike. benches/perf/compare.py summarises it.
#
#   git worktree add /some/where/before OLD && (cd /some/where/before && cargo build --release)
#   BEFORE=/some/where/before/target/release/progjar-chat benches/perf/compare.sh
#
# Environment: BEFORE (required), AFTER (default: this tree's release
# build), ROUNDS (6), RUNS per round (2), DURATION (3s), WARMUP (1s),
# CONNECTIONS ("10 100 1000"), MIXES ("send,inbox send"), PIPELINE (16),
# OUT (benches/perf/results/compare), and ADDR / SERVER_FLAGS as in
# benches/perf/common.sh.
set -euo pipefail
: "${BEFORE:?set BEFORE to the progjar-chat binary to compare against}"
BIN=${AFTER:-target/release/progjar-chat}
OUT=${OUT:-benches/perf/results/compare}
source "$(dirname "$0")/common.sh"
BEFORE=$(realpath "$BEFORE")
AFTER=$(realpath "$BIN")

ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-2}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-"10 100 1000"}
MIXES=${MIXES:-"send,inbox send"}
PIPELINE=${PIPELINE:-16}

note_load
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then sides="before after"; else sides="after before"; fi
    for mix in $MIXES; do
        for c in $CONNECTIONS; do
            for side in $sides; do
                if [ "$side" = before ]; then server=$BEFORE; else server=$AFTER; fi
                SERVER_CMD="$server server --listen $ADDR $SERVER_FLAGS"
                start_server
                "$AFTER" bench --connect "$ADDR" --baseline --mix "$mix" -c "$c" \
                    --pipeline "$PIPELINE" -d "$DURATION" --warmup "$WARMUP" --runs "$RUNS" \
                    --server-pid "$SERVER_PID" --quiet \
                    --json "$OUT/$side-${mix//,/-}-c$c-r$round.json" >/dev/null
                stop_server
                echo "round $round: $mix, $c connections, $side ($(cut -d' ' -f1 /proc/loadavg))"
            done
        done
    done
done
note_load
python3 benches/perf/compare.py "$OUT" | tee "$OUT/summary.md"
