#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS seconds each
# (default 60), starting from the seed corpus built from the spec's examples
# (fuzz/seeds/, made by fuzz/make_seeds.py). Fails if any target crashes;
# prints the executions each target ran.
#
# Uses the nightly toolchain when one is installed, otherwise (or when
# RUSTUP_TOOLCHAIN names one) that toolchain with RUSTC_BOOTSTRAP=1:
# cargo-fuzz needs nightly-only compiler flags.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
TARGETS=(parse_frame request session json)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

if [ -z "${RUSTUP_TOOLCHAIN:-}" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
    echo "fuzz: nightly toolchain"
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
    echo "fuzz: ${RUSTUP_TOOLCHAIN:-default} toolchain with RUSTC_BOOTSTRAP=1"
fi
# Cargo caches what it learnt of rustc here; after a change of toolchain
# the cache would describe the other one.
rm -f fuzz/target/.rustc_info.json

# -a: debug assertions (and overflow checks) on, as in tests.
"${FUZZ[@]}" build -a

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
failed=()
for target in "${TARGETS[@]}"; do
    # libFuzzer writes what it finds to the first corpus directory: give it
    # fuzz/corpus/<target> (ignored by git), seeded from fuzz/seeds/<target>.
    mkdir -p "fuzz/corpus/$target"
    cp -n "fuzz/seeds/$target/"* "fuzz/corpus/$target/" 2>/dev/null || true
    echo "fuzz: $target for ${FUZZ_SECONDS}s"
    if "${FUZZ[@]}" run -a "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$logs/$target.log" | tail -1 || true)
        echo "fuzz: $target: ${runs:-finished}, no crash"
    else
        echo "fuzz: $target CRASHED; the end of its log:"
        tail -n 60 "$logs/$target.log"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (reproducers in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${FUZZ_SECONDS}s each with no crash"
