//! The tokio server: sockets in, [`Connection`] and [`SharedChat`] do the rest.
//!
//! [`run`] takes a bound listener and a shutdown future from the caller, so
//! tests bind `127.0.0.1:0` and stop the server when they like, while the
//! command line passes Ctrl-C / SIGTERM. On shutdown the server stops
//! accepting, lets every connection answer the requests it has already
//! read, and returns once all connections are closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::protocol::connection::Connection;
use crate::protocol::frame::DEFAULT_MAX_LINE;
use crate::protocol::reply::{ErrorReply, Reply};
use crate::protocol::token::RandomTokens;
use crate::shared::SharedChat;

/// How a server treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The longest request line accepted, terminator included.
    pub max_line: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_line: DEFAULT_MAX_LINE }
    }
}

/// How much one read takes from a socket.
const READ_CHUNK: usize = 16 * 1024;

/// Serves `listener` until `shutdown` completes, then drains and returns.
pub async fn run(
    listener: TcpListener,
    state: Arc<SharedChat>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection task holds a clone of `alive`; when all are dropped,
    // `all_closed` yields `None` and the drain is over.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = Arc::clone(&state);
                    let stop = stop_rx.clone();
                    let alive = alive.clone();
                    tokio::spawn(async move {
                        serve(stream, peer, &state, config, stop).await;
                        drop(alive);
                    });
                }
                // Running out of file descriptors and the like: keep serving
                // the connections there are.
                Err(error) => warn!(%error, "accept failed"),
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(());
    drop(alive);
    let _ = all_closed.recv().await;
    info!("all connections closed");
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: &SharedChat,
    config: Config,
    mut stop: watch::Receiver<()>,
) {
    debug!(%peer, "connection opened");
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(config.max_line);
    let mut input = vec![0u8; READ_CHUNK];
    let mut output = Vec::new();
    let reason = loop {
        let n = tokio::select! {
            read = stream.read(&mut input) => match read {
                Ok(0) => break "closed by peer",
                Ok(n) => n,
                Err(_) => break "read error",
            },
            _ = stop.changed() => break "server shutting down",
        };
        conn.handle_bytes(&input[..n], |request| match request {
            Ok(line) => {
                let handled = state.handle_line(line, &mut RandomTokens, &mut output);
                debug!(%peer, command = handled.command, outcome = handled.outcome, "request");
            }
            Err(error) => {
                Reply::Error(ErrorReply::LineTooLong).encode(&mut output);
                debug!(%peer, %error, "request");
            }
        });
        if stream.write_all(&output).await.is_err() {
            break "write error";
        }
        output.clear();
    };
    debug!(%peer, reason, "connection closed");
}
