//! The one raw-socket client: bytes out, exactly one reply (up to and
//! including `\r\n\r\n`) in, bytes after it kept for the next reply, every
//! read bounded by a timeout. One type over two sockets: [`Conn`] blocks
//! (for a server process, or an in-process server on the shared runtime)
//! and [`AsyncConn`] awaits (for a `#[tokio::test]` whose server runs on
//! the test's own runtime, where a blocking read would stall it).

use std::net::SocketAddr;
use std::time::Duration;

use progjar_chat::protocol::frame::find_reply_end;

use super::{token_from_auth_reply, TIMEOUT};

/// A raw connection over the socket `S`.
pub struct RawClient<S> {
    pub stream: S,
    /// Bytes received after the last reply handed out.
    pub pending: Vec<u8>,
    timeout: Duration,
}

/// The blocking client.
pub type Conn = RawClient<std::net::TcpStream>;

/// The async client.
pub type AsyncConn = RawClient<tokio::net::TcpStream>;

impl<S> RawClient<S> {
    /// A client over a socket already connected (and set up).
    pub fn from_stream(stream: S) -> Self {
        Self { stream, pending: Vec::new(), timeout: TIMEOUT }
    }

    /// The longest any one read may wait (default [`TIMEOUT`]).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The received bytes not yet handed out, for messages.
    pub fn pending_text(&self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }

    /// The first whole reply among the received bytes, if there is one.
    fn take_reply(&mut self) -> Option<Vec<u8>> {
        let end = find_reply_end(&self.pending, 0, 0)?;
        let rest = self.pending.split_off(end);
        Some(std::mem::replace(&mut self.pending, rest))
    }

    fn assert_nothing_unread(&self) {
        assert!(
            self.pending.is_empty(),
            "unread bytes before a request: {:?}",
            self.pending_text()
        );
    }

    fn assert_one_reply(&self, request: &[u8]) {
        assert!(
            self.pending.is_empty(),
            "more than one reply to {:?}: extra {:?}",
            String::from_utf8_lossy(request),
            self.pending_text()
        );
    }
}

fn text(reply: Vec<u8>) -> String {
    String::from_utf8(reply).expect("replies are ASCII")
}

fn auth(user: &str, password: &str) -> Vec<u8> {
    format!("auth {user} {password}\r\n").into_bytes()
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self::from_stream(stream)
    }

    /// The same connection with another read timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        self.timeout = timeout;
        self
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("write");
    }

    /// Exactly one reply, terminator included, or `None` if the connection
    /// ends (closed or reset) first; later bytes are kept.
    pub fn try_reply(&mut self) -> Option<String> {
        loop {
            if let Some(reply) = self.take_reply() {
                return Some(text(reply));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.read_some(&mut chunk) {
                0 => return None,
                n => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Exactly one reply; the connection must not end first.
    pub fn reply(&mut self) -> String {
        self.try_reply().unwrap_or_else(|| {
            panic!("connection ended before a whole reply: {:?}", self.pending_text())
        })
    }

    /// One request, one reply, and nothing more.
    pub fn ask(&mut self, request: &[u8]) -> String {
        self.assert_nothing_unread();
        self.send(request);
        let reply = self.reply();
        self.assert_one_reply(request);
        reply
    }

    /// Logs in and returns the token, checking the reply's exact bytes.
    pub fn login(&mut self, user: &str, password: &str) -> String {
        token_from_auth_reply(&self.ask(&auth(user, password)))
    }

    /// Reads until the server ends the connection (bounded by the read
    /// timeout); returns what came before the end.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.read_some(&mut chunk) {
                0 => return std::mem::take(&mut self.pending),
                n => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// One read into [`Self::pending`], for a caller that frames replies
    /// itself: `false`, and nothing read, when the connection ended, failed
    /// or stayed quiet for the read timeout (no panic: the caller counts
    /// what it got).
    pub fn read_more(&mut self) -> bool {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// One read: how many bytes came, 0 when the connection ended or
    /// failed. Panics when nothing came within the read timeout, which in
    /// these tests means a server that neither answers nor closes.
    fn read_some(&mut self, chunk: &mut [u8]) -> usize {
        use std::io::{ErrorKind, Read};
        loop {
            match self.stream.read(chunk) {
                Ok(n) => return n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "nothing more from the server within {:?}; got {:?}",
                        self.timeout,
                        self.pending_text()
                    )
                }
                Err(_) => return 0,
            }
        }
    }
}

impl AsyncConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).expect("set_nodelay");
        Self::from_stream(stream)
    }

    /// The same connection with another read timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write request");
        self.stream.flush().await.expect("flush");
    }

    /// Writes `bytes` in the given pieces, pausing between them so that
    /// the server sees them as separate reads.
    pub async fn send_in_pieces(&mut self, pieces: &[&[u8]]) {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            self.send(piece).await;
        }
    }

    /// Exactly one reply, terminator included, as bytes; later bytes are
    /// kept. The connection must not end first.
    pub async fn reply_bytes(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(reply) = self.take_reply() {
                return reply;
            }
            let n = tokio::time::timeout(self.timeout, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no whole reply within {:?}; got so far {:?}",
                        self.timeout,
                        self.pending_text()
                    )
                })
                .expect("read reply");
            assert!(
                n > 0,
                "server closed the connection before a whole reply; got {:?}",
                self.pending_text()
            );
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Exactly one reply, as text.
    pub async fn reply(&mut self) -> String {
        text(self.reply_bytes().await)
    }

    /// `n` replies in order, as bytes.
    pub async fn replies(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut replies = Vec::with_capacity(n);
        for _ in 0..n {
            replies.push(self.reply_bytes().await);
        }
        replies
    }

    /// One request, one reply, and nothing more.
    pub async fn ask(&mut self, request: &[u8]) -> String {
        self.assert_nothing_unread();
        self.send(request).await;
        let reply = self.reply().await;
        self.assert_one_reply(request);
        reply
    }

    /// Logs in and returns the token, checking the reply's exact bytes.
    pub async fn login(&mut self, user: &str, password: &str) -> String {
        token_from_auth_reply(&self.ask(&auth(user, password)).await)
    }

    /// Asserts that nothing arrives for `period`.
    pub async fn silent_for(&mut self, period: Duration) {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(period, self.stream.read(&mut chunk)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("the server closed the connection"),
            Ok(Ok(n)) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&chunk[..n])),
            Ok(Err(e)) => panic!("read error: {e}"),
        }
    }

    /// Reads until the server ends the connection (bounded by the
    /// timeout); returns what came before the end, unread bytes included.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut rest = std::mem::take(&mut self.pending);
        tokio::time::timeout(self.timeout, self.stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .expect("a clean close");
        rest
    }

    /// Asserts that the server closes the connection with nothing more.
    pub async fn expect_eof(&mut self) {
        let rest = self.read_to_end().await;
        assert!(rest.is_empty(), "bytes before the close: {:?}", String::from_utf8_lossy(&rest));
    }
}
