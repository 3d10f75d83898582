//! The baseline: a server that answers every request line with one fixed,
//! valid reply and does nothing else.
//!
//! It is the trivial tokio server (one task per connection, read, count the
//! `\r\n`s, write that many replies), run on a runtime of its own with as
//! many worker threads as the reference server has and the same scheduling
//! setting ([`crate::server::GLOBAL_QUEUE_INTERVAL`]), so that it competes
//! for the CPUs with the load generator the way a server in another process
//! does, and differs from the reference server only in the work it does.
//! Whatever rate it reaches is the ceiling of this machine and this
//! generator; a real server's figures are reported as a ratio to it.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The fixed reply: an `auth` reply, so that the generator's sessions get a
/// token; every other request reads it as an `OK`.
pub(crate) const REPLY: &[u8] =
    b"{\"status\": \"OK\", \"tokenid\": \"00000000-0000-4000-8000-000000000000\"}\r\n\r\n";

/// A running baseline server; dropping it stops it.
pub(crate) struct Baseline {
    addr: SocketAddr,
    runtime: Option<Runtime>,
}

impl Baseline {
    /// Starts the server on `127.0.0.1` (a free port) with `threads` workers.
    pub(crate) fn start(threads: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("baseline")
            .enable_all()
            .global_queue_interval(crate::server::GLOBAL_QUEUE_INTERVAL)
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(accept_loop(listener));
        Ok(Self { addr, runtime: Some(runtime) })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    }
}

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 16 * 1024];
    let mut output = Vec::new();
    // Whether the previous read ended with `\r`.
    let mut after_cr = false;
    loop {
        let n = match stream.read(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let lines = count_lines(&input[..n], &mut after_cr);
        for _ in 0..lines {
            output.extend_from_slice(REPLY);
        }
        if stream.write_all(&output).await.is_err() {
            return;
        }
        output.clear();
    }
}

/// How many `\r\n` end in `data`, given whether the bytes before it ended
/// with `\r`.
fn count_lines(data: &[u8], after_cr: &mut bool) -> usize {
    let mut lines = 0;
    let mut prev_cr = *after_cr;
    for &b in data {
        if b == b'\n' && prev_cr {
            lines += 1;
        }
        prev_cr = b == b'\r';
    }
    *after_cr = prev_cr;
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_across_reads() {
        let mut cr = false;
        assert_eq!(count_lines(b"a\r\nb\nc\r", &mut cr), 1);
        assert!(cr);
        assert_eq!(count_lines(b"\nd\r\n", &mut cr), 2);
        assert!(!cr);
    }
}
