//! Helpers shared by `wire_reference`, `split_requests` and
//! `server_behaviour`: an in-process server, a raw-socket client that reads
//! exactly one reply at a time, and token checks.
//!
//! Every wait has a timeout, so a server that stops answering fails the test
//! that hit it instead of hanging the whole suite.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use progjar_chat::protocol::frame::find_reply_end;
use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::server;
use progjar_chat::shared::SharedChat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single wait on the server may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The exact error reply carrying `message`.
pub fn error_reply(message: &str) -> String {
    format!("{{\"status\": \"ERROR\", \"message\": \"{message}\"}}\r\n\r\n")
}

pub const MESSAGE_SENT: &str = "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n";
pub const LOGGED_OUT: &str =
    "{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}\r\n\r\n";
pub const EMPTY_INBOX: &str = "{\"status\": \"OK\", \"messages\": {}}\r\n\r\n";

/// A server running inside the test's tokio runtime on `127.0.0.1:0`.
pub struct InProcessServer {
    pub addr: SocketAddr,
    pub state: Arc<SharedChat>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl InProcessServer {
    /// The built-in users and the default limits.
    pub async fn start() -> Self {
        Self::start_with(UserDirectory::builtin(), Limits::default()).await
    }

    pub async fn start_with(users: UserDirectory, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(SharedChat::with_limits(users, limits));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(listener, Arc::clone(&state), async move {
            let _ = rx.await;
        }));
        Self { addr, state, shutdown: Some(tx), handle: Some(handle) }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Triggers shutdown without waiting for the drain to finish.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Triggers shutdown and waits (bounded) for `server::run` to return.
    /// Connections still open keep the drain waiting, so close them first.
    pub async fn stop(mut self) {
        self.signal_shutdown();
        let handle = self.handle.take().expect("stopped once");
        tokio::time::timeout(TIMEOUT, handle)
            .await
            .expect("server::run returns after shutdown once its connections are closed")
            .expect("server task did not panic");
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// A raw-socket client: bytes out, one reply (up to `\r\n\r\n`) in.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes received after the last reply handed out.
    pending: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).expect("set_nodelay");
        Self { stream, pending: Vec::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write request");
        self.stream.flush().await.expect("flush");
    }

    /// Reads exactly one reply, terminator included. Bytes after it are kept
    /// for the next call.
    pub async fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = find_reply_end(&self.pending, 0, 0) {
                let rest = self.pending.split_off(end);
                return std::mem::replace(&mut self.pending, rest);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no whole reply within {TIMEOUT:?}; got so far {:?}",
                        String::from_utf8_lossy(&self.pending)
                    )
                })
                .expect("read reply");
            assert!(
                n > 0,
                "server closed the connection before a whole reply; got {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads `n` replies in order.
    pub async fn read_replies(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut replies = Vec::with_capacity(n);
        for _ in 0..n {
            replies.push(self.read_reply().await);
        }
        replies
    }

    /// Sends one request and returns its one reply as text. Fails if more
    /// bytes than that one reply have arrived: one request, one reply.
    pub async fn ask(&mut self, request: &[u8]) -> String {
        assert!(self.pending.is_empty(), "unread bytes before a request: {:?}", self.pending);
        self.send(request).await;
        let reply = self.read_reply().await;
        assert!(
            self.pending.is_empty(),
            "more than one reply to {:?}: extra {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&self.pending)
        );
        String::from_utf8(reply).expect("replies are ASCII")
    }

    /// Logs in and returns the token, checking the reply's exact bytes.
    pub async fn login(&mut self, username: &str, password: &str) -> String {
        let reply = self.ask(format!("auth {username} {password} \r\n").as_bytes()).await;
        token_from_auth_reply(&reply)
    }
}

/// The index of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Panics unless `token` is a UUID version 4 in lowercase hyphenated form
/// (`4c908ff6-3c15-4052-a98a-095d2454cf93`), as the original sends.
pub fn assert_uuid4(token: &str) {
    let bytes = token.as_bytes();
    assert_eq!(bytes.len(), 36, "token {token:?} is not 36 characters");
    for (i, &b) in bytes.iter().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(b, b'-', "token {token:?}: no hyphen at {i}");
        } else {
            assert!(
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                "token {token:?}: {:?} at {i} is not a lowercase hex digit",
                b as char
            );
        }
    }
    assert_eq!(bytes[14], b'4', "token {token:?} is not version 4");
    assert!(b"89ab".contains(&bytes[19]), "token {token:?} is not the RFC 4122 variant");
}

/// Checks that `reply` is exactly `{"status": "OK", "tokenid": "<uuid4>"}`
/// plus terminator, and returns the token.
pub fn token_from_auth_reply(reply: &str) -> String {
    const HEAD: &str = "{\"status\": \"OK\", \"tokenid\": \"";
    const TAIL: &str = "\"}\r\n\r\n";
    let token = reply
        .strip_prefix(HEAD)
        .and_then(|rest| rest.strip_suffix(TAIL))
        .unwrap_or_else(|| panic!("not a successful auth reply: {reply:?}"));
    assert_uuid4(token);
    assert_eq!(reply, format!("{HEAD}{token}{TAIL}"));
    token.to_string()
}

/// Whether `s[at..]` starts with something shaped like a token
/// (8-4-4-4-12 lowercase hex).
fn token_at(s: &[u8], at: usize) -> bool {
    let Some(candidate) = s.get(at..at + 36) else { return false };
    candidate.iter().enumerate().all(|(i, &b)| {
        if [8, 13, 18, 23].contains(&i) {
            b == b'-'
        } else {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        }
    })
}

/// Replaces every token-shaped string by `<T0>`, `<T1>`, … in order of first
/// appearance, so that runs with different (random or sequential) tokens
/// can be compared byte for byte.
pub fn normalize_tokens(bytes: &[u8]) -> String {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if token_at(bytes, i) {
            let token = bytes[i..i + 36].to_vec();
            let n = match seen.iter().position(|t| *t == token) {
                Some(n) => n,
                None => {
                    seen.push(token);
                    seen.len() - 1
                }
            };
            out.extend_from_slice(format!("<T{n}>").as_bytes());
            i += 36;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
