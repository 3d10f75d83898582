#!/usr/bin/env bash
# loom models of the shared state (tests/loom_shared.rs): every interleaving
# of 2-3 threads doing send / inbox / logout / auth on one SharedChat, up to
# LOOM_MAX_PREEMPTIONS preemptions (default 5: about ten seconds).
#
# The crate is built with `--cfg chat_loom`, which makes src/sync.rs hand out
# loom's Mutex, in a target directory of its own so that the normal build is
# not invalidated. Each test prints how many executions it explored.
set -euo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-5}"
export RUSTFLAGS="--cfg chat_loom"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"

echo "loom: LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, target dir $CARGO_TARGET_DIR"
cargo test --release --test loom_shared -- --nocapture
