//! Causes that one mistake in an implementation makes show up in many
//! cases, named once in the report with the fix.
//!
//! A student's natural `.strip()` of the message text fails every case
//! that reads a message back; a reply without its blank line fails every
//! case. The matcher and the diagnosis tag the findings they recognise;
//! the report groups the tagged cases and says the cause once.

use std::fmt;

/// A known cause of findings across cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Cause {
    /// Message texts come back without the white space at their ends.
    StrippedText,
    /// Replies end in something else than `\r\n\r\n`.
    NoTerminator,
    /// Replies are not JSON (often Python's `str()` of a dict).
    NotJson,
    /// Two requests in one read are answered as one.
    MergedPipelining,
    /// The connection is closed after an error reply.
    ClosesAfterError,
    /// A second connection is not served while the first is open.
    OneConnectionAtATime,
}

impl Cause {
    /// A stable name, for `--json`.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Cause::StrippedText => "stripped-text",
            Cause::NoTerminator => "no-terminator",
            Cause::NotJson => "not-json",
            Cause::MergedPipelining => "merged-pipelining",
            Cause::ClosesAfterError => "closes-after-error",
            Cause::OneConnectionAtATime => "one-connection-at-a-time",
        }
    }

    /// What the implementation does, in one sentence.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Cause::StrippedText => {
                "message texts come back without the white space at their ends: the text is stripped (e.g. `.strip()`) when it is stored or sent"
            }
            Cause::NoTerminator => "replies do not end with \\r\\n\\r\\n",
            Cause::NotJson => "replies are not JSON",
            Cause::MergedPipelining => {
                "two requests that arrive in one read are answered as one request"
            }
            Cause::ClosesAfterError => "the connection is closed after an error reply",
            Cause::OneConnectionAtATime => {
                "a second connection gets no answer while the first is open"
            }
        }
    }

    /// The rules this mistake breaks. In a case of another rule, a finding
    /// with this cause is noted and not counted, so that one mistake is
    /// charged once (an empty list: it counts wherever it shows).
    pub(crate) fn rules(self) -> &'static [&'static str] {
        match self {
            Cause::StrippedText => &["SEND-4", "SEND-6"],
            Cause::NoTerminator | Cause::NotJson => &["TRANS-2"],
            Cause::MergedPipelining => &["TRANS-3"],
            Cause::ClosesAfterError => &["TRANS-5"],
            Cause::OneConnectionAtATime => &["TRANS-8"],
        }
    }

    /// Whether the rest of a reply can still be checked when this shows
    /// in a case of another rule: a stripped text or a missing terminator
    /// leave the reply readable, so the case goes on without counting
    /// them; a reply that is not JSON, or none at all, leaves nothing to
    /// check, so the case is BLOCKED by the cause's rule.
    pub(crate) fn leaves_the_rest_checkable(self) -> bool {
        matches!(self, Cause::StrippedText | Cause::NoTerminator)
    }

    /// How to fix it, with the rule that says so.
    pub(crate) fn fix(self) -> &'static str {
        match self {
            Cause::StrippedText => {
                "keep the text raw: everything after the recipient field, its leading space and the \\r\\n included (SEND-4)"
            }
            Cause::NoTerminator => "end every reply with \\r\\n\\r\\n after the JSON object (TRANS-2)",
            Cause::NotJson => {
                "send json.dumps(reply) (Python's str() of a dict is not JSON: it uses single quotes) (TRANS-2)"
            }
            Cause::MergedPipelining => {
                "split the buffer at each \\r\\n and answer each request in turn (TRANS-3)"
            }
            Cause::ClosesAfterError => "keep the connection open after an error reply (TRANS-5)",
            Cause::OneConnectionAtATime => {
                "serve each connection in a thread (or task) of its own (TRANS-8)"
            }
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Whether `actual` is `expected` with white space stripped from its ends
/// (Python's `str.strip()`), and not the same text.
pub(crate) fn is_stripped(expected: &str, actual: &str) -> bool {
    expected != actual && expected.trim() == actual
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripped_texts_are_recognised() {
        assert!(is_stripped("  hallo \r\n", "hallo"));
        assert!(!is_stripped("  hallo \r\n", "  hallo \r\n"));
        assert!(!is_stripped("  hallo \r\n", "halo"));
        assert!(!is_stripped("", ""));
    }
}
