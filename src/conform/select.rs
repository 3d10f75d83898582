//! Which cases to run (`--case`, `--level`) and which are expected to fail
//! (`--expect FILE`). Pure code.

use std::fmt;

use crate::spec::{Example, Level};

/// A `--case` pattern: a glob (`*` any run, `?` one character) or, without
/// wildcards, an ID or an ID prefix that ends at a boundary (`AUTH` and
/// `AUTH-1` select `AUTH-1.1`, `AUTH-1.2`; `SEND-4.1` selects only itself,
/// not `SEND-4.10`). Case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CasePattern(String);

impl CasePattern {
    pub(crate) fn new(pattern: &str) -> Self {
        Self(pattern.trim().to_ascii_uppercase())
    }

    pub(crate) fn matches(&self, id: &str) -> bool {
        let id = id.to_ascii_uppercase();
        if self.0.contains(['*', '?']) {
            glob(self.0.as_bytes(), id.as_bytes())
        } else {
            id == self.0
                || (id.starts_with(&self.0)
                    && (self.0.ends_with(['.', '-'])
                        || matches!(id.as_bytes()[self.0.len()], b'.' | b'-')))
        }
    }
}

impl fmt::Display for CasePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` matches the pattern `p` (`*` any run, `?` any one byte).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Splits `--case` values on commas too (`--case AUTH-1.1,SEND-*`).
pub(crate) fn case_patterns(values: &[String]) -> Vec<CasePattern> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|p| !p.trim().is_empty())
        .map(CasePattern::new)
        .collect()
}

/// The examples selected by the patterns (all when there are none) and the
/// level (both when `None`), in document order.
pub(crate) fn select<'a>(
    examples: impl IntoIterator<Item = &'a Example>,
    patterns: &[CasePattern],
    level: Option<Level>,
) -> Vec<&'a Example> {
    examples
        .into_iter()
        .filter(|e| patterns.is_empty() || patterns.iter().any(|p| p.matches(&e.id)))
        .filter(|e| level.is_none_or(|l| e.level == l))
        .collect()
}

/// One line of an expectations file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expectation {
    pub pattern: CasePattern,
    pub reason: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// The expectations file: which cases this implementation is known to
/// fail, and why.
///
/// ```text
/// # Our server predates the list command.
/// LIST-*      list is not implemented yet
/// AUTH-2.1    we answer "User not found" on purpose
/// ```
///
/// One case ID or pattern (as for `--case`) per line, then white space,
/// then the reason (required). Blank lines and lines starting with `#` are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub(crate) entries: Vec<Expectation>,
}

impl Expectations {
    /// Reads an `--expect` file: `CASE-ID  why it fails` a line, `#`
    /// comments and blank lines left out.
    pub fn parse(text: &str) -> Result<Self, NoReason> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(NoReason { line: i + 1, pattern: pattern.to_owned() });
            }
            entries.push(Expectation {
                pattern: CasePattern::new(pattern),
                reason: reason.to_owned(),
                line: i + 1,
            });
        }
        Ok(Self { entries })
    }

    /// Why `id` is expected to fail, if it is.
    pub fn reason(&self, id: &str) -> Option<&str> {
        self.entries.iter().find(|e| e.pattern.matches(id)).map(|e| e.reason.as_str())
    }

    /// Entries that match none of `ids` (probably a typo or a renamed case).
    pub(crate) fn unused<'a>(&'a self, ids: &[&str]) -> Vec<&'a Expectation> {
        self.entries.iter().filter(|e| !ids.iter().any(|id| e.pattern.matches(id))).collect()
    }
}

/// A line of an `--expect` file that names a case but gives no reason:
/// a reason is required, so that every expected failure says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoReason {
    /// Its line, from 1.
    pub line: usize,
    pub pattern: String,
}

impl std::fmt::Display for NoReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: `{}` needs a reason after it (`CASE-ID  why it fails`)",
            self.line, self.pattern
        )
    }
}

impl std::error::Error for NoReason {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let m = |p: &str, id: &str| CasePattern::new(p).matches(id);
        assert!(m("AUTH-*", "AUTH-1.1"));
        assert!(m("auth-*", "AUTH-1.1"));
        assert!(!m("AUTH-*", "LOGOUT-1.1"));
        assert!(m("*-1.1", "LOGOUT-1.1"));
        assert!(m("SEND-?.1", "SEND-4.1"));
        assert!(m("SEND-4.1", "SEND-4.1"));
        assert!(!m("SEND-4.1", "SEND-4.10"));
        assert!(m("SEND-4", "SEND-4.1"));
        assert!(!m("SEND-4", "SEND-40.1"));
        assert!(m("SEND", "SEND-4.1"));
        assert!(!m("SEN", "SEND-4.1"));
        assert!(m("SEND-", "SEND-4.1"));
        assert!(m("CLI-1.", "CLI-1.1"));
        assert_eq!(case_patterns(&["AUTH-1.1,SEND-*".into(), "".into()]).len(), 2);
    }

    #[test]
    fn expectations_file() {
        let e = Expectations::parse(
            "# header\n\nLIST-*   no list yet\nAUTH-2.1\twe say # User not found\n",
        )
        .unwrap();
        assert_eq!(e.entries.len(), 2);
        assert_eq!(e.reason("LIST-2.1"), Some("no list yet"));
        assert_eq!(e.reason("AUTH-2.1"), Some("we say # User not found"));
        assert_eq!(e.reason("AUTH-1.1"), None);
        assert_eq!(e.unused(&["LIST-1.1"]).len(), 1);
        assert_eq!(e.entries[1].line, 4);
        let err = Expectations::parse("ok  fine\nAUTH-1.1\n").unwrap_err();
        assert_eq!(err, NoReason { line: 2, pattern: "AUTH-1.1".into() });
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }
}
