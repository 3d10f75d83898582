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
mod support;

use std::time::Duration;

use machine::{take_replies, Transport, CONNECTIONS, MAX_LINE};
use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use support::{model, Conn, InProcessServer};

/// How long a read may wait for a reply the model says is owed. The server
/// answers a local request in microseconds; a reply that has not come in
/// 2 s is missing (and a failing case is run again at every shrinking step,
/// so a longer wait multiplies: see `machine::config`).
const TIMEOUT: Duration = Duration::from_secs(2);

/// A server of its own per case, and blocking raw clients to it, opened on
/// first use.
struct Tcp {
    server: InProcessServer,
    conns: Vec<Option<Conn>>,
}

impl Transport for Tcp {
    fn start() -> Self {
        let users = UserDirectory::builtin();
        let server =
            InProcessServer::start_with(users, Limits { max_line: MAX_LINE, ..Limits::default() });
        Self { server, conns: (0..=CONNECTIONS).map(|_| None).collect() }
    }

    fn exchange(&mut self, conn: usize, writes: &[Vec<u8>], replies: usize) -> Vec<Vec<u8>> {
        let server = &self.server;
        let conn = self.conns[conn].get_or_insert_with(|| server.connect().with_timeout(TIMEOUT));
        for write in writes {
            conn.send(write);
        }
        // Framed by the model's rule, not the server's code.
        let mut got = take_replies(&mut conn.pending);
        while got.len() < replies && conn.read_more() {
            got.extend(take_replies(&mut conn.pending));
        }
        got
    }

    fn stop(mut self) {
        self.conns.clear();
        self.server.stop_blocking();
    }
}

#[test]
fn tokio_server_over_tcp_agrees_with_the_model() {
    machine::run::<Tcp>("tokio server over TCP", "tests/regressions/state_machine_tcp.txt");
}
