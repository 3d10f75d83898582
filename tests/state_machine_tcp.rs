//! proptest state machine over TCP: the same random request sequences as
//! `state_machine`, sent to the real tokio server (`server::run` on
//! `127.0.0.1:0`) through real sockets, one per client connection. The
//! server's tokens are random; the harness maps them to the model's by order
//! of issue and checks each is a fresh lowercase UUIDv4.
//!
//! `PROGJAR_PROPTEST_CASES` / `PROGJAR_PROPTEST_STEPS` as in
//! `state_machine`; failures are kept in
//! `tests/regressions/state_machine_tcp.txt`.

#[path = "model/machine.rs"]
mod machine;
mod model;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use machine::{take_replies, Transport, CONNECTIONS, MAX_LINE};
use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::server;
use progjar_chat::shared::SharedChat;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a read may wait for a reply the model says is owed. The server
/// answers a local request in microseconds; a reply that has not come in
/// 2 s is missing (and a failing case is run again at every shrinking step,
/// so a longer wait multiplies: see `machine::config`).
const TIMEOUT: Duration = Duration::from_secs(2);

/// How long the server may take to stop once its connections are closed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// A server of its own per case, and blocking sockets to it, opened on
/// first use.
struct Tcp {
    addr: SocketAddr,
    streams: Vec<Option<TcpStream>>,
    unread: Vec<Vec<u8>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Transport for Tcp {
    fn start() -> Self {
        let rt = runtime();
        let listener =
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let limits = Limits { max_line: MAX_LINE, ..Limits::default() };
        let state = Arc::new(SharedChat::with_limits(UserDirectory::builtin(), limits));
        let (tx, rx) = oneshot::channel::<()>();
        let server = rt.spawn(server::run(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            streams: (0..=CONNECTIONS).map(|_| None).collect(),
            unread: vec![Vec::new(); CONNECTIONS + 1],
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    fn exchange(&mut self, conn: usize, writes: &[Vec<u8>], replies: usize) -> Vec<Vec<u8>> {
        let addr = self.addr;
        let stream = self.streams[conn].get_or_insert_with(|| {
            let stream = TcpStream::connect(addr).expect("connect to the server");
            stream.set_nodelay(true).expect("nodelay");
            stream.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
            stream
        });
        for write in writes {
            stream.write_all(write).expect("write to the server");
            stream.flush().expect("flush");
        }
        let unread = &mut self.unread[conn];
        let mut got = take_replies(unread);
        let mut chunk = [0u8; 4096];
        while got.len() < replies {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    unread.extend_from_slice(&chunk[..n]);
                    got.extend(take_replies(unread));
                }
            }
        }
        got
    }

    fn stop(mut self) {
        self.streams.clear();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            runtime()
                .block_on(async { tokio::time::timeout(STOP_TIMEOUT, server).await })
                .expect("the server stops once its connections are closed")
                .expect("the server task does not panic");
        }
    }
}

#[test]
fn tokio_server_over_tcp_agrees_with_the_model() {
    machine::run::<Tcp>("tokio server over TCP", "tests/regressions/state_machine_tcp.txt");
}
