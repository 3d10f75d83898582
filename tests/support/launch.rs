//! The one launcher of the real `progjar-chat server` binary: a process on
//! `127.0.0.1:0` (or another address), its stdout and stderr captured,
//! killed on drop. A process rather than an in-process server where the
//! tests must exercise exactly what a user runs: argument parsing, the
//! stdout banner, signals and all.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{drain, Conn};

/// What the server prints first on stdout, followed by the bound address.
pub const LISTENING: &str = "progjar-chat server listening on ";

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `progjar-chat` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_progjar-chat"))
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
    /// Where to connect: the bound address, loopback if it bound to every
    /// interface.
    pub addr: SocketAddr,
    /// The listening line, `\n` included.
    pub first_line: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts the server on `127.0.0.1:0` with extra arguments and
    /// environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_listening("127.0.0.1:0", args, env)
    }

    /// Starts the server with the built-in users and default limits.
    pub fn builtin() -> Self {
        Self::start(&[], &[])
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
        let mut child = command.spawn().expect("spawn progjar-chat server");
        let (line_tx, line_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = line_tx.send(first);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            String::from_utf8_lossy(&rest).into_owned()
        });
        let stderr = drain(child.stderr.take().unwrap());
        // Owned by the guard before anything can fail, so that a server
        // that started is also killed.
        let mut server = Self {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            first_line: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let first_line =
            line_rx.recv_timeout(START_TIMEOUT).expect("the server prints its listening line");
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

    /// A blocking raw client connected to the server.
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
        (stdout, stderr)
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
