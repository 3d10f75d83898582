#!/usr/bin/env bash
# How long grading takes, wall clock, with the Python fixtures as the
# students (tests/fixtures/chat_server.py and chat_client.py):
#
#   1. one server submission: `conform server --spawn` (a process per case);
#   2. a class of 11 submissions, each a server and a client;
#   3. the same class grown to 40 (students repeated under other names).
#
# Each figure is the median of RUNS runs (3). The machine's load is
# printed first: the figures mean little on a busy machine.
#
#   benches/class.sh                  # all three
#   RUNS=1 SIZES="11" benches/class.sh
#   JOBS=8 benches/class.sh           # --jobs for all three (default: the
#                                     # runner's own, twice the processors)
#   PORTS=fixed benches/class.sh      # the students' programs fixed to port
#                                     # 8889, as the course's are (no {port})
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SIZES=${SIZES:-"11 40"}
JOBS_ARG=()
if [ -n "${JOBS:-}" ]; then JOBS_ARG=(--jobs "$JOBS"); fi
# How the students' programs get their port: "{port}" in their arguments,
# or none (PORTS=fixed): they use 8889, each in a network of its own where
# the system allows it.
PORT_ARG=" --port {port}"
if [ "${PORTS:-}" = fixed ]; then PORT_ARG=""; fi

cargo build --release --quiet
BIN=$PWD/target/release/progjar-chat
SERVER=$PWD/tests/fixtures/chat_server.py
CLIENT=$PWD/tests/fixtures/chat_client.py
# The interpreter itself, not a wrapper script in front of it (a version
# manager's shim costs more than the case it starts).
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "processors: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The median wall time of RUNS runs of the command, and the processor
# time (user + system, the students' processes included) of that run, in
# seconds: "WALL CPU".
median() {
    local results=()
    for _ in $(seq "$RUNS"); do
        local TIMEFORMAT='%R %U %S'
        results+=("$({ time "$@" >/dev/null 2>&1; } 2>&1 | tail -1)")
    done
    printf '%s\n' "${results[@]}" | sort -n |
        awk '{w[NR]=$1; c[NR]=$2+$3} END {m=int((NR+1)/2); printf "%.1f s wall, %.1f s of processor time", w[m], c[m]}'
}

t=$(median "$BIN" conform server "${JOBS_ARG[@]}" --spawn "$PYTHON $SERVER$PORT_ARG")
echo "one Python server submission (72 cases, a process each): $t"

# Eleven students: the right fixtures and ten with planted bugs.
SERVER_BREAKS=(none logout-bare-ok strip-text case-insensitive-users english-errors no-list
    no-logout logout-echo-token inbox-not-drained chunk-decode original)
CLIENT_BREAKS=(none repr no-trailing-space quiet none no-auth-check repr none quiet
    no-trailing-space none)

class() {
    local size=$1 manifest=$WORK/class-$1.toml
    : >"$manifest"
    for i in $(seq 0 $((size - 1))); do
        local s=${SERVER_BREAKS[$((i % 11))]} c=${CLIENT_BREAKS[$((i % 11))]}
        local sb="" cb=""
        [ "$s" != none ] && sb=" --break $s"
        [ "$c" != none ] && cb=" --break $c"
        mkdir -p "$WORK/s$i"
        cat >>"$manifest" <<TOML
[[submission]]
name = "student-$i"
dir = "s$i"
server = "$PYTHON $SERVER$PORT_ARG$sb"
client = "$PYTHON $CLIENT$PORT_ARG$cb"

TOML
    done
    echo "$manifest"
}

for size in $SIZES; do
    manifest=$(class "$size")
    t=$(median "$BIN" conform class "$manifest" "${JOBS_ARG[@]}")
    echo "a class of $size (each a Python server and client: $((size * 93)) cases): $t"
done
