//! One connection's byte stream, cut into requests in order.
//!
//! Bytes arrive in reads of any size: several requests in one read, one
//! request over many reads, a `\r\n` split between two reads. [`Connection`]
//! keeps what is not yet a whole request and hands each whole one, in
//! order, to the caller. A line longer than the limit is answered once with
//! an error and then skipped up to its `\r\n`, so the connection resumes
//! with the next request and the buffer never grows past the limit.

use super::frame::{find_crlf, FrameError, DEFAULT_MAX_LINE};

/// The bytes of one connection that are not yet a whole request.
///
/// Only an incomplete request is ever kept: whole requests are handed out
/// straight from the caller's bytes, so a server can read every connection
/// into one shared buffer and an idle connection holds no buffer at all.
#[derive(Debug)]
pub struct Connection {
    /// The start of a request whose `\r\n` has not arrived (it holds no
    /// `\r\n`), or the trailing `\r` of a line being skipped.
    buf: Vec<u8>,
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
        Self { buf: Vec::new(), discarding: false, max_line: max_line.max(2) }
    }

    /// Takes the bytes of one read and calls `on_request` for each request
    /// they complete, in order: `Ok(line)` with the terminator included, or
    /// `Err` once for a line over the limit.
    pub fn handle_bytes(
        &mut self,
        data: &[u8],
        mut on_request: impl FnMut(Result<&[u8], FrameError>),
    ) {
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
            let used = self.cut(&buf, resume, &mut on_request);
            if end.is_none() {
                self.buf = buf;
                self.buf.drain(..used);
                return;
            }
            // The request is complete, so nothing is left of `buf`: let its
            // memory go rather than keep it for an idle connection.
            debug_assert_eq!(used, buf.len());
            data = &data[take..];
        }
        let used = self.cut(data, 0, &mut on_request);
        self.buf.extend_from_slice(&data[used..]);
    }

    /// Hands every whole request of `buf` to `on_request`, looking for
    /// `\r\n` from `from` on, and returns how many bytes it used up; the rest
    /// is an incomplete request (or the trailing `\r` of a skipped line).
    fn cut(
        &mut self,
        buf: &[u8],
        from: usize,
        on_request: &mut impl FnMut(Result<&[u8], FrameError>),
    ) -> usize {
        let mut start = 0;
        let mut search = from;
        loop {
            match find_crlf(buf, search) {
                Some(at) => {
                    let end = at + 2;
                    if self.discarding {
                        self.discarding = false;
                    } else if end - start > self.max_line {
                        on_request(Err(FrameError::LineTooLong { limit: self.max_line }));
                    } else {
                        on_request(Ok(&buf[start..end]));
                    }
                    start = end;
                    search = end;
                }
                None => {
                    if !self.discarding && buf.len() - start >= self.max_line {
                        on_request(Err(FrameError::LineTooLong { limit: self.max_line }));
                        self.discarding = true;
                    }
                    if self.discarding {
                        // Keep only a trailing `\r`: it may start the `\r\n`
                        // that ends the skipped line.
                        let keep = usize::from(buf.last() == Some(&b'\r'));
                        start = buf.len() - keep;
                    }
                    return start;
                }
            }
        }
    }

    /// How many bytes wait for the rest of their request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn agrees_with_the_copying_implementation_on_any_split() {
        // A small deterministic generator: streams of short and over-long
        // lines over the bytes that matter (`\r`, `\n`, others), cut into
        // reads of random sizes.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..3000 {
            let max_line = 2 + next(12) as usize;
            let len = next(80) as usize;
            let stream: Vec<u8> = (0..len)
                .map(|_| match next(6) {
                    0 | 1 => b'\r',
                    2 => b'\n',
                    _ => b'a' + next(3) as u8,
                })
                .collect();
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
