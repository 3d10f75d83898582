//! One TCP connection of the runner to the server under test: writes
//! counted by request, replies framed, every wait bounded.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{lock, SharedTranscript, GRACE, MAX_REPLY, WRITE_GAP};
use crate::conform::framing::{scan_reply, Scan};
use crate::conform::matcher::ReplyBytes;

/// One connection of the runner to a server.
pub(super) struct Conn {
    pub(super) name: String,
    pub(super) stream: TcpStream,
    pub(super) buf: Vec<u8>,
    pub(super) eof: bool,
    /// Requests written (each `\r\n` ends one).
    pub(super) requests: usize,
    pub(super) replies: usize,
    /// The first word of each request written, in order.
    pub(super) commands: Vec<String>,
    /// Requests in the last write.
    pub(super) last_write_requests: usize,
    /// The last thing done on this connection was a write.
    pub(super) last_was_write: bool,
    /// The last reply read was an error reply.
    pub(super) last_reply_error: bool,
    pub(super) transcript: SharedTranscript,
}

pub(super) enum ReadOutcome {
    Reply(ReplyBytes),
    /// The server closed the connection; `partial` is what came before.
    Closed {
        partial: Vec<u8>,
    },
    TimedOut {
        partial: Vec<u8>,
    },
    /// More than [`MAX_REPLY`] bytes without the end of a reply.
    TooLong {
        partial: Vec<u8>,
    },
    Failed(String),
}

enum Fill {
    Data,
    Eof,
    Timeout,
    Error(String),
}

impl Conn {
    pub(super) fn new(name: String, stream: TcpStream, transcript: SharedTranscript) -> Self {
        Self {
            name,
            stream,
            buf: Vec::new(),
            eof: false,
            requests: 0,
            replies: 0,
            commands: Vec::new(),
            last_write_requests: 0,
            last_was_write: false,
            last_reply_error: false,
            transcript,
        }
    }

    pub(super) async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), String> {
        if self.last_was_write {
            tokio::time::sleep(WRITE_GAP).await;
        }
        lock(&self.transcript).bytes(format!("{} >", self.name), bytes);
        let count = bytes.windows(2).filter(|w| *w == b"\r\n").count();
        self.requests += count;
        let mut text = bytes;
        while let Some(end) = text.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&text[..end]);
            self.commands.push(line.split(' ').next().unwrap_or("").to_owned());
            text = &text[end + 2..];
        }
        self.last_write_requests = count;
        self.last_was_write = true;
        match tokio::time::timeout(timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "the server did not take the bytes within {} s (--timeout)",
                timeout.as_secs_f64()
            )),
        }
    }

    async fn fill(&mut self, until: Instant) -> Fill {
        let mut chunk = [0u8; 8192];
        let wait = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                self.eof = true;
                Fill::Eof
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Ok(Err(error)) => {
                // A reset after the server closed is a close.
                self.eof = true;
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) {
                    Fill::Eof
                } else {
                    Fill::Error(error.to_string())
                }
            }
            Err(_) => Fill::Timeout,
        }
    }

    fn take(&mut self, n: usize, terminated: bool) -> ReadOutcome {
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        lock(&self.transcript).bytes(format!("{} <", self.name), &bytes);
        self.replies += 1;
        self.last_reply_error = bytes.windows(7).any(|w| w == b"\"ERROR\"");
        ReadOutcome::Reply(ReplyBytes { bytes, terminated })
    }

    fn take_partial(&mut self) -> Vec<u8> {
        let partial = std::mem::take(&mut self.buf);
        if !partial.is_empty() {
            lock(&self.transcript).bytes(format!("{} <", self.name), &partial);
        }
        partial
    }

    pub(super) async fn read_reply(&mut self, timeout: Duration) -> ReadOutcome {
        self.last_was_write = false;
        let deadline = Instant::now() + timeout;
        loop {
            match scan_reply(&self.buf) {
                Scan::Reply(n) => return self.take(n, true),
                Scan::Unterminated { len, more_follows } => {
                    if !more_follows && !self.eof {
                        let grace = deadline.min(Instant::now() + GRACE);
                        if let Fill::Data = self.fill(grace).await {
                            continue;
                        }
                    }
                    return self.take(len, false);
                }
                Scan::Incomplete => {
                    if self.buf.len() > MAX_REPLY {
                        let partial = self.take_partial();
                        return ReadOutcome::TooLong { partial };
                    }
                    if self.eof {
                        let partial = self.take_partial();
                        lock(&self.transcript).note(format!("{}: closed by the server", self.name));
                        return ReadOutcome::Closed { partial };
                    }
                    match self.fill(deadline).await {
                        Fill::Data | Fill::Eof => {}
                        Fill::Timeout => {
                            let partial = self.take_partial();
                            return ReadOutcome::TimedOut { partial };
                        }
                        Fill::Error(error) => return ReadOutcome::Failed(error),
                    }
                }
            }
        }
    }

    /// Sends a request and reads its reply, for setup; `None` on any
    /// trouble.
    pub(super) async fn ask(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<ReplyBytes, String> {
        self.write(request, timeout).await?;
        match self.read_reply(timeout).await {
            ReadOutcome::Reply(reply) => Ok(reply),
            ReadOutcome::Closed { .. } => Err("the server closed the connection".into()),
            ReadOutcome::TimedOut { .. } => {
                Err(format!("no reply within {} s (--timeout)", timeout.as_secs_f64()))
            }
            ReadOutcome::TooLong { .. } => Err("a reply without end".into()),
            ReadOutcome::Failed(error) => Err(error),
        }
    }
}
