//! Test support shared by the tests that drive the real `progjar-chat`
//! binary: a server process on an ephemeral port, and the one table of
//! snapshot filters.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// What the server prints first on stdout, followed by the bound address.
const LISTENING: &str = "progjar-chat server listening on ";

/// A `progjar-chat server` process on `127.0.0.1:0`, killed on drop.
///
/// A process rather than an in-process server, so that the tests exercise
/// exactly what a user runs: argument parsing, the stdout banner and all.
pub struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    /// Starts a server with the built-in users and waits until it listens.
    pub fn start() -> Self {
        let child = Command::cargo_bin("progjar-chat")
            .expect("the progjar-chat binary is built")
            .args(["server", "--listen", "127.0.0.1:0"])
            // Only warnings reach the test output; connection logs would
            // drown it.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn progjar-chat server");
        // Owned by the guard before anything can fail, so that a server
        // that started is also killed.
        let mut server = ServerProcess { child, addr: String::new() };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let mut banner = String::new();
        BufReader::new(stdout).read_line(&mut banner).expect("read the server's first line");
        server.addr = banner
            .trim_end()
            .strip_prefix(LISTENING)
            .unwrap_or_else(|| panic!("unexpected first line from the server: {banner:?}"))
            .to_owned();
        server
    }

    /// The address the server listens on, as `HOST:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a session token becomes in a snapshot.
pub const TOKEN: &str = "[TOKEN]";

/// The snapshot filters, applied in this order to every client transcript.
///
/// Session tokens are random UUIDs (`4c908ff6-3c15-4052-a98a-095d2454cf93`),
/// so every snapshot would differ on every run without these.
pub static INSTA_FILTERS: &[(&str, &str)] = &[
    // A whole token, wherever it shows: in the prompt `Command TOKEN:`, in
    // `username … logged in, token TOKEN `, in the echoed `send TOKEN …`
    // line and inside a trace chunk.
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", TOKEN),
    // A token cut in two by the trace's 64-byte chunks, one piece at the end
    // of a `diterima dari server b'…'` line and the rest at the start of the
    // next: `"tokenid": "4c908ff6-…-095d2454cf9'` / `b'3"}\r\n\r\n'` becomes
    // `"tokenid": "[TOKEN…]'` / `b'[…TOKEN]"}\r\n\r\n'`. Tokens only come in
    // the `tokenid` field of an `auth` reply, and a 36-character token can
    // be cut at most once, so the key always ends the first piece's line.
    // The assignment's own first `auth` example shows exactly such a cut.
    (
        r#"(?m)("tokenid": ")[0-9a-f-]{1,35}'\n(diterima dari server b')[0-9a-f-]{1,35}""#,
        "${1}[TOKEN…]'\n${2}[…TOKEN]\"",
    ),
];
