//! One client connection of the load generator: write requests, take
//! replies one at a time.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire;
use crate::protocol::frame::find_reply_end;

/// The least free space offered to one read.
const READ_SPACE: usize = 16 * 1024;

/// A buffer kept after a large reply is given back once it is this big.
const KEEP_AT_MOST: usize = 1024 * 1024;

/// A connection to the server under test.
#[derive(Debug)]
pub(crate) struct BenchConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the next reply starts in `buf`.
    start: usize,
    /// How far `buf` has been searched for the next reply's end.
    searched: usize,
}

/// Why a request got no useful reply.
#[derive(Debug)]
pub(crate) enum RequestFailed {
    /// The exchange itself failed: a write or read error, a timeout, or
    /// the server closing the connection.
    Io(io::Error),
    /// The server answered with an error reply, carrying its message.
    ErrorReply(String),
}

impl std::fmt::Display for RequestFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestFailed::Io(error) => error.fmt(f),
            RequestFailed::ErrorReply(message) => write!(f, "error reply: {message}"),
        }
    }
}

impl std::error::Error for RequestFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestFailed::Io(error) => Some(error),
            RequestFailed::ErrorReply(_) => None,
        }
    }
}

/// Why a request got no reply.
pub(crate) fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
}

impl BenchConn {
    /// Connects (with Nagle's algorithm off, as every request is one write).
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::new(), start: 0, searched: 0 })
    }

    /// Writes `bytes` (one or more requests).
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Waits for the next whole reply, terminator included.
    pub(crate) async fn reply(&mut self) -> io::Result<&[u8]> {
        self.next_reply(None).await
    }

    /// [`Self::reply`] with a limit on the wait between two reads.
    pub(crate) async fn reply_within(&mut self, limit: Duration) -> io::Result<&[u8]> {
        self.next_reply(Some(limit)).await
    }

    async fn next_reply(&mut self, limit: Option<Duration>) -> io::Result<&[u8]> {
        loop {
            if let Some(end) = find_reply_end(&self.buf, self.start, self.searched) {
                let start = self.start;
                self.start = end;
                self.searched = end;
                return Ok(&self.buf[start..end]);
            }
            self.searched = self.buf.len();
            self.make_room();
            let read = self.stream.read_buf(&mut self.buf);
            let n = match limit {
                None => read.await?,
                Some(limit) => tokio::time::timeout(limit, read)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))??,
            };
            if n == 0 {
                return Err(closed());
            }
        }
    }

    /// Sends one request and waits (at most `limit` between reads) for its
    /// reply; an error reply is an `Err` too, apart from a failed exchange.
    pub(crate) async fn request(
        &mut self,
        line: &[u8],
        limit: Duration,
    ) -> Result<&[u8], RequestFailed> {
        self.send(line).await.map_err(RequestFailed::Io)?;
        let reply = self.reply_within(limit).await.map_err(RequestFailed::Io)?;
        if wire::is_error(reply) {
            return Err(RequestFailed::ErrorReply(wire::error_message(reply)));
        }
        Ok(reply)
    }

    /// Drops the replies already taken and leaves room for one more read.
    fn make_room(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.searched = 0;
            if self.buf.capacity() > KEEP_AT_MOST {
                self.buf = Vec::new();
            }
        } else if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_SPACE {
            self.buf.drain(..self.start);
            self.searched -= self.start;
            self.start = 0;
        }
        // Grow by doubling, so a huge reply costs a linear number of copies.
        let spare = self.buf.capacity() - self.buf.len();
        if spare < READ_SPACE {
            self.buf.reserve(READ_SPACE.max(self.buf.len()));
        }
    }
}
