//! The JSON encoder against a live CPython: random strings and values are
//! encoded here and by `json.dumps` in a `python3` process, and the two
//! outputs must be byte-identical. Also checks that the encoder's output is
//! pure ASCII and parses back to the value it came from.
//!
//! Each proptest case sends a whole batch of inputs to one `python3`
//! invocation, which keeps process start-up out of the per-input cost. The
//! inputs travel as `serde_json` text, which is independent of the encoder
//! under test: feeding Python our own output would hide a bug that spells a
//! value wrongly but consistently (say, the wrong hex digits in `\uXXXX`).
//!
//! Without `python3` on `PATH` the Python comparisons print a notice and pass.

use std::io::Write;
use std::process::{Command, Stdio};

use progjar_chat::protocol::json::{to_string, write_str};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};

/// Most inputs per `python3` invocation. Batches vary in length, down to
/// one input, so that a failure shrinks to the single offending value.
const BATCH: usize = 256;

/// Batches (proptest cases, i.e. `python3` invocations) per test.
const BATCHES: u32 = 16;

/// Reads one JSON document per line from stdin and writes `json.dumps` of
/// each on its own line. stdin is read as bytes and decoded as UTF-8 so the
/// locale cannot interfere; splitting on b"\n" only keeps U+2028 and friends
/// inside their line.
const PYTHON_DUMPS: &str = r#"
import json, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    out.write(json.dumps(json.loads(line.decode("utf-8"))).encode("ascii") + b"\n")
"#;

fn python_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "pass"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        println!("skipped: python3 is not on PATH, no comparison with CPython");
    }
    found
}

/// `json.dumps` of every value, computed by one `python3` process.
fn python_dumps(values: &[Value]) -> Result<Vec<String>, TestCaseError> {
    let mut input = String::new();
    for value in values {
        input.push_str(&serde_json::to_string(value).map_err(fail)?);
        input.push('\n');
    }
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_DUMPS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    let mut stdin = child.stdin.take().ok_or_else(|| fail("python3 without stdin"))?;
    // Feed stdin from another thread: Python answers while it reads, and a
    // full stdout pipe would otherwise block both processes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(fail)?;
    writer.join().map_err(|_| fail("stdin writer panicked"))?.map_err(fail)?;
    if !output.status.success() {
        return Err(fail(String::from_utf8_lossy(&output.stderr)));
    }
    let stdout = String::from_utf8(output.stdout).map_err(fail)?;
    Ok(stdout.lines().map(str::to_owned).collect())
}

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// Runs `strategy` batches through our encoder and through Python.
fn assert_matches_python(strategy: impl Strategy<Value = Vec<Value>>) {
    if !python_available() {
        return;
    }
    let config = Config {
        cases: BATCHES,
        max_shrink_iters: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&strategy, |values| {
        let python = python_dumps(&values)?;
        prop_assert_eq!(python.len(), values.len());
        for (value, python) in values.iter().zip(&python) {
            let ours = to_string(value);
            prop_assert!(
                &ours == python,
                "input: {:?}\n  ours:   {}\n  python: {}",
                value,
                ours,
                python
            );
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// Any Unicode scalar value, weighted towards the ones that need escaping.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        3 => (0u8..0x80).prop_map(char::from),
        2 => prop::sample::select(vec![
            '"', '\\', '/', '\u{7f}', '\u{80}', '\u{ff}', '\u{7ff}', '\u{800}',
            '\u{2028}', '\u{2029}', '\u{feff}', '\u{ffff}', '\u{10000}',
            '\u{10ffff}', '\u{1f600}', 'é', '€',
        ]),
        1 => (0x1_0000u32..=0x10_ffff).prop_filter_map("scalar value", char::from_u32),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    vec(any_char(), 0..24).prop_map(String::from_iter)
}

/// Finite floats, weighted towards the boundaries of Python's notation
/// switch and towards values with few significant digits.
fn any_float() -> impl Strategy<Value = f64> {
    use prop::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        (-1_000_000i32..1_000_000).prop_map(f64::from),
        (any::<i32>(), -30i32..30).prop_map(|(m, e)| f64::from(m) * 10f64.powi(e)),
        // Quarters just above 2^50, where the doubles are a quarter apart:
        // `x.25` and `x.75` lie exactly halfway between two shortest digit
        // strings, and Python takes the even one.
        ((1i64 << 50)..(1i64 << 51), 0..4, any::<bool>()).prop_map(|(k, q, negative)| {
            let f = k as f64 + f64::from(q) * 0.25;
            if negative {
                -f
            } else {
                f
            }
        }),
        (-8i32..25, -1i64..=1, any::<bool>()).prop_map(|(e, step, negative)| {
            let f = f64::from_bits(10f64.powi(e).to_bits().wrapping_add_signed(step));
            if negative {
                -f
            } else {
                f
            }
        }),
    ]
}

fn any_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any_float().prop_map(Value::from),
        any_string().prop_map(Value::String),
    ]
}

/// Small nested arrays and objects; object keys are arbitrary strings in
/// arbitrary (non-sorted) order.
fn any_value() -> impl Strategy<Value = Value> {
    any_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((any_string(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn strings_match_python() {
    assert_matches_python(vec(any_string().prop_map(Value::String), 1..=BATCH));
}

#[test]
fn floats_match_python() {
    assert_matches_python(vec(any_float().prop_map(Value::from), 1..=BATCH));
}

#[test]
fn values_match_python() {
    assert_matches_python(vec(any_value(), 1..=BATCH));
}

/// Floats may differ by a few ulps after `serde_json`'s default parser,
/// which is documented as best effort (exact parsing needs its
/// `float_roundtrip` feature). Exactness is checked with std's correctly
/// rounded parser in `float_text_parses_back_exactly`.
fn same_value(ours: &Value, parsed: &Value) -> bool {
    const SERDE_FLOAT_ULPS: u64 = 4;
    match (ours, parsed) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() => {
            match (a.as_f64().filter(|_| b.is_f64()), b.as_f64()) {
                (Some(a), Some(b)) => a.to_bits().abs_diff(b.to_bits()) <= SERDE_FLOAT_ULPS,
                _ => false,
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
        }
        _ => ours == parsed,
    }
}

proptest! {
    #[test]
    fn output_is_ascii_and_parses_back(value in any_value()) {
        let text = to_string(&value);
        prop_assert!(text.is_ascii(), "{}", text);
        let parsed: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert!(same_value(&value, &parsed), "{:?} -> {} -> {:?}", value, text, parsed);
    }

    #[test]
    fn write_str_is_the_string_case_of_to_string(s in any_string()) {
        let mut out = b"prefix ".to_vec();
        write_str(&mut out, &s);
        let expected = format!("prefix {}", to_string(&Value::String(s.clone())));
        prop_assert_eq!(out, expected.into_bytes());
    }

    #[test]
    fn float_text_parses_back_exactly(f in any_float()) {
        let text = to_string(&Value::from(f));
        let parsed: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(parsed.to_bits(), f.to_bits(), "{}", text);
    }
}
