//! The byte form of a reply: where two texts first differ, and why two
//! JSON texts of the same meaning are spelled otherwise (separators,
//! escapes, key order).

use serde_json::Value;

use super::diff::DiffLine;
use super::framing::JsonStrings;
use crate::spec::pattern::escape_bytes;

/// Two escaped one-line texts as a diff, with a marker under the first
/// difference.
pub(crate) fn byte_diff(expected: &str, actual: &str) -> Vec<DiffLine> {
    let at = expected.chars().zip(actual.chars()).take_while(|(a, b)| a == b).count();
    vec![
        DiffLine::Expected(expected.to_owned()),
        DiffLine::Actual(actual.to_owned()),
        DiffLine::Same(format!("{}^ first difference at character {}", " ".repeat(at), at + 1)),
    ]
}

/// Why two JSON texts of the same meaning differ, in words (nothing when
/// no known cause explains it).
pub(crate) fn form_hints(expected: Option<&str>, actual: &[u8]) -> Vec<String> {
    let mut hints = Vec::new();
    let text = String::from_utf8_lossy(actual);
    let compact = |sep: u8, spaced: &str| {
        let mut strings = JsonStrings::default();
        text.as_bytes()
            .iter()
            .enumerate()
            .any(|(i, &b)| strings.outside(b) && b == sep && !text[i..].starts_with(spaced))
    };
    if compact(b',', ", ") || compact(b':', ": ") {
        hints.push(
            "separators without spaces (json.dumps writes \", \" and \": \" by default)"
                .to_string(),
        );
    }
    if actual.iter().any(|&b| b >= 0x80) {
        hints.push(
            "non-ASCII characters sent as raw UTF-8 (json.dumps escapes them, e.g. \\u00e9)"
                .to_string(),
        );
    }
    if text.split("\\u").skip(1).any(|s| s.chars().take(4).any(|c| c.is_ascii_uppercase())) {
        hints.push(
            "\\u escapes with uppercase hex digits (json.dumps writes lowercase)".to_string(),
        );
    }
    if let (Some(expected), Ok(a)) = (expected, serde_json::from_slice::<Value>(actual)) {
        if let Ok(e) = serde_json::from_str::<Value>(expected) {
            if key_orders(&e) != key_orders(&a) && e == a {
                hints.push("keys in another order than the spec's".to_string());
            }
        }
    }
    hints
}

/// Where two texts first differ, in words.
pub(crate) fn first_difference(expected: Option<&str>, actual: &[u8]) -> String {
    let Some(expected) = expected else { return "see the diff".into() };
    let at = expected.bytes().zip(actual.iter().copied()).take_while(|(a, b)| a == b).count();
    let end = |s: &[u8]| escape_bytes(&s[at..(at + 20).min(s.len())]);
    format!(
        "first difference at byte {}: expected \"{}…\", got \"{}…\"",
        at + 1,
        end(expected.as_bytes()),
        end(actual)
    )
}

fn key_orders(v: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                out.push(m.keys().cloned().collect());
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}
