//! Starting the implementation under test and killing it again, with
//! everything it started.
//!
//! Each program runs in a process group of its own (`process_group(0)` on
//! Unix), so that killing the group takes its children too: `sh -c` and the
//! `python3` it starts, or a server's worker processes. The group is killed
//! with `kill -9 -- -PGID`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How much of a program's output is kept for an error message.
const TAIL: usize = 16 * 1024;

/// The last bytes a program wrote to a stream.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<Vec<u8>>>);

impl Tail {
    /// Keeps `data`, dropping the oldest bytes beyond the limit.
    pub fn push(&self, data: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        if buf.len() > TAIL {
            let cut = buf.len() - TAIL;
            buf.drain(..cut);
        }
    }

    /// The kept bytes, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The last `n` non-empty lines, for a message.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].iter().map(|l| (*l).to_owned()).collect()
    }
}

/// Copies a stream into a [`Tail`] until it ends.
pub fn drain_into<R: AsyncRead + Unpin + Send + 'static>(mut reader: R, tail: Tail) {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.push(&buf[..n]);
        }
    });
}

/// A running program under test.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pid: Option<u32>,
    exited: Option<ExitStatus>,
}

impl Running {
    /// Starts `command` in a process group of its own.
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        #[cfg(unix)]
        command.process_group(0);
        command.kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child.id();
        Ok(Self { child, pid, exited: None })
    }

    /// The exit status, if the program has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Kills the whole process group and reaps the program.
    pub async fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_group(pid).await;
        }
        let _ = self.child.start_kill();
        if let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await
        {
            self.exited.get_or_insert(status);
        }
    }
}

#[cfg(unix)]
async fn kill_group(pid: u32) {
    // No libc here: the `kill` program does it, `--` so that the negative
    // number is taken as a process group, not an option.
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

#[cfg(not(unix))]
async fn kill_group(_pid: u32) {}

/// Describes how a program ended: `exited with status 1`, `was killed by
/// signal 9`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    "ended".into()
}

/// A port that nothing listens on right now (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether something accepts connections at `addr`.
pub async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Why a spawned server could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// It ended before accepting connections.
    Exited(String),
    /// Nothing accepted connections in time.
    NotListening(Duration),
    /// It could not be started at all.
    Spawn(String),
}

/// Waits until `addr` accepts a connection, the program ends, or the time
/// is up. The probe connection is closed at once.
pub async fn wait_until_listening(
    running: &mut Running,
    addr: SocketAddr,
    limit: Duration,
) -> Result<(), StartError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(250), TcpStream::connect(addr)).await
        {
            drop(stream);
            return Ok(());
        }
        if let Some(status) = running.exited() {
            return Err(StartError::Exited(describe_exit(status)));
        }
        if Instant::now() >= deadline {
            return Err(StartError::NotListening(limit));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (bounded) until nothing accepts connections at `addr` any more:
/// after a kill, so that the next case does not talk to the last one's
/// server.
pub async fn wait_until_closed(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !accepts(addr).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Replaces every `{port}` in `s`.
pub fn with_port(s: &str, port: u16) -> String {
    s.replace("{port}", &port.to_string())
}

/// Quotes one argument for a POSIX shell, only if it needs it.
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,{}".contains(&b));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--case"), "--case");
        assert_eq!(shell_quote("127.0.0.1:{port}"), "127.0.0.1:{port}");
        assert_eq!(shell_quote("python3 s.py"), "'python3 s.py'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(with_port("--port {port} x{port}", 5), "--port 5 x5");
    }

    #[test]
    fn tail_keeps_the_end() {
        let t = Tail::default();
        t.push(b"one\n\ntwo\nthree\n");
        assert_eq!(t.last_lines(2), vec!["two".to_string(), "three".to_string()]);
        t.push(&vec![b'x'; TAIL + 10]);
        assert_eq!(t.text().len(), TAIL);
    }
}
