//! Starting the implementation under test and killing it again, with
//! everything it started.
//!
//! Each program runs in a process group of its own (`process_group(0)` on
//! Unix), so that killing the group takes its children too: `sh -c` and the
//! `python3` it starts, or a server's worker processes. The group is killed
//! with `kill -9 -- -PGID`.
//!
//! Every group started is kept in a registry until it is killed, so that
//! nothing is left behind whatever ends the run: a [`Running`] that is
//! dropped kills its group, and [`kill_all_groups`] (on SIGINT or SIGTERM,
//! or from a [`GroupsGuard`] when the runner panics) kills every group
//! still registered.
//!
//! A program's output is recorded line by line as it comes ([`Output`],
//! [`pipe_lines`]): into the case's transcript, and the last lines kept for
//! a diagnosis. On Linux, [`group_listening`] says which TCP ports the
//! processes of a group listen on, to tell a server that listens on
//! another port than the runner's.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::endpoint::Endpoint;
use super::transcript::Transcript;

/// The most lines of a program's output one case's transcript records.
pub(crate) const MAX_OUTPUT_LINES: usize = 500;

/// How many of the last output lines are kept for a diagnosis.
const KEEP_LINES: usize = 40;

/// A partial line (no `\n` yet) is recorded after this long without more.
const PARTIAL_LINE: Duration = Duration::from_millis(200);

/// A program's standard output and standard error, line by line, in the
/// order they came: recorded into a transcript (tagged `stdout`/`stderr`,
/// at most [`MAX_OUTPUT_LINES`]), the last lines kept for a message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Output(Arc<Mutex<OutputLines>>);

#[derive(Debug, Default)]
struct OutputLines {
    last: VecDeque<(&'static str, String)>,
    transcript: Option<Arc<Mutex<Transcript>>>,
    recorded: usize,
}

impl Output {
    /// Output recorded into `transcript` as it comes.
    pub(crate) fn into_transcript(transcript: Arc<Mutex<Transcript>>) -> Self {
        Self(Arc::new(Mutex::new(OutputLines {
            transcript: Some(transcript),
            ..Default::default()
        })))
    }

    /// Records one line of `stream` (`stdout` or `stderr`).
    pub(crate) fn line(&self, stream: &'static str, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.last.push_back((stream, String::from_utf8_lossy(bytes).into_owned()));
        if inner.last.len() > KEEP_LINES {
            inner.last.pop_front();
        }
        inner.recorded += 1;
        let recorded = inner.recorded;
        if let Some(transcript) = &inner.transcript {
            let mut t = transcript.lock().unwrap_or_else(|e| e.into_inner());
            if recorded <= MAX_OUTPUT_LINES {
                t.output(stream, bytes);
            } else if recorded == MAX_OUTPUT_LINES + 1 {
                t.note(format!(
                    "(the program's further output is not recorded: {MAX_OUTPUT_LINES} lines are)"
                ));
            }
        }
    }

    /// The last `n` non-empty lines, with their stream.
    pub(crate) fn last_lines(&self, n: usize) -> Vec<(&'static str, String)> {
        let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&(&'static str, String)> =
            inner.last.iter().filter(|(_, l)| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].iter().map(|(s, l)| (*s, l.clone())).collect()
    }

    /// The last lines as an indented block for a message (`  stderr | …`),
    /// or `(it printed nothing)`.
    pub(crate) fn block(&self, n: usize) -> String {
        let lines = self.last_lines(n);
        if lines.is_empty() {
            return "  (it printed nothing)".into();
        }
        lines
            .iter()
            .map(|(stream, line)| format!("  {stream} | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads a program's stream into `output` line by line until it ends; a
/// last line without `\n` is recorded when nothing follows it for a moment.
pub(crate) fn pipe_lines<R: AsyncRead + Unpin + Send + 'static>(
    mut reader: R,
    stream: &'static str,
    output: Output,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let read = if line.is_empty() {
                reader.read(&mut buf).await
            } else {
                match tokio::time::timeout(PARTIAL_LINE, reader.read(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        output.line(stream, &std::mem::take(&mut line));
                        continue;
                    }
                }
            };
            let n = read.unwrap_or(0);
            if n == 0 {
                if !line.is_empty() {
                    output.line(stream, &line);
                }
                return;
            }
            for &b in &buf[..n] {
                if b == b'\n' {
                    output.line(stream, &std::mem::take(&mut line));
                } else if line.len() < 64 * 1024 {
                    line.push(b);
                }
            }
        }
    })
}

/// Waits (bounded) for readers started by [`pipe_lines`] to record the
/// last of a program's output, after it was killed.
pub(crate) async fn settle_readers(readers: Vec<JoinHandle<()>>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    for mut reader in readers {
        if tokio::time::timeout_at(deadline, &mut reader).await.is_err() {
            reader.abort();
        }
    }
}

/// The process groups started and not yet killed.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn groups() -> std::sync::MutexGuard<'static, Vec<u32>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process group started and not yet killed, at once, without
/// waiting for anything: for the end of an interrupted or failed run.
/// Returns how many groups there were.
pub(crate) fn kill_all_groups() -> usize {
    let pgids: Vec<u32> = std::mem::take(&mut *groups());
    kill_groups_now(&pgids);
    pgids.len()
}

/// Kills every registered process group when dropped: keep one alive for
/// as long as the run, so that a panic unwinding through it, or an early
/// return, leaves nothing behind.
#[derive(Debug, Default)]
#[must_use = "the groups are killed when the guard is dropped"]
pub(crate) struct GroupsGuard;

impl Drop for GroupsGuard {
    fn drop(&mut self) {
        kill_all_groups();
    }
}

#[cfg(unix)]
fn kill_groups_now(pgids: &[u32]) {
    if pgids.is_empty() {
        return;
    }
    let mut args = vec!["-9".to_owned(), "--".to_owned()];
    args.extend(pgids.iter().map(|p| format!("-{p}")));
    let _ = std::process::Command::new("kill")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(not(unix))]
fn kill_groups_now(_pgids: &[u32]) {}

/// A running program under test.
#[derive(Debug)]
pub(crate) struct Running {
    pub child: Child,
    pid: Option<u32>,
    exited: Option<ExitStatus>,
}

impl Running {
    /// Starts `command` in a process group of its own.
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<Self> {
        #[cfg(unix)]
        command.process_group(0);
        command.kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child.id();
        if let Some(pid) = pid {
            groups().push(pid);
        }
        Ok(Self { child, pid, exited: None })
    }

    /// The process group (the program's process ID), while it is not
    /// killed.
    pub(crate) fn pgid(&self) -> Option<u32> {
        self.pid
    }

    /// The exit status, if the program has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Kills the whole process group and reaps the program.
    pub(crate) async fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_group(pid).await;
            groups().retain(|p| *p != pid);
        }
        let _ = self.child.start_kill();
        if let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await
        {
            self.exited.get_or_insert(status);
        }
    }
}

impl Drop for Running {
    /// A program nobody killed (its case was abandoned: an interrupt, a
    /// panic) is killed with its group here.
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_groups_now(&[pid]);
            groups().retain(|p| *p != pid);
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
pub(crate) fn describe_exit(status: ExitStatus) -> String {
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

/// What an exit status usually means, when it means something in
/// particular: 127 and 126 come from the shell.
pub(crate) fn exit_hint(status: ExitStatus) -> Option<&'static str> {
    match status.code() {
        Some(127) => {
            Some("status 127: the shell did not find the program; is there a typo in the command?")
        }
        Some(126) => {
            Some("status 126: the shell found the program but cannot run it; is it executable?")
        }
        _ => None,
    }
}

/// Whether something accepts connections at `addr`.
pub(crate) async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Why a spawned server could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartError {
    /// It ended before accepting connections.
    Exited(String),
    /// Nothing accepted connections in time.
    NotListening(Duration),
    /// Its process group listens, but not where the runner connects: the
    /// addresses it listens on (found on Linux only).
    Elsewhere(Vec<SocketAddr>),
}

/// How long a program may listen elsewhere, and not at the runner's
/// address, before the runner takes that as its answer.
const ELSEWHERE: Duration = Duration::from_secs(2);

/// How often the runner looks where a program that does not accept
/// connections yet listens.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Waits until `addr` accepts a connection, the program ends, or the time
/// is up. The probe connection is closed at once. A program whose group
/// listens on other addresses only, for [`ELSEWHERE`], is not waited for
/// longer (Linux only).
pub(crate) async fn wait_until_listening(
    running: &mut Running,
    addr: &Endpoint,
    limit: Duration,
) -> Result<(), StartError> {
    let started = Instant::now();
    let deadline = started + limit;
    let mut elsewhere_since: Option<Instant> = None;
    let mut last_look = started;
    loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(250), addr.connect()).await
        {
            drop(stream);
            return Ok(());
        }
        if let Some(status) = running.exited() {
            return Err(StartError::Exited(describe_exit(status)));
        }
        let now = Instant::now();
        // Most servers listen well within a second: only then is it worth
        // reading /proc, four times a second.
        let looking = now.duration_since(started) >= Duration::from_secs(1);
        if now >= deadline || (looking && now.duration_since(last_look) >= LOOK_EVERY) {
            last_look = now;
            let others = running.pgid().map(group_listening).unwrap_or_default();
            if others.is_empty() {
                elsewhere_since = None;
            } else {
                let since = *elsewhere_since.get_or_insert(now);
                if now >= deadline || now.duration_since(since) >= ELSEWHERE {
                    return Err(StartError::Elsewhere(others));
                }
            }
        }
        if now >= deadline {
            return Err(StartError::NotListening(limit));
        }
        // A refused connect costs microseconds: look often, so that a case
        // starts as soon as its server listens.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The TCP addresses the processes of group `pgid` listen on (Linux: from
/// `/proc`; elsewhere none). Best effort: what cannot be read is skipped.
#[cfg(target_os = "linux")]
pub(crate) fn group_listening(pgid: u32) -> Vec<SocketAddr> {
    use std::collections::HashSet;
    let mut inodes: HashSet<u64> = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `PID (COMM) STATE PPID PGRP …`; COMM may hold spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if rest.split_whitespace().nth(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) =
                    target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']'))
                {
                    if let Ok(inode) = inode.parse() {
                        inodes.insert(inode);
                    }
                }
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    // The tables of the group leader's network: its own when it runs in a
    // sandbox.
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pgid}/net/{table}")) {
            found.extend(listening_in(&text, &inodes));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Elsewhere than Linux: nothing is known.
#[cfg(not(target_os = "linux"))]
pub(crate) fn group_listening(_pgid: u32) -> Vec<SocketAddr> {
    Vec::new()
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table whose inode
/// is among `inodes`.
#[cfg(any(target_os = "linux", test))]
fn listening_in(table: &str, inodes: &std::collections::HashSet<u64>) -> Vec<SocketAddr> {
    let mut found = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        if fields.len() < 10 || fields[3] != "0A" {
            continue;
        }
        let Ok(inode) = fields[9].parse::<u64>() else { continue };
        if !inodes.contains(&inode) {
            continue;
        }
        if let Some(addr) = proc_addr(fields[1]) {
            found.push(addr);
        }
    }
    found
}

/// `0100007F:22B9` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit
/// word is printed in the host's byte order.
#[cfg(any(target_os = "linux", test))]
fn proc_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    match ip.len() {
        8 => Some(SocketAddr::from((Ipv4Addr::from(word(ip)?), port))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(&ip[i * 8..i * 8 + 8])?);
            }
            Some(SocketAddr::from((std::net::Ipv6Addr::from(bytes), port)))
        }
        _ => None,
    }
}

/// Waits (bounded) until nothing accepts connections at `addr` any more:
/// after a kill, so that the next case does not talk to the last one's
/// server.
pub(crate) async fn wait_until_closed(addr: SocketAddr, limit: Duration) -> bool {
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
pub(crate) fn with_port(s: &str, port: u16) -> String {
    s.replace("{port}", &port.to_string())
}

/// Quotes one argument for a POSIX shell, only if it needs it.
pub(crate) fn shell_quote(arg: &str) -> String {
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
    fn proc_net_tcp_tables_are_read() {
        let word = |b: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(b));
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {}:22B9 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0\n\
             1: {}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 99 1 0\n\
             2: {}:22B8 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0\n",
            word([127, 0, 0, 1]),
            word([0, 0, 0, 0]),
            word([127, 0, 0, 1]),
        );
        let inodes = [4242u64].into_iter().collect();
        assert_eq!(listening_in(&table, &inodes), ["127.0.0.1:8889".parse().unwrap()]);
        let v6 =
            format!("{}{}{}{}:22B9", word([0; 4]), word([0; 4]), word([0; 4]), word([0, 0, 0, 1]));
        assert_eq!(proc_addr(&v6), Some("[::1]:8889".parse().unwrap()));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_group_is_seen_listening_where_it_listens() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        // This test process is in its own group only by chance; a child in a
        // group of its own holding a listening socket is what the runner sees.
        let mut cmd = Command::new("python3");
        cmd.args([
            "-c",
            "import socket,time,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)",
        ])
        .stdout(Stdio::piped());
        let Ok(mut running) = Running::spawn(cmd) else { return };
        let mut out = running.child.stdout.take().unwrap();
        let mut text = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).await.unwrap_or(0) == 1 && byte[0] != b'\n' {
            text.push(byte[0]);
        }
        let Ok(port) = String::from_utf8_lossy(&text).trim().parse::<u16>() else {
            running.kill().await;
            return;
        };
        let pgid = running.pgid().unwrap();
        let seen = group_listening(pgid);
        assert_eq!(seen, [SocketAddr::from((Ipv4Addr::LOCALHOST, port))]);
        assert!(!seen.contains(&addr));
        assert!(groups().contains(&pgid));
        running.kill().await;
        assert!(!groups().contains(&pgid));
    }

    #[test]
    fn output_keeps_the_last_lines_and_caps_the_transcript() {
        let transcript = Arc::new(Mutex::new(Transcript::new(Instant::now())));
        let output = Output::into_transcript(Arc::clone(&transcript));
        for i in 0..MAX_OUTPUT_LINES + 5 {
            output.line(
                if i % 2 == 0 { "stdout" } else { "stderr" },
                format!("line {i}\r").as_bytes(),
            );
        }
        let t = transcript.lock().unwrap();
        assert_eq!(t.entries.len(), MAX_OUTPUT_LINES + 1);
        assert_eq!(t.entries[0].tag, "stdout");
        assert_eq!(t.entries[1].text, "line 1");
        assert!(t.entries[MAX_OUTPUT_LINES].text.contains("not recorded"));
        let last = output.last_lines(2);
        assert_eq!(last[1], ("stdout", format!("line {}", MAX_OUTPUT_LINES + 4)));
        assert!(output.block(1).starts_with("  stdout | line"));
    }
}
