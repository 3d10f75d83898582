//! The reference's replies to a session: the reference server, started in
//! this process on a free loopback port for each session (so sessions are
//! independent), driven over TCP exactly as the runner drives the
//! implementation: the pieces of a step a moment apart, then one reply
//! read per request.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::session::{Part, Request, Session, Tok, NEVER_ISSUED};
use crate::conform::run::{InProcess, WRITE_GAP};
use crate::conform::users::UserMap;

/// The longest wait for a reply of the reference.
const WAIT: Duration = Duration::from_secs(5);

/// Why the reference gave no replies to use.
#[derive(Debug)]
pub(crate) enum ReferenceError {
    /// The reference server could not start or be reached.
    Start(std::io::Error),
}

impl std::fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReferenceError::Start(e) => write!(f, "cannot start the reference server: {e}"),
        }
    }
}

impl std::error::Error for ReferenceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReferenceError::Start(e) => Some(e),
        }
    }
}

/// The reference's reply to every request, step by step; `None` where it
/// gave none (the rest of that connection is then not read).
pub(crate) async fn replies(
    session: &Session,
    users: &UserMap,
) -> Result<Vec<Vec<Option<Value>>>, ReferenceError> {
    // Off 127.0.0.1 (see `InProcess::start_on`), where the loopback
    // network allows it.
    let server = match InProcess::start_on(Ipv4Addr::new(127, 0, 0, 2), users).await {
        Ok(server) => server,
        Err(_) => InProcess::start(users).await.map_err(ReferenceError::Start)?,
    };
    let result = drive(session, server.addr).await;
    server.stop().await;
    result
}

struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
    dead: bool,
}

async fn drive(
    session: &Session,
    addr: std::net::SocketAddr,
) -> Result<Vec<Vec<Option<Value>>>, ReferenceError> {
    let mut conns: BTreeMap<u32, Conn> = BTreeMap::new();
    let mut tokens: BTreeMap<u32, String> = BTreeMap::new();
    let mut out = Vec::new();
    for step in &session.steps {
        let conn = match conns.entry(step.conn) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let stream = TcpStream::connect(addr).await.map_err(ReferenceError::Start)?;
                let _ = stream.set_nodelay(true);
                entry.insert(Conn { stream, buffer: Vec::new(), dead: false })
            }
        };
        let pieces = step.pieces();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(WRITE_GAP).await;
            }
            let bytes = bytes_of(piece, &tokens);
            if !conn.dead && conn.stream.write_all(&bytes).await.is_err() {
                conn.dead = true;
            }
        }
        let mut replies = Vec::new();
        for request in &step.requests {
            let reply = if conn.dead { None } else { read_reply(conn).await };
            if reply.is_none() {
                conn.dead = true;
            }
            if let (Request::Auth { id, .. }, Some(token)) =
                (request, reply.as_ref().and_then(|r| r.get("tokenid")).and_then(Value::as_str))
            {
                tokens.insert(*id, token.to_owned());
            }
            replies.push(reply);
        }
        out.push(replies);
    }
    Ok(out)
}

/// A piece's bytes, each token replaced by the one its login got (or by a
/// token never issued, as the written example does).
pub(crate) fn bytes_of(piece: &[Part], tokens: &BTreeMap<u32, String>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for part in piece {
        match part {
            Part::Lit(b) => bytes.extend_from_slice(b),
            Part::Token(token) => {
                let text = match token {
                    Tok::Of(id) => tokens.get(id).cloned().unwrap_or_else(|| NEVER_ISSUED.into()),
                    Tok::Mangled(id) => {
                        format!("{}x", tokens.get(id).map_or(NEVER_ISSUED, String::as_str))
                    }
                    Tok::Never => NEVER_ISSUED.into(),
                };
                bytes.extend_from_slice(text.as_bytes());
            }
        }
    }
    bytes
}

async fn read_reply(conn: &mut Conn) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(end) = conn.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let reply: Vec<u8> = conn.buffer.drain(..end + 4).collect();
            return serde_json::from_slice(&reply[..end]).ok();
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, conn.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => conn.buffer.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}
