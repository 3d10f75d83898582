//! One connection's byte stream, cut into requests in order.
//!
//! Bytes arrive in reads of any size: several requests in one read, one
//! request over many reads, a `\r\n` split between two reads. [`Connection`]
//! keeps what is not yet a whole request and hands each whole one, in
//! order, to the caller. A line longer than the limit is answered once with
//! an error and then skipped up to its `\r\n`, so the connection resumes
//! with the next request and the buffer never grows past the limit.
//!
//! The caller may also stop part-way through a read
//! ([`Connection::handle_bytes_until`]), when it holds as many replies as it
//! will before writing them: the requests not yet handed out are kept, in
//! order, and handed out by [`Connection::resume`] once the caller is ready
//! (a server stops reading from the socket meanwhile, so what is kept is at
//! most one read and the start of a request).

use std::ops::ControlFlow;

use super::frame::{find_crlf, FrameError};
use super::limits::DEFAULT_MAX_LINE;

/// The bytes of one connection that are not yet a whole request.
///
/// Only an incomplete request is ever kept: whole requests are handed out
/// straight from the caller's bytes, so a server can read every connection
/// into one shared buffer and an idle connection holds no buffer at all.
#[derive(Debug)]
pub struct Connection {
    /// The start of a request whose `\r\n` has not arrived (it holds no
    /// `\r\n`), or the trailing `\r` of a line being skipped. While
    /// paused: from `held_from` on, the bytes not yet handed out, whole
    /// requests among them.
    buf: Vec<u8>,
    /// Paused: the caller stopped before all of `buf` was handed out.
    paused: bool,
    /// While paused, where in `buf` the bytes not yet handed out begin.
    held_from: usize,
    /// Inside an over-long line that has already been answered.
    discarding: bool,
    max_line: usize,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl Connection {
    /// A connection that accepts request lines of at most `max_line` bytes,
    /// terminator included.
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            paused: false,
            held_from: 0,
            discarding: false,
            max_line: max_line.max(2),
        }
    }

    /// Takes the bytes of one read and calls `on_request` for each request
    /// they complete, in order: `Ok(line)` with the terminator included, or
    /// `Err` once for a line over the limit.
    pub fn handle_bytes(
        &mut self,
        data: &[u8],
        mut on_request: impl FnMut(Result<&[u8], FrameError>),
    ) {
        self.handle_bytes_until(data, |request| {
            on_request(request);
            ControlFlow::Continue(())
        });
    }

    /// As [`Connection::handle_bytes`], but `on_request` may stop the
    /// handing out after any request by returning `Break`: the bytes not yet
    /// handed out are then kept (copied, the only time whole requests are)
    /// and the connection is [paused](Connection::is_paused) until
    /// [`Connection::resume`] has handed them all out. Given more bytes
    /// while paused, it appends them and resumes.
    pub(crate) fn handle_bytes_until(
        &mut self,
        data: &[u8],
        mut on_request: impl FnMut(Result<&[u8], FrameError>) -> ControlFlow<()>,
    ) {
        if self.paused {
            self.buf.extend_from_slice(data);
            self.resume(on_request);
            return;
        }
        let mut data = data;
        if !self.buf.is_empty() {
            // Finish the request an earlier read began, copying from `data`
            // only the bytes up to its `\r\n` (which may straddle the reads).
            // `buf` holds no `\r\n`, so the search can resume at its last
            // byte (a `\r` there may begin one).
            let resume = self.buf.len() - 1;
            let end = if self.buf.ends_with(b"\r") && data.starts_with(b"\n") {
                Some(1)
            } else {
                find_crlf(data, 0).map(|at| at + 2)
            };
            let take = end.unwrap_or(data.len());
            self.buf.extend_from_slice(&data[..take]);
            let buf = std::mem::take(&mut self.buf);
            let (used, flow) = self.cut(&buf, resume, &mut on_request);
            if end.is_none() {
                self.buf = buf;
                self.buf.drain(..used);
                return;
            }
            // The request is complete, so nothing is left of `buf`: let its
            // memory go rather than keep it for an idle connection.
            debug_assert_eq!(used, buf.len());
            data = &data[take..];
            if flow.is_break() {
                self.pause(data);
                return;
            }
        }
        match self.cut(data, 0, &mut on_request) {
            (used, ControlFlow::Continue(())) => self.buf.extend_from_slice(&data[used..]),
            (used, ControlFlow::Break(())) => self.pause(&data[used..]),
        }
    }

    /// Whether bytes that may hold whole requests wait for
    /// [`Connection::resume`] (the caller stopped part-way).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Hands out, in order, the requests kept when the caller stopped, until
    /// it stops again or all are out (the connection is then no longer
    /// paused). Does nothing unless paused.
    pub(crate) fn resume(
        &mut self,
        mut on_request: impl FnMut(Result<&[u8], FrameError>) -> ControlFlow<()>,
    ) {
        if !self.paused {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let (used, flow) = self.cut(&buf[self.held_from..], 0, &mut on_request);
        let held_from = self.held_from + used;
        if flow.is_break() && held_from < buf.len() {
            self.held_from = held_from;
        } else {
            // All whole requests are out: what is left is an incomplete
            // request, as when not paused.
            buf.drain(..held_from);
            if buf.is_empty() {
                buf = Vec::new();
            }
            self.held_from = 0;
            self.paused = false;
        }
        self.buf = buf;
    }

    /// Keeps `rest`, the bytes after the request the caller stopped at.
    fn pause(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.buf.extend_from_slice(rest);
            self.held_from = 0;
            self.paused = true;
        }
    }

    /// Hands every whole request of `buf` to `on_request`, looking for
    /// `\r\n` from `from` on, until `on_request` says stop; returns how many
    /// bytes it used up, and whether it stopped. Unless it stopped, the rest
    /// is an incomplete request (or the trailing `\r` of a skipped line).
    fn cut(
        &mut self,
        buf: &[u8],
        from: usize,
        on_request: &mut impl FnMut(Result<&[u8], FrameError>) -> ControlFlow<()>,
    ) -> (usize, ControlFlow<()>) {
        let mut start = 0;
        let mut search = from;
        loop {
            match find_crlf(buf, search) {
                Some(at) => {
                    let end = at + 2;
                    let flow = if self.discarding {
                        self.discarding = false;
                        ControlFlow::Continue(())
                    } else if end - start > self.max_line {
                        on_request(Err(FrameError::LineTooLong { limit: self.max_line }))
                    } else {
                        on_request(Ok(&buf[start..end]))
                    };
                    start = end;
                    search = end;
                    if flow.is_break() {
                        return (start, flow);
                    }
                }
                None => {
                    if !self.discarding && buf.len() - start >= self.max_line {
                        // What is left is all skipped: a stop changes nothing.
                        let _ = on_request(Err(FrameError::LineTooLong { limit: self.max_line }));
                        self.discarding = true;
                    }
                    if self.discarding {
                        // Keep only a trailing `\r`: it may start the `\r\n`
                        // that ends the skipped line.
                        let keep = usize::from(buf.last() == Some(&b'\r'));
                        start = buf.len() - keep;
                    }
                    return (start, ControlFlow::Continue(()));
                }
            }
        }
    }

    /// How many bytes wait for the rest of their request (while paused:
    /// for the caller to resume).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.held_from
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::xorshift::xorshift;

    fn feed(conn: &mut Connection, data: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut got = Vec::new();
        conn.handle_bytes(data, |r| got.push(r.map(<[u8]>::to_vec)));
        got
    }

    #[test]
    fn several_requests_in_one_read() {
        let mut conn = Connection::default();
        assert_eq!(
            feed(&mut conn, b"a\r\nb\r\nc"),
            vec![Ok(b"a\r\n".to_vec()), Ok(b"b\r\n".to_vec())]
        );
        assert_eq!(conn.buffered(), 1);
        assert_eq!(feed(&mut conn, b"\r\n"), vec![Ok(b"c\r\n".to_vec())]);
        assert_eq!(conn.buffered(), 0);
    }

    #[test]
    fn one_request_over_many_reads() {
        let mut conn = Connection::default();
        let line = b"auth messi surabaya\r\n";
        for (i, byte) in line.iter().enumerate() {
            let got = feed(&mut conn, &[*byte]);
            if i + 1 < line.len() {
                assert!(got.is_empty());
            } else {
                assert_eq!(got, vec![Ok(line.to_vec())]);
            }
        }
    }

    #[test]
    fn an_over_long_line_is_answered_once_and_skipped() {
        let mut conn = Connection::new(8);
        assert_eq!(feed(&mut conn, b"0123456"), vec![]);
        assert_eq!(feed(&mut conn, b"789"), vec![Err(FrameError::LineTooLong { limit: 8 })]);
        assert!(conn.buffered() <= 1);
        assert_eq!(feed(&mut conn, b"more\r"), vec![]);
        assert_eq!(feed(&mut conn, b"\nok\r\n"), vec![Ok(b"ok\r\n".to_vec())]);
    }

    #[test]
    fn an_over_long_line_in_one_read_is_skipped_too() {
        let mut conn = Connection::new(8);
        assert_eq!(
            feed(&mut conn, b"0123456789\r\nok\r\n"),
            vec![Err(FrameError::LineTooLong { limit: 8 }), Ok(b"ok\r\n".to_vec())]
        );
    }

    /// The previous implementation, which copied every byte into its own
    /// buffer: the reference the present one must agree with.
    struct CopyingConnection {
        buf: Vec<u8>,
        searched: usize,
        discarding: bool,
        max_line: usize,
    }

    impl CopyingConnection {
        fn handle_bytes(&mut self, data: &[u8], got: &mut Vec<Result<Vec<u8>, FrameError>>) {
            self.buf.extend_from_slice(data);
            let mut start = 0;
            loop {
                // One byte back: a `\r` just before `searched` may begin a
                // `\r\n` (whichever way `find_crlf` treats its `from`).
                match find_crlf(&self.buf, self.searched.max(start + 1) - 1) {
                    Some(at) => {
                        let end = at + 2;
                        if self.discarding {
                            self.discarding = false;
                        } else if end - start > self.max_line {
                            got.push(Err(FrameError::LineTooLong { limit: self.max_line }));
                        } else {
                            got.push(Ok(self.buf[start..end].to_vec()));
                        }
                        start = end;
                        self.searched = end;
                    }
                    None => {
                        self.searched = self.buf.len();
                        if !self.discarding && self.buf.len() - start >= self.max_line {
                            got.push(Err(FrameError::LineTooLong { limit: self.max_line }));
                            self.discarding = true;
                        }
                        if self.discarding {
                            let keep = usize::from(self.buf.last() == Some(&b'\r'));
                            start = self.buf.len() - keep;
                        }
                        break;
                    }
                }
            }
            self.buf.drain(..start);
            self.searched -= start;
        }
    }

    /// A stream of fewer than `most` bytes over the ones that matter
    /// (`\r`, `\n`, others): short and over-long lines alike.
    fn random_stream(next: &mut impl FnMut(u64) -> u64, most: u64) -> Vec<u8> {
        let len = next(most) as usize;
        (0..len)
            .map(|_| match next(6) {
                0 | 1 => b'\r',
                2 => b'\n',
                _ => b'a' + next(3) as u8,
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_copying_implementation_on_any_split() {
        // Random streams, cut into reads of random sizes.
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let max_line = 2 + next(12) as usize;
            let stream = random_stream(&mut next, 80);
            let mut ours = Connection::new(max_line);
            let mut reference =
                CopyingConnection { buf: Vec::new(), searched: 0, discarding: false, max_line };
            let (mut got, mut want) = (Vec::new(), Vec::new());
            let mut at = 0;
            while at < stream.len() {
                let size = 1 + next(20) as usize;
                let chunk = &stream[at..(at + size).min(stream.len())];
                got.extend(feed(&mut ours, chunk));
                reference.handle_bytes(chunk, &mut want);
                assert_eq!(got, want, "stream {stream:?}, max_line {max_line}");
                assert_eq!(ours.buffered(), reference.buf.len(), "stream {stream:?}");
                at += size;
            }
        }
    }

    #[test]
    fn a_stop_keeps_the_rest_for_resume() {
        let mut conn = Connection::default();
        let mut got = Vec::new();
        conn.handle_bytes_until(b"a\r\nb\r\nc\r\nd", |r| {
            got.push(r.unwrap().to_vec());
            ControlFlow::Break(())
        });
        assert_eq!(got, [b"a\r\n".to_vec()]);
        assert!(conn.is_paused());
        assert_eq!(conn.buffered(), 7);
        conn.resume(|r| {
            got.push(r.unwrap().to_vec());
            ControlFlow::Break(())
        });
        assert_eq!(got.len(), 2);
        assert!(conn.is_paused());
        conn.resume(|r| {
            got.push(r.unwrap().to_vec());
            ControlFlow::Continue(())
        });
        assert_eq!(got, [&b"a\r\n"[..], b"b\r\n", b"c\r\n"]);
        assert!(!conn.is_paused());
        assert_eq!(conn.buffered(), 1, "the start of d");
        assert_eq!(feed(&mut conn, b"\r\n"), vec![Ok(b"d\r\n".to_vec())]);
        // A stop at the last whole request keeps nothing and does not pause.
        conn.handle_bytes_until(b"e\r\n", |_| ControlFlow::Break(()));
        assert!(!conn.is_paused());
        assert_eq!(conn.buffered(), 0);
    }

    /// Stopping anywhere and resuming (also with more bytes given while
    /// paused) hands out the same requests in the same order as never
    /// stopping, over random streams and reads.
    #[test]
    fn stopping_and_resuming_changes_nothing_but_when() {
        let mut next = xorshift(0x6a09_e667_f3bc_c908);
        for _ in 0..3000 {
            let max_line = 2 + next(12) as usize;
            let stream = random_stream(&mut next, 120);
            let mut ours = Connection::new(max_line);
            let mut plain = Connection::new(max_line);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            let stop_one_in = 1 + next(4);
            let mut stops = next(u64::MAX) | 1;
            let mut stop = |got: &mut Vec<_>, r: Result<&[u8], FrameError>| {
                got.push(r.map(<[u8]>::to_vec));
                stops ^= stops << 13;
                stops ^= stops >> 7;
                stops ^= stops << 17;
                if stops.is_multiple_of(stop_one_in) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            let mut at = 0;
            while at < stream.len() {
                let size = 1 + next(20) as usize;
                let chunk = &stream[at..(at + size).min(stream.len())];
                ours.handle_bytes_until(chunk, |r| stop(&mut got, r));
                want.extend(feed(&mut plain, chunk));
                // Resume fully, or only partly and let the next read come.
                while ours.is_paused() && next(3) != 0 {
                    ours.resume(|r| stop(&mut got, r));
                }
                at += size;
            }
            while ours.is_paused() {
                ours.resume(|r| stop(&mut got, r));
            }
            assert_eq!(got, want, "stream {stream:?}, max_line {max_line}");
            assert_eq!(ours.buffered(), plain.buffered(), "stream {stream:?}");
        }
    }

    #[test]
    fn a_request_split_before_its_newline_then_more_requests() {
        let mut conn = Connection::default();
        assert_eq!(feed(&mut conn, b"list t\r"), vec![]);
        assert_eq!(
            feed(&mut conn, b"\ninbox t\r\nlo"),
            vec![Ok(b"list t\r\n".to_vec()), Ok(b"inbox t\r\n".to_vec())]
        );
        assert_eq!(conn.buffered(), 2);
        assert_eq!(feed(&mut conn, b"gout t\r\n"), vec![Ok(b"logout t\r\n".to_vec())]);
        assert_eq!(conn.buffered(), 0);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut conn = Connection::new(8);
        assert_eq!(feed(&mut conn, b"012345\r\n"), vec![Ok(b"012345\r\n".to_vec())]);
    }
}
