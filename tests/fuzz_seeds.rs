//! The fuzz targets' checks, replayed by `cargo test` on their seed corpora
//! (`fuzz/seeds/<target>/`, built from the spec's examples by
//! `fuzz/make_seeds.py`): every seed must pass the same property its target
//! checks under libFuzzer, so a change that breaks a property on a known
//! input fails here, without a fuzzing toolchain.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every seed of `target`; fails naming the first seed
/// whose check panics, or when the corpus is (nearly) empty.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "{target}: only {} seeds in {}", seeds.len(), dir.display());
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap_or_else(|e| panic!("read {}: {e}", seed.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: seed {} fails the target's check", seed.display());
    }
}

#[test]
fn parse_frame_seeds() {
    replay("parse_frame", checks::parse_frame);
}

#[test]
fn request_seeds() {
    replay("request", checks::request);
}

#[test]
fn session_seeds() {
    replay("session", checks::session);
}

#[test]
fn json_seeds() {
    replay("json", checks::json);
}
