//! Showing expected against actual: a line diff and a JSON pretty-printer
//! whose strings are spelled as the wire spells them (ASCII only).

use serde_json::Value;

use crate::protocol::json::write_str;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", content = "line", rename_all = "lowercase")]
pub(crate) enum DiffLine {
    /// In both.
    Same(String),
    /// Only in the expectation.
    Expected(String),
    /// Only in what was received.
    Actual(String),
}

impl DiffLine {
    /// `  line`, `- line` or `+ line`.
    pub(crate) fn render(&self) -> String {
        match self {
            DiffLine::Same(l) => format!("  {l}"),
            DiffLine::Expected(l) => format!("- {l}"),
            DiffLine::Actual(l) => format!("+ {l}"),
        }
    }
}

/// A minimal line diff (longest common subsequence; inputs are small).
pub(crate) fn diff_lines(expected: &[String], actual: &[String]) -> Vec<DiffLine> {
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: length of the LCS of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(DiffLine::Same(expected[i].clone()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push(DiffLine::Actual(actual[j].clone()));
            j += 1;
        } else {
            out.push(DiffLine::Expected(expected[i].clone()));
            i += 1;
        }
    }
    out
}

/// Pretty-prints JSON with two-space indentation, one key or item per line,
/// strings escaped as `json.dumps` does (so control characters and
/// non-ASCII stay visible).
pub(crate) fn pretty(value: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    pretty_into(value, 0, String::new(), "", &mut lines);
    lines
}

fn scalar(value: &Value) -> String {
    let mut out = Vec::new();
    match value {
        Value::String(s) => write_str(&mut out, s),
        other => out.extend_from_slice(crate::protocol::json::to_string(other).as_bytes()),
    }
    String::from_utf8(out).unwrap_or_default()
}

fn pretty_into(value: &Value, depth: usize, prefix: String, suffix: &str, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Array(items) if !items.is_empty() => {
            lines.push(format!("{indent}{prefix}["));
            for (i, item) in items.iter().enumerate() {
                pretty_into(
                    item,
                    depth + 1,
                    String::new(),
                    if i + 1 < items.len() { "," } else { "" },
                    lines,
                );
            }
            lines.push(format!("{indent}]{suffix}"));
        }
        Value::Object(map) if !map.is_empty() => {
            lines.push(format!("{indent}{prefix}{{"));
            for (i, (key, item)) in map.iter().enumerate() {
                let key = format!("{}: ", scalar(&Value::String(key.clone())));
                pretty_into(item, depth + 1, key, if i + 1 < map.len() { "," } else { "" }, lines);
            }
            lines.push(format!("{indent}}}{suffix}"));
        }
        other => lines.push(format!("{indent}{prefix}{}{suffix}", scalar(other))),
    }
}

/// `actual` with the keys of every object reordered to follow `expected`
/// where both have them (the rest after, in their order), so that a diff
/// of two replies equal up to key order shows no difference.
pub(crate) fn align_keys(actual: &Value, expected: &Value) -> Value {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut out = serde_json::Map::new();
            for (key, ev) in e {
                if let Some(av) = a.get(key) {
                    out.insert(key.clone(), align_keys(av, ev));
                }
            }
            for (key, av) in a {
                if !out.contains_key(key) {
                    out.insert(key.clone(), av.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(a), Value::Array(e)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, av)| e.get(i).map_or_else(|| av.clone(), |ev| align_keys(av, ev)))
                .collect(),
        ),
        (other, _) => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff_lines(&s(&["{", "a", "b", "}"]), &s(&["{", "a", "c", "}"]));
        assert_eq!(
            d,
            vec![
                DiffLine::Same("{".into()),
                DiffLine::Same("a".into()),
                DiffLine::Expected("b".into()),
                DiffLine::Actual("c".into()),
                DiffLine::Same("}".into()),
            ]
        );
        assert_eq!(diff_lines(&s(&[]), &s(&["x"])), vec![DiffLine::Actual("x".into())]);
    }

    #[test]
    fn pretty_spells_strings_like_the_wire() {
        let v = json!({"status": "OK", "messages": {"messi": [{"msg": "é\r\n\u{7f}"}]}, "e": [], "o": {}});
        assert_eq!(
            pretty(&v),
            s(&[
                "{",
                "  \"status\": \"OK\",",
                "  \"messages\": {",
                "    \"messi\": [",
                "      {",
                "        \"msg\": \"\\u00e9\\r\\n\\u007f\"",
                "      }",
                "    ]",
                "  },",
                "  \"e\": [],",
                "  \"o\": {}",
                "}",
            ])
        );
    }

    #[test]
    fn keys_follow_the_expectation() {
        let a = json!({"message": "x", "status": "ERROR", "extra": 1});
        let e = json!({"status": "ERROR", "message": "y"});
        let aligned = align_keys(&a, &e);
        assert_eq!(
            aligned.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["status", "message", "extra"]
        );
    }
}
