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
#[derive(Debug)]
pub struct Connection {
    buf: Vec<u8>,
    /// Where the search for `\r\n` resumes (everything before has none).
    searched: usize,
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
        Self { buf: Vec::new(), searched: 0, discarding: false, max_line: max_line.max(2) }
    }

    /// Takes the bytes of one read and calls `on_request` for each request
    /// they complete, in order: `Ok(line)` with the terminator included, or
    /// `Err` once for a line over the limit.
    pub fn handle_bytes(&mut self, data: &[u8], mut on_request: impl FnMut(Result<&[u8], FrameError>)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            match find_crlf(&self.buf, self.searched.max(start)) {
                Some(at) => {
                    let end = at + 2;
                    if self.discarding {
                        self.discarding = false;
                    } else if end - start > self.max_line {
                        on_request(Err(FrameError::LineTooLong { limit: self.max_line }));
                    } else {
                        on_request(Ok(&self.buf[start..end]));
                    }
                    start = end;
                    self.searched = end;
                }
                None => {
                    self.searched = self.buf.len();
                    if !self.discarding && self.buf.len() - start >= self.max_line {
                        on_request(Err(FrameError::LineTooLong { limit: self.max_line }));
                        self.discarding = true;
                    }
                    if self.discarding {
                        // Keep only a trailing `\r`: it may start the `\r\n`
                        // that ends the skipped line.
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
        assert_eq!(feed(&mut conn, b"a\r\nb\r\nc"), vec![Ok(b"a\r\n".to_vec()), Ok(b"b\r\n".to_vec())]);
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

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut conn = Connection::new(8);
        assert_eq!(feed(&mut conn, b"012345\r\n"), vec![Ok(b"012345\r\n".to_vec())]);
    }
}
