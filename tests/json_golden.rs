//! The JSON encoder and `bytes_repr` against vectors recorded from CPython
//! (`tests/data/gen_json_golden.py` writes `tests/data/json_golden.json`).
//!
//! Byte identity with Python's `json.dumps` is part of the wire protocol, so
//! these vectors are the encoder's ground truth rather than a hand-written
//! expectation.

use progjar_chat::protocol::json::to_string;
use progjar_chat::protocol::pyrepr::bytes_repr;
use serde_json::Value;

const GOLDEN: &str = include_str!("data/json_golden.json");

/// Lower bounds on each section, so that a truncated or regenerated-empty
/// file fails loudly instead of passing vacuously.
const MIN_JSON_VECTORS: usize = 200;
const MIN_FLOAT_VECTORS: usize = 400;
const MIN_BYTES_VECTORS: usize = 260;

fn section(name: &str) -> Vec<Value> {
    let golden: Value = serde_json::from_str(GOLDEN).expect("golden file is JSON");
    match golden.get(name) {
        Some(Value::Array(vectors)) => vectors.clone(),
        other => panic!("golden file has no array {name:?}: {other:?}"),
    }
}

fn field<'a>(vector: &'a Value, name: &str) -> &'a str {
    vector
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vector without string {name:?}: {vector}"))
}

#[test]
fn values_encode_like_python_json_dumps() {
    let vectors = section("json");
    assert!(vectors.len() >= MIN_JSON_VECTORS, "only {} vectors", vectors.len());
    for vector in &vectors {
        let input = vector.get("input").expect("vector without input");
        assert_eq!(to_string(input), field(vector, "python"), "input: {input:?}");
    }
}

#[test]
fn floats_encode_like_python_repr() {
    let vectors = section("float_bits");
    assert!(vectors.len() >= MIN_FLOAT_VECTORS, "only {} vectors", vectors.len());
    for vector in &vectors {
        let bits = u64::from_str_radix(field(vector, "bits"), 16).expect("hex bits");
        let f = f64::from_bits(bits);
        assert_eq!(to_string(&Value::from(f)), field(vector, "python"), "{f:e} ({bits:016x})");
    }
}

#[test]
fn bytes_repr_matches_python() {
    let vectors = section("bytes_repr");
    assert!(vectors.len() >= MIN_BYTES_VECTORS, "only {} vectors", vectors.len());
    for vector in &vectors {
        let bytes = decode_hex(field(vector, "bytes_hex"));
        assert_eq!(bytes_repr(&bytes), field(vector, "python_repr"), "bytes: {bytes:?}");
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    let pairs = hex.as_bytes().chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd-length hex {hex:?}");
    pairs
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("hex is ASCII");
            u8::from_str_radix(pair, 16).expect("hex byte")
        })
        .collect()
}
