//! Framing of both directions: where one request ends, and where one
//! reply ends. Every reader of the protocol's bytes cuts them here: the
//! server (through [`crate::protocol::connection`]), the client, the
//! conformance runner, the load generator and the tests.
//!
//! Requests. //! A request is every byte up to and including the first `\r\n`. The
//! original server waited until its whole buffer *ended* with `\r\n` and then
//! treated the buffer as one request, so two requests arriving in one read
//! were merged; that is a bug of the original, not part of the protocol, and
//! here each `\r\n` ends exactly one request. A bare `\r` or `\n` is an
//! ordinary byte inside a line.
//!
//! Like `httparse`, "incomplete is not invalid": [`Frame::Partial`] is a
//! normal outcome, and the caller alone decides when to read more and how to
//! advance its buffer. [`parse_frame`] is the rule for one request at the
//! start of a buffer; the server's [`Connection`](super::connection::Connection)
//! applies the same rule to a stream with [`find_crlf`], and is checked
//! against [`parse_frame`] as its oracle (the `parse_frame` fuzz target and
//! `Connection`'s tests).
//!
//! Replies. A reply is every byte up to and including the first
//! [`REPLY_TERMINATOR`] (`\r\n\r\n`) after it starts; the JSON encoder
//! escapes every `\r` and `\n` inside a reply, so no reply holds one
//! before its end. [`find_reply_end`] finds it, resumably.

use super::limits::DEFAULT_MAX_LINE;

/// What ends every reply.
pub const REPLY_TERMINATOR: &[u8] = b"\r\n\r\n";

/// The end of the reply that starts at `start`: the index just past its
/// first [`REPLY_TERMINATOR`], looking at the bytes from `from` on
/// (everything between `start` and `from` has been searched before, so a
/// reply that arrives in many reads is not searched from its start each
/// time; a terminator that straddles `from` is still found).
///
/// ```
/// use progjar_chat::protocol::frame::find_reply_end;
///
/// let buf = b"{\"a\": 1}\r\n\r\n{\"b\"";
/// assert_eq!(find_reply_end(buf, 0, 0), Some(12));
/// assert_eq!(find_reply_end(buf, 12, 12), None);
/// ```
pub fn find_reply_end(buf: &[u8], start: usize, from: usize) -> Option<usize> {
    let mut at = from.max(start);
    while let Some(offset) = memchr::memchr(b'\n', buf.get(at..)?) {
        let nl = at + offset;
        if nl >= start + 3 && &buf[nl - 3..=nl] == REPLY_TERMINATOR {
            return Some(nl + 1);
        }
        at = nl + 1;
    }
    None
}

/// The outcome of looking for one request at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole request line, `\r\n` included, is the first `len` bytes.
    Complete { len: usize },
    /// No `\r\n` yet: read more bytes and try again.
    Partial,
}

/// Why no request can be taken from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No `\r\n` within the first `limit` bytes.
    LineTooLong { limit: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::LineTooLong { limit } => {
                write!(f, "request line longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Looks for one request at the start of `buf`, with [`DEFAULT_MAX_LINE`].
///
/// ```
/// use progjar_chat::protocol::frame::{parse_frame, Frame};
///
/// // Incomplete is not invalid: read more and ask again.
/// assert_eq!(parse_frame(b"auth messi sura"), Ok(Frame::Partial));
/// // Only the first request is taken; the caller advances its buffer.
/// assert_eq!(parse_frame(b"inbox t\r\nlist t\r\n"), Ok(Frame::Complete { len: 9 }));
/// ```
pub fn parse_frame(buf: &[u8]) -> Result<Frame, FrameError> {
    parse_frame_limited(buf, DEFAULT_MAX_LINE)
}

/// Looks for one request at the start of `buf`; a line (terminator
/// included) may be at most `max_line` bytes long.
pub fn parse_frame_limited(buf: &[u8], max_line: usize) -> Result<Frame, FrameError> {
    let window = &buf[..buf.len().min(max_line)];
    match find_crlf(window, 0) {
        Some(at) => Ok(Frame::Complete { len: at + 2 }),
        None if buf.len() >= max_line => Err(FrameError::LineTooLong { limit: max_line }),
        None => Ok(Frame::Partial),
    }
}

/// The index of the first `\r` that starts a `\r\n` in `buf`, searching from
/// `from` (so a caller can resume where an earlier search stopped).
pub(crate) fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = memchr::memchr(b'\n', buf.get(at..)?) {
        let nl = at + offset;
        if nl > 0 && buf[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        at = nl + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_line_is_complete_with_its_terminator() {
        assert_eq!(parse_frame(b"inbox t\r\n"), Ok(Frame::Complete { len: 9 }));
    }

    #[test]
    fn only_the_first_line_is_taken() {
        assert_eq!(parse_frame(b"a\r\nb\r\n"), Ok(Frame::Complete { len: 3 }));
    }

    #[test]
    fn incomplete_is_not_invalid() {
        assert_eq!(parse_frame(b""), Ok(Frame::Partial));
        assert_eq!(parse_frame(b"auth messi"), Ok(Frame::Partial));
        assert_eq!(parse_frame(b"auth messi\r"), Ok(Frame::Partial));
    }

    #[test]
    fn bare_cr_and_lf_do_not_end_a_line() {
        assert_eq!(parse_frame(b"a\nb\rc"), Ok(Frame::Partial));
        assert_eq!(parse_frame(b"a\n\r\n"), Ok(Frame::Complete { len: 4 }));
        assert_eq!(parse_frame(b"\n\r\r\n"), Ok(Frame::Complete { len: 4 }));
    }

    #[test]
    fn a_line_may_be_exactly_the_limit() {
        assert_eq!(parse_frame_limited(b"abc\r\n", 5), Ok(Frame::Complete { len: 5 }));
        assert_eq!(parse_frame_limited(b"abcd\r\n", 5), Err(FrameError::LineTooLong { limit: 5 }));
        assert_eq!(parse_frame_limited(b"abcd", 5), Ok(Frame::Partial));
    }

    #[test]
    fn replies_one_at_a_time() {
        let buf = b"{\"a\": 1}\r\n\r\n{\"b\": \"x\\r\\n\"}\r\n\r\n{";
        let first = find_reply_end(buf, 0, 0).unwrap();
        assert_eq!(&buf[..first], b"{\"a\": 1}\r\n\r\n");
        let second = find_reply_end(buf, first, first).unwrap();
        assert_eq!(&buf[first..second], b"{\"b\": \"x\\r\\n\"}\r\n\r\n");
        assert_eq!(find_reply_end(buf, second, second), None);
        // A terminator split across reads is found when the search resumes.
        assert_eq!(find_reply_end(b"{}\r\n\r", 0, 0), None);
        assert_eq!(find_reply_end(b"{}\r\n\r\n", 0, 5), Some(6));
        // The end of the previous reply is not part of this one.
        assert_eq!(find_reply_end(b"\r\n\r\n\n", 4, 4), None);
        // Bare or doubled line ends are not a terminator.
        assert_eq!(find_reply_end(b"a\n\n\r\r\n\n", 0, 0), None);
        assert_eq!(find_reply_end(b"", 0, 0), None);
        assert_eq!(find_reply_end(b"ab", 0, 7), None);
    }

    /// The resumable search agrees with the obvious one, wherever a reply
    /// starts and the search resumes.
    #[test]
    fn find_reply_end_agrees_with_a_window_search() {
        let buf = b"x\r\n\r\n\r\n\r\ny\r\r\n\n\r\n\r\n";
        for start in 0..=buf.len() {
            let want = buf[start..].windows(4).position(|w| w == REPLY_TERMINATOR);
            let want = want.map(|at| start + at + 4);
            // Resuming at `from` is right when no reply ended before it.
            let last_from = want.map_or(buf.len(), |end| end - 1);
            for from in start..=last_from {
                assert_eq!(find_reply_end(buf, start, from), want, "start {start}, from {from}");
            }
        }
    }

    #[test]
    fn find_crlf_resumes() {
        assert_eq!(find_crlf(b"\r\nx\r\n", 2), Some(3));
        // A `\r` just before `from` still starts a `\r\n`: a caller resumes
        // at the end of what it searched, and the `\n` may arrive later.
        assert_eq!(find_crlf(b"ab\r\nx", 3), Some(2));
        assert_eq!(find_crlf(b"x\r", 5), None);
    }
}
