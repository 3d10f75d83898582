# Shared by the perf scripts: the binary, the server under test, and how to
# start and stop it. Source it; do not run it.
#
# Environment (all optional):
#   BIN          the progjar-chat binary (default: target/release/progjar-chat,
#                built with `cargo build --release` first)
#   ADDR         where the server under test listens (default 127.0.0.1:18889)
#   SERVER_FLAGS flags for the reference server (default: its limits raised
#                out of the way of the scenarios; see below)
#   SERVER_CMD   how to start the server under test (default: the reference
#                server on ADDR); the script starts it, and restarts it for
#                every measurement, so each one begins from a fresh process.
#                For the original Python server, e.g.:
#                SERVER_CMD="python3 /path/to/server_thread_chat.py" ADDR=127.0.0.1:8889
#                (name the interpreter itself, not a launcher script, so
#                that the memory figures are the server's: e.g.
#                "$(python3 -c 'import sys; print(sys.executable)') …")
#   OUT          where the JSON reports go (default benches/perf/results)

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BIN=${BIN:-target/release/progjar-chat}
ADDR=${ADDR:-127.0.0.1:18889}
# The reference server's limits (spec/PROTOCOL.md §12) would refuse what
# the scenarios ask for on purpose: `send` alone fills a mailbox's default
# 100,000 messages in well under a second (after which the run would measure
# `Inbox Penuh` replies), the drain needs 1,000,000 pending messages, the
# idle and list scenarios 10,000 connections or sessions. They are raised
# out of the way; set SERVER_FLAGS="" to measure the defaults.
SERVER_FLAGS=${SERVER_FLAGS-"--max-pending 1000000000 --max-pending-bytes 1099511627776 \
--max-connections 1000000 --max-sessions-per-user 1000000000"}
SERVER_CMD=${SERVER_CMD:-"$BIN server --listen $ADDR $SERVER_FLAGS"}
OUT=${OUT:-benches/perf/results}
mkdir -p "$OUT"

if [ "$BIN" = target/release/progjar-chat ]; then
    cargo build --release --quiet
fi

# 10,000 connections need more descriptors than the usual 1,024 (in both
# the server and the generator): raise the soft limit as far as allowed.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
    ulimit -n 65536
else
    ulimit -n "$hard"
fi

SERVER_PID=
# Starts SERVER_CMD in the background and waits until ADDR accepts.
start_server() {
    # shellcheck disable=SC2086 # SERVER_CMD is a command line on purpose.
    $SERVER_CMD >/dev/null 2>&1 &
    SERVER_PID=$!
    local host=${ADDR%:*} port=${ADDR##*:}
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "server did not start listening on $ADDR" >&2
    stop_server
    return 1
}

# Stops the server started by start_server (by its pid, and waits for it).
# A launcher that runs the server as its child (a version manager's shim,
# say) would leave it running: its children are stopped first.
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        pkill -P "$SERVER_PID" 2>/dev/null || true
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# Notes the load average, so loaded runs can be told apart.
note_load() {
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}
