//! Helpers for the tests that run the real `progjar-chat server` binary
//! (`server_behaviour`, `faults`, `limits`, `secrets`): a server process on `127.0.0.1:0` whose
//! stdout and stderr are captured, and a blocking raw-socket client with
//! timeouts, so that a hung server fails a test instead of hanging it.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use progjar_chat::protocol::frame::find_reply_end;

/// What the server prints first on stdout, followed by the bound address.
pub const LISTENING: &str = "progjar-chat server listening on ";

/// How long any one reply may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub const MESSAGE_SENT: &str = "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n";
pub const EMPTY_INBOX: &str = "{\"status\": \"OK\", \"messages\": {}}\r\n\r\n";
pub const LOGGED_OUT: &str =
    "{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}\r\n\r\n";

/// The exact error reply carrying `message`.
pub fn error_reply(message: &str) -> String {
    format!("{{\"status\": \"ERROR\", \"message\": \"{message}\"}}\r\n\r\n")
}

pub fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("progjar-chat")
}

/// A file under cargo's per-test-target scratch directory, unique to this
/// process.
pub fn scratch_file(test: &str, name: &str, contents: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

/// A running `progjar-chat server` child, killed on drop.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub first_line: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl ServerProcess {
    /// Starts the server on `127.0.0.1:0` with extra arguments.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_listening("127.0.0.1:0", args, env)
    }

    /// Starts the server on `listen` with extra arguments and environment
    /// (RUST_LOG is cleared unless given), and waits for its listening line.
    pub fn start_listening(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command
            .args(["server", "--listen", listen])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn progjar-chat");
        let (line_tx, line_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = line_tx.send(first);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            rest
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut all);
            all
        });
        let mut server = Self {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            first_line: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let first_line = line_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server prints its listening line");
        let addr = first_line
            .strip_prefix(LISTENING)
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("unexpected first stdout line {first_line:?}"));
        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("not an address: {addr:?}"));
        // A server bound to every interface is reached over loopback.
        server.addr = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        server.first_line = first_line;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// The server's resident memory in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .map(|v| v.trim().parse().expect("a number of kB"))
            .expect("a VmRSS line")
    }

    /// Sends SIGTERM with the system's `kill`.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends a signal (`TERM`, `INT`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits at most `limit` for the process to exit.
    pub fn wait_at_most(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, wait (10 s at most) for exit, return (status, stdout after
    /// the first line, stderr).
    pub fn terminate(mut self) -> (ExitStatus, String, String) {
        self.sigterm();
        let status = self.wait_at_most(Duration::from_secs(10)).expect("exit within 10 s");
        let (stdout, stderr) = self.outputs();
        (status, stdout, stderr)
    }

    /// The rest of stdout and all of stderr; call only once exited.
    pub fn outputs(&mut self) -> (String, String) {
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A blocking raw-socket client with a read timeout.
pub struct Conn {
    pub stream: TcpStream,
    pub pending: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream, pending: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Exactly one reply, terminator included, or `None` if the connection
    /// ends (closed or reset) first; later bytes are kept.
    pub fn try_reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = find_reply_end(&self.pending, 0, 0) {
                let rest = self.pending.split_off(end);
                let reply = std::mem::replace(&mut self.pending, rest);
                return Some(String::from_utf8(reply).expect("replies are ASCII"));
            }
            let mut chunk = [0u8; 16 * 1024];
            match read_some(&mut self.stream, &mut chunk, &self.pending) {
                0 => return None,
                n => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Exactly one reply; the connection must not end first.
    pub fn reply(&mut self) -> String {
        self.try_reply().unwrap_or_else(|| {
            panic!(
                "connection ended before a whole reply: {:?}",
                String::from_utf8_lossy(&self.pending)
            )
        })
    }

    /// One request, one reply, and nothing more.
    pub fn ask(&mut self, request: &[u8]) -> String {
        assert!(self.pending.is_empty(), "unread bytes before a request");
        self.send(request);
        let reply = self.reply();
        assert!(
            self.pending.is_empty(),
            "more than one reply to {:?}",
            String::from_utf8_lossy(request)
        );
        reply
    }

    pub fn login(&mut self, user: &str, password: &str) -> String {
        token_from_auth_reply(&self.ask(format!("auth {user} {password}\r\n").as_bytes()))
    }

    /// Reads until the server ends the connection (bounded by the read
    /// timeout); returns what came before the end.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.pending);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match read_some(&mut self.stream, &mut chunk, &rest) {
                0 => return rest,
                n => rest.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The index of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks that `reply` is exactly `{"status": "OK", "tokenid": "<uuid>"}`
/// plus terminator, and returns the token.
pub fn token_from_auth_reply(reply: &str) -> String {
    const HEAD: &str = "{\"status\": \"OK\", \"tokenid\": \"";
    const TAIL: &str = "\"}\r\n\r\n";
    let token = reply
        .strip_prefix(HEAD)
        .and_then(|rest| rest.strip_suffix(TAIL))
        .unwrap_or_else(|| panic!("not a successful auth reply: {reply:?}"));
    assert_eq!(token.len(), 36, "{token:?}");
    token.to_string()
}

/// A `list` reply with these entries.
pub fn list_reply(entries: &[&str]) -> String {
    let quoted: Vec<String> = entries.iter().map(|e| format!("\"{e}\"")).collect();
    format!("{{\"status\": \"OK\", \"messages\": [{}]}}\r\n\r\n", quoted.join(", "))
}

/// One read: how many bytes came, 0 when the connection ended or failed.
/// Panics when nothing came within the read timeout ([`TIMEOUT`]), which
/// in these tests means a server that neither answers nor closes; `got` is
/// what came before, for the message.
fn read_some(stream: &mut std::net::TcpStream, chunk: &mut [u8], got: &[u8]) -> usize {
    loop {
        match stream.read(chunk) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "nothing more from the server within {TIMEOUT:?}; got {:?}",
                    String::from_utf8_lossy(got)
                )
            }
            Err(_) => return 0,
        }
    }
}
