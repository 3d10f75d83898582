//! What a failed read or connect means, and the verdict it gets.
//!
//! Pure code: the runner describes what happened on the wire (a close, a
//! silence, a flood, the process gone) with the facts of the connection,
//! and gets back a [`Check`] with one finding a student can act on.
//!
//! One observation, one verdict (spec §1): a live implementation that does
//! not answer, closes, or answers half is FAILED, wherever it happens; only
//! a case that could not run (refused, the process exited, a runner fault)
//! is ERROR.

use super::cause::Cause;
use super::matcher::{Check, Finding, Verdict};
use super::transcript::escape_for_transcript;

/// How reading one reply went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadFailure {
    /// The server closed the connection; `partial` is what came before.
    Closed { partial: Vec<u8> },
    /// Nothing, or only `partial`, within the timeout.
    TimedOut { partial: Vec<u8> },
    /// More than `limit` bytes without the end of a reply.
    TooLong { partial: Vec<u8>, limit: usize },
    /// The socket itself failed.
    Io(String),
}

/// What the runner knows about the connection and the process when a read
/// fails.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ConnFacts {
    /// `1` for `C1`.
    pub conn: u32,
    /// Requests written on it (each `\r\n` ends one).
    pub requests: usize,
    /// Replies read from it.
    pub replies: usize,
    /// Requests in the last write.
    pub last_write_requests: usize,
    /// The last reply read was an error reply.
    pub last_reply_error: bool,
    /// Another connection of the case that was answered, if any.
    pub other_answered: Option<u32>,
    /// `the server process exited with status 1`, once the process is gone.
    pub exited: Option<String>,
    /// `server` or `client`.
    pub who: &'static str,
    /// The read timeout, in seconds.
    pub timeout_secs: f64,
}

/// A check with a single finding.
pub(crate) fn one_finding(
    severity: Verdict,
    message: String,
    expected: String,
    actual: String,
) -> Check {
    Check {
        findings: vec![Finding::new(severity, "", message)],
        expected,
        actual,
        ..Check::default()
    }
}

/// The verdict of a read that brought no whole reply.
pub(crate) fn read_failure(failure: &ReadFailure, facts: &ConnFacts, expected: String) -> Check {
    let partial = match failure {
        ReadFailure::Closed { partial }
        | ReadFailure::TimedOut { partial }
        | ReadFailure::TooLong { partial, .. } => partial.as_slice(),
        ReadFailure::Io(_) => &[],
    };
    let shown = escape_for_transcript(&partial[..partial.len().min(200)]);
    if let Some(exit) = &facts.exited {
        return one_finding(Verdict::Error, exit.clone(), expected, shown);
    }
    let who = facts.who;
    let n = facts.conn;
    let secs = facts.timeout_secs;
    let mut cause = None;
    let message = match failure {
        ReadFailure::Closed { partial } if partial.is_empty() => {
            if facts.last_reply_error {
                cause = Some(Cause::ClosesAfterError);
            }
            let (after_error, why) = if facts.last_reply_error {
                (", right after an error reply", "an error reply never closes the connection")
            } else {
                ("", "a server closes a connection only when the client does")
            };
            format!(
                "the {who} closed the connection C{n} instead of replying{after_error} ({} of {} requests on it answered; {why}, TRANS-5)",
                facts.replies, facts.requests
            )
        }
        ReadFailure::Closed { .. } => {
            format!("the {who} closed the connection C{n} in the middle of a reply")
        }
        ReadFailure::TimedOut { partial } if !partial.is_empty() => format!(
            "an incomplete reply: these bytes and then nothing for {secs} s (a reply ends with \\r\\n\\r\\n, TRANS-2; --timeout sets the wait)"
        ),
        ReadFailure::TimedOut { .. } => {
            let mut message = format!(
                "no reply within {secs} s (--timeout sets the wait): the {who} answered {} of the {} requests sent on C{n}",
                facts.replies, facts.requests
            );
            if facts.replies > 0 && facts.last_write_requests > 1 {
                cause = Some(Cause::MergedPipelining);
                message.push_str(&format!(
                    "; the last write held {} requests, and each \\r\\n ends one request (TRANS-3): a server that takes whatever one read returns as one request answers them as one",
                    facts.last_write_requests
                ));
            } else if facts.replies == 0 {
                if let Some(other) = facts.other_answered {
                    cause = Some(Cause::OneConnectionAtATime);
                    message.push_str(&format!(
                        ", while C{other} is open and was answered: does the {who} serve only one connection at a time?"
                    ));
                }
            }
            message
        }
        ReadFailure::TooLong { limit, .. } => {
            format!("more than {limit} bytes without the end of a reply (\\r\\n\\r\\n)")
        }
        ReadFailure::Io(error) => {
            return one_finding(
                Verdict::Error,
                format!("reading C{n} failed: {error}"),
                expected,
                String::new(),
            )
        }
    };
    let mut finding = Finding::new(Verdict::Failed, "", message);
    if let Some(cause) = cause {
        finding = finding.because(cause);
    }
    Check { findings: vec![finding], expected, actual: shown, ..Check::default() }
}

/// The verdict of a connection that could not be opened: the case could
/// not run.
pub(crate) fn connect_failure(
    conn: u32,
    error: &str,
    exited: Option<String>,
    expected: String,
) -> Check {
    let message = exited.unwrap_or_else(|| format!("cannot connect C{conn}: {error}"));
    one_finding(Verdict::Error, message, expected, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ConnFacts {
        ConnFacts { conn: 1, who: "server", timeout_secs: 2.0, ..ConnFacts::default() }
    }

    #[test]
    fn silence_from_a_live_server_is_failed_wherever_it_happens() {
        let silent = ReadFailure::TimedOut { partial: vec![] };
        // Nothing answered yet on this connection (TRANS-6.1's situation)…
        let first = read_failure(&silent, &ConnFacts { requests: 1, ..facts() }, "x".into());
        // …or after other replies (TRANS-3.1's): the same verdict.
        let later = read_failure(
            &silent,
            &ConnFacts { requests: 3, replies: 1, last_write_requests: 2, ..facts() },
            "x".into(),
        );
        assert_eq!(first.verdict(), Verdict::Failed);
        assert_eq!(later.verdict(), Verdict::Failed);
        assert!(first.headline().unwrap().contains("no reply within 2 s (--timeout"));
        assert!(later.headline().unwrap().contains("the last write held 2 requests"));
        assert_eq!(later.findings[0].cause, Some(Cause::MergedPipelining));
        assert_eq!(first.findings[0].cause, None);
    }

    #[test]
    fn a_process_that_exited_makes_any_failure_an_error() {
        let gone =
            ConnFacts { exited: Some("the server process exited with status 1".into()), ..facts() };
        for failure in [
            ReadFailure::TimedOut { partial: vec![] },
            ReadFailure::Closed { partial: b"{".to_vec() },
        ] {
            let check = read_failure(&failure, &gone, String::new());
            assert_eq!(check.verdict(), Verdict::Error);
            assert_eq!(check.headline().unwrap(), "the server process exited with status 1");
        }
    }

    #[test]
    fn closes_say_what_came_before() {
        let after_error = ConnFacts { requests: 2, replies: 1, last_reply_error: true, ..facts() };
        let check =
            read_failure(&ReadFailure::Closed { partial: vec![] }, &after_error, String::new());
        assert_eq!(check.verdict(), Verdict::Failed);
        assert!(check.headline().unwrap().contains("right after an error reply (1 of 2"));
        let half = read_failure(
            &ReadFailure::Closed { partial: b"{\"sta".to_vec() },
            &facts(),
            String::new(),
        );
        assert!(half.headline().unwrap().contains("in the middle of a reply"));
        assert_eq!(half.actual, "{\"sta");
    }

    #[test]
    fn one_connection_at_a_time_is_named() {
        let check = read_failure(
            &ReadFailure::TimedOut { partial: vec![] },
            &ConnFacts { conn: 2, requests: 1, other_answered: Some(1), ..facts() },
            String::new(),
        );
        assert_eq!(check.verdict(), Verdict::Failed);
        assert!(check.headline().unwrap().contains("serve only one connection at a time"));
    }

    #[test]
    fn refused_is_an_error() {
        let check = connect_failure(1, "connection refused", None, String::new());
        assert_eq!(check.verdict(), Verdict::Error);
        assert_eq!(check.headline().unwrap(), "cannot connect C1: connection refused");
    }
}
