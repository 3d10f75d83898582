//! The tokio server: sockets in, [`Connection`] and [`SharedChat`] do the rest.
//!
//! [`run`] takes a bound listener, the shared state (whose [`Limits`] are
//! the server's too) and a shutdown future from the caller, so
//! tests bind `127.0.0.1:0` and stop the server when they like, while the
//! command line passes Ctrl-C / SIGTERM. On shutdown the server stops
//! accepting, lets every connection answer what reaches it until it has
//! been quiet for a moment (at most a couple of seconds; see
//! [`SHUTDOWN_GRACE`]), and returns once all connections are closed.
//!
//! The connection limits are applied here: over `max_connections`, a new
//! connection gets one `Server Penuh` reply and is closed; with an idle
//! timeout, a connection that neither sends nor takes bytes for that long
//! is closed.
//!
//! A connection's replies are written before more is read from it, and the
//! replies held for it are bounded too
//! ([`Limits::max_pending_output`]): once the replies to the requests of
//! one read pass that mark, the rest of the read waits in its
//! [`Connection`] (paused) until they are written, and is handled before
//! the socket is read again. A client that pipelines and never reads makes
//! the server hold at most the mark plus one reply, and one read.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::protocol::connection::Connection;
use crate::protocol::frame::FrameError;
use crate::protocol::limits::Limits;
use crate::protocol::reply::ErrorReply;
use crate::protocol::token::RandomTokens;
use crate::shared::{Batch, SharedChat};

/// On shutdown, a connection keeps being answered until it has been quiet
/// this long...
pub(crate) const SHUTDOWN_QUIET: Duration = Duration::from_millis(100);

/// ...or for at most this long after the server began to stop, whichever
/// comes first. A reply still being written when this runs out is dropped
/// with the connection (its client is not reading).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How much one read takes from a socket.
const READ_CHUNK: usize = 64 * 1024;

/// A connection's reply buffer is given back after a write once it has
/// grown past this (after a large `inbox`, say), instead of being kept.
const KEEP_OUTPUT: usize = 64 * 1024;

thread_local! {
    /// The one read buffer of each worker thread. A connection reads into it
    /// and handles what it read within the same poll, so no connection owns
    /// a read buffer: only an incomplete request is copied (into its
    /// [`Connection`]), and an idle connection holds no buffer at all.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// How many tasks a worker thread runs from its own queue before it looks
/// at the runtime's shared one (tokio's default is 61).
///
/// When a worker learns of many readable sockets at once (hundreds of
/// connections, say), their tasks overflow its own queue (256 tasks) into
/// the shared one. With the default, tasks that keep being woken into the
/// worker's own queue run again and again while those in the shared queue
/// wait: at 1,000 pipelining connections the median latency fell below the
/// baseline's while the 99th percentile rose to 2–3 times it. Looking
/// every 4 tasks serves connections in about the order they became ready,
/// at no measurable cost in throughput (see the README's Performance
/// section). The load generator and the baseline server of `progjar-chat
/// bench` use it too.
pub(crate) const GLOBAL_QUEUE_INTERVAL: u32 = 4;

/// The multi-threaded runtime the server runs on: tokio's defaults (a
/// worker per CPU), but fair to many connections; see
/// [`GLOBAL_QUEUE_INTERVAL`].
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .build()
}

/// Serves `listener` until `shutdown` completes, then drains and returns.
pub async fn run(
    listener: TcpListener,
    state: Arc<SharedChat>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection task holds a clone of `alive`; when all are dropped,
    // `all_closed` yields `None` and the drain is over.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let open = Arc::new(ConnectionCount::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = open.try_open(state.limits()) else {
                        refuse(stream, peer);
                        continue;
                    };
                    let state = Arc::clone(&state);
                    let stop = stop_rx.clone();
                    let alive = alive.clone();
                    tokio::spawn(async move {
                        serve(stream, peer, &state, stop).await;
                        drop(slot);
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
    mut stop: watch::Receiver<()>,
) {
    debug!(%peer, "connection opened");
    let _ = stream.set_nodelay(true);
    let limits = state.limits();
    let mut conn = Connection::new(limits.max_line);
    let mut output = Vec::new();
    // One shutdown future for the life of the connection (registered with
    // the channel once, not once per request), and a second receiver to
    // check for shutdown between requests without awaiting (and to notice
    // it while a write waits for a client that does not read).
    let mut probe = stop.clone();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    let idle = limits.idle_timeout;
    // Set once the server is stopping: until when this connection may go on.
    let mut stopping: Option<Instant> = None;
    let reason = loop {
        match stopping {
            None if probe.has_changed().unwrap_or(true) => {
                stopping = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            Some(end) if Instant::now() >= end => break "server shutting down",
            _ => {}
        }
        if conn.is_paused() {
            // Requests of an earlier read are waiting: now that the replies
            // before them are written, handle them (within the limit again)
            // and read nothing more until they are all handled.
            resume(&mut conn, state, &mut output, peer);
            if let Err(reason) =
                write_bounded(&mut stream, &output, &mut probe, &mut stopping, idle).await
            {
                break reason;
            }
            clear_output(&mut output);
            continue;
        }
        let read = std::future::poll_fn(|cx| {
            poll_read_shared(&mut stream, cx, |data| {
                // The requests of one read share one acquisition of the
                // lock, released (with the batch) before the write.
                let mut batch = state.batch();
                conn.handle_bytes_until(data, |request| {
                    answer(&mut batch, request, &mut output, peer, limits)
                });
            })
        });
        tokio::select! {
            // The socket first: the shutdown future is only polled (which
            // takes a lock) when there is nothing to read.
            biased;
            read = read => match read {
                Ok(0) => break "closed by peer",
                Ok(_) => {}
                Err(_) => break "read error",
            },
            // Stopping: keep answering what arrives until the connection
            // is quiet (requests may have reached the socket but not yet
            // been read), within the grace period.
            _ = &mut stopped, if stopping.is_none() => {
                stopping = Some(Instant::now() + SHUTDOWN_GRACE);
                continue;
            }
            () = timer(read_wait(stopping, idle)) => {
                break if stopping.is_some() { "server shutting down" } else { "idle timeout" };
            }
        }
        if output.is_empty() {
            continue;
        }
        if let Err(reason) =
            write_bounded(&mut stream, &output, &mut probe, &mut stopping, idle).await
        {
            break reason;
        }
        clear_output(&mut output);
    };
    debug!(%peer, reason, "connection closed");
}

/// Handles one request of a connection, appends its reply to `output`, and
/// says whether to go on with the next one before `output` is written: only
/// while it holds less than the limit's bytes.
#[inline]
fn answer(
    batch: &mut Batch<'_>,
    request: Result<&[u8], FrameError>,
    output: &mut Vec<u8>,
    peer: SocketAddr,
    limits: &Limits,
) -> ControlFlow<()> {
    let handled = batch.answer(request, &mut RandomTokens, output);
    debug!(%peer, command = handled.command, outcome = handled.outcome, "request");
    if limits.may_handle_more(output.len()) {
        ControlFlow::Continue(())
    } else {
        ControlFlow::Break(())
    }
}

/// Hands the requests a paused connection holds to [`answer`], under one
/// acquisition of the lock, until the replies reach the limit again.
fn resume(conn: &mut Connection, state: &SharedChat, output: &mut Vec<u8>, peer: SocketAddr) {
    let mut batch = state.batch();
    conn.resume(|request| answer(&mut batch, request, output, peer, state.limits()));
}

/// Empties a connection's written replies, and gives back their memory
/// once it has grown past [`KEEP_OUTPUT`].
fn clear_output(output: &mut Vec<u8>) {
    output.clear();
    if output.capacity() > KEEP_OUTPUT {
        *output = Vec::new();
    }
}

/// Over the connection limit: the one `Server Penuh` reply, written if the
/// socket takes it at once (a new socket does), and the connection closed
/// without reading from it.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    debug!(%peer, "connection refused: too many connections");
    if let Ok(stream) = stream.into_std() {
        use std::io::Write;
        let _ = (&stream).write(&ErrorReply::ServerFull.to_bytes());
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

/// How long a connection may wait for request bytes: while stopping, until
/// it has been quiet for [`SHUTDOWN_QUIET`] (or the grace period ends);
/// otherwise the idle timeout, if any.
fn read_wait(stopping: Option<Instant>, idle: Option<Duration>) -> Option<Duration> {
    match stopping {
        Some(end) => Some(SHUTDOWN_QUIET.min(end.saturating_duration_since(Instant::now()))),
        None => idle,
    }
}

/// Completes after `wait`, or never.
async fn timer(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// Writes `output` whole, unless its client stops taking it: with an idle
/// timeout, when a write makes no progress for that long; once the server
/// is stopping (noticed here too, through `probe`), at the end of the grace
/// period. `Err` is why the connection ends.
async fn write_bounded(
    stream: &mut TcpStream,
    mut output: &[u8],
    probe: &mut watch::Receiver<()>,
    stopping: &mut Option<Instant>,
    idle: Option<Duration>,
) -> Result<(), &'static str> {
    while !output.is_empty() {
        let wait = match *stopping {
            Some(end) => Some(end.saturating_duration_since(Instant::now())),
            None => idle,
        };
        tokio::select! {
            // The write first: the other branches are only polled (which
            // registers a waiter) when the socket does not take the bytes.
            biased;
            written = stream.write(output) => match written {
                Ok(0) | Err(_) => return Err("write error"),
                Ok(n) => output = &output[n..],
            },
            _ = probe.changed(), if stopping.is_none() => {
                *stopping = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            () = timer(wait) => {
                return Err(if stopping.is_some() { "server shutting down" } else { "idle timeout" });
            }
        }
    }
    Ok(())
}

/// Reads once from `stream` into this thread's [`READ_BUFFER`] and, if
/// bytes came, hands them to `handle` before returning: the buffer is never
/// held across an `.await`. `Ok(0)` is the end of the stream.
fn poll_read_shared(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    handle: impl FnOnce(&[u8]),
) -> Poll<io::Result<usize>> {
    READ_BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        let mut read = ReadBuf::new(&mut buffer[..]);
        ready!(Pin::new(stream).poll_read(cx, &mut read))?;
        let data = read.filled();
        if !data.is_empty() {
            handle(data);
        }
        Poll::Ready(Ok(data.len()))
    })
}

/// How many connections a server has open, shared by the accept loop and
/// the connections themselves.
#[derive(Debug, Default)]
struct ConnectionCount {
    open: AtomicUsize,
}

/// One open connection, counted until it is dropped.
#[derive(Debug)]
struct ConnectionSlot {
    count: Arc<ConnectionCount>,
}

impl ConnectionCount {
    /// Counts one more connection if `limits` allow it, and returns its
    /// slot; `None` if the server is full.
    fn try_open(self: &Arc<Self>, limits: &Limits) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                limits.may_accept(open).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnectionSlot { count: Arc::clone(self) })
    }

    /// How many connections are open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.count.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_count_until_dropped() {
        let limits = Limits { max_connections: 2, ..Limits::default() };
        let count = Arc::new(ConnectionCount::default());
        let a = count.try_open(&limits).expect("first");
        let b = count.try_open(&limits).expect("second");
        assert!(count.try_open(&limits).is_none(), "a third is over the limit");
        assert_eq!(count.open(), 2);
        drop(a);
        assert_eq!(count.open(), 1);
        let _c = count.try_open(&limits).expect("room again");
        drop(b);
        assert_eq!(count.open(), 1);
    }
}
