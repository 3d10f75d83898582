//! Running cases: the I/O half of the runner.
//!
//! A server case opens connections `C1`, `C2`, … to the server under test,
//! writes each `C1>` line, reads one reply per `C1<` line and hands it to
//! the [`matcher`](super::matcher). A client case starts the client under
//! test with piped standard input and output against a reference server
//! run in this process (behind a recording proxy, so the client's own wire
//! traffic is in the transcript), types each `U>` line and checks what it
//! prints.
//!
//! Every read and write has a timeout, and every way an implementation can
//! misbehave (refuse, close, stay silent, send garbage, die) ends in a
//! verdict for the case, never in a hang or a panic of the runner.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use super::framing::{scan_reply, OutEvent, OutKind, OutputParser, Scan};
use super::matcher::{
    check_line, check_prompt, check_reply, Check, Context, Finding, ReplyBytes, Verdict,
};
use super::process::{
    describe_exit, drain_into, wait_until_closed, wait_until_listening, with_port, Running,
    StartError, Tail,
};
use super::transcript::{escape_for_transcript, Entry, Transcript};
use crate::protocol::users::UserDirectory;
use crate::shared::SharedChat;
use crate::spec::pattern::{Bindings, Text};
use crate::spec::{Action, Example, Expect, Kind, Level};

/// How long the runner waits for the rest of a `\r\n\r\n` after a whole
/// JSON object before taking the object as an unterminated reply.
const GRACE: Duration = Duration::from_millis(250);

/// The longest reply the runner waits for the end of.
const MAX_REPLY: usize = 1024 * 1024;

/// The pause between two writes on one connection with no read between
/// them, so that they reach the server as separate reads (TRANS-4).
const WRITE_GAP: Duration = Duration::from_millis(30);

/// The users the setup logs in and out before each case in `--connect`
/// mode, with their password: the spec's built-in users.
pub const BUILTIN_USERS: [&str; 3] = ["messi", "henderson", "lineker"];
const BUILTIN_PASSWORD: &str = "surabaya";

/// Knobs that apply to every case.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest wait for any one read.
    pub timeout: Duration,
    /// The longest wait for a spawned server to accept connections.
    pub startup: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(2), startup: Duration::from_secs(10) }
    }
}

/// The server under test.
#[derive(Debug, Clone)]
pub enum ServerTarget {
    /// A server that is already running. Before each case the built-in
    /// users are logged in, their inboxes drained and logged out again.
    Connect(SocketAddr),
    /// A shell command started afresh for every case, in its own process
    /// group, killed after it. `{port}` in the command is replaced by a
    /// free port; without it the server is expected on `port`.
    Spawn { command: String, port: u16 },
    /// The reference server, started in this process for every case.
    Reference,
}

/// The client under test: a program and its arguments, `{port}` replaced
/// by a free port; without it the reference server listens on `port`.
#[derive(Debug, Clone)]
pub struct ClientTarget {
    pub argv: Vec<String>,
    pub port: u16,
}

impl ClientTarget {
    fn uses_port_placeholder(&self) -> bool {
        self.argv.iter().any(|a| a.contains("{port}"))
    }
}

/// One step that did not simply pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// 1-based line of the step in the spec.
    pub line: usize,
    /// The step as the spec writes it.
    pub source: String,
    pub verdict: Verdict,
    pub check: Check,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub id: String,
    pub rule: String,
    pub level: Level,
    pub kind: Kind,
    /// Line of the example in the spec.
    pub spec_line: usize,
    pub verdict: Verdict,
    /// The steps that were not OK, in order; the last one stopped the case
    /// if it was FAILED or ERROR.
    pub steps: Vec<StepReport>,
    pub transcript: Vec<Entry>,
    pub duration: Duration,
}

impl CaseResult {
    /// The step that decided the verdict.
    pub fn decisive(&self) -> Option<&StepReport> {
        self.steps.iter().rev().find(|s| s.verdict == self.verdict)
    }

    /// One line saying why, for the progress list.
    pub fn headline(&self) -> String {
        match self.decisive() {
            Some(step) => step.check.headline().unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// Progress, for live output.
pub enum Progress<'a> {
    Start { example: &'a Example, index: usize, total: usize },
    Done { result: &'a CaseResult, index: usize, total: usize },
}

/// Runs server cases one after the other.
pub async fn run_server_cases(
    examples: &[&Example],
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    let mut results = Vec::with_capacity(examples.len());
    for (index, example) in examples.iter().enumerate() {
        progress(Progress::Start { example, index, total: examples.len() });
        let result = run_server_case(example, target, options, ctx).await;
        progress(Progress::Done { result: &result, index, total: examples.len() });
        results.push(result);
    }
    results
}

/// Runs client cases one after the other.
pub async fn run_client_cases(
    examples: &[&Example],
    target: &ClientTarget,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    let mut results = Vec::with_capacity(examples.len());
    for (index, example) in examples.iter().enumerate() {
        progress(Progress::Start { example, index, total: examples.len() });
        let result = run_client_case(example, target, options, ctx).await;
        progress(Progress::Done { result: &result, index, total: examples.len() });
        results.push(result);
    }
    results
}

/// A transcript several tasks write to.
type SharedTranscript = Arc<Mutex<Transcript>>;

fn lock(t: &SharedTranscript) -> std::sync::MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a step found, before it becomes a [`StepReport`].
fn finding_check(severity: Verdict, message: String, expected: String, actual: String) -> Check {
    Check {
        findings: vec![Finding::new(severity, "", message)],
        expected,
        actual,
        ..Check::default()
    }
}

/// The state of one running case.
struct CaseRun<'a> {
    example: &'a Example,
    options: &'a Options,
    ctx: &'a Context,
    transcript: SharedTranscript,
    vars: Bindings,
    steps: Vec<StepReport>,
    verdict: Verdict,
    conns: BTreeMap<u32, Conn>,
    /// Where `C1`, `C2`, … connect.
    addr: SocketAddr,
    /// The implementation's process, when the runner started it.
    process: Option<Running>,
    /// The process's standard error, for messages.
    stderr: Tail,
    /// What the implementation is called in messages.
    who: &'static str,
}

impl<'a> CaseRun<'a> {
    fn new(
        example: &'a Example,
        options: &'a Options,
        ctx: &'a Context,
        who: &'static str,
    ) -> Self {
        Self {
            example,
            options,
            ctx,
            transcript: Arc::new(Mutex::new(Transcript::new(Instant::now()))),
            vars: Bindings::new(),
            steps: Vec::new(),
            verdict: Verdict::Ok,
            conns: BTreeMap::new(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            process: None,
            stderr: Tail::default(),
            who,
        }
    }

    fn note(&self, text: impl Into<String>) {
        lock(&self.transcript).note(text);
    }

    /// Records a step's check; whether the case goes on.
    fn record(&mut self, line: usize, source: &str, check: Check) -> bool {
        let verdict = check.verdict();
        for (name, value) in &check.bindings {
            self.vars.insert(name.clone(), value.clone());
        }
        if verdict != Verdict::Ok {
            self.steps.push(StepReport { line, source: source.to_owned(), verdict, check });
            self.verdict = self.verdict.max(verdict);
        }
        verdict < Verdict::Failed
    }

    /// A harness problem before any step could run.
    fn setup_error(&mut self, message: String) {
        let line = self.example.line;
        let check = finding_check(Verdict::Error, message, String::new(), String::new());
        self.record(line, "(setup)", check);
    }

    /// How the process ended, if it has, after giving it a moment to end:
    /// a closed connection is often the first sign of a dying process.
    async fn exit_note_settled(&mut self) -> Option<String> {
        for _ in 0..20 {
            match self.process.as_mut().map(|p| p.exited().is_some()) {
                None => return None,
                Some(true) => break,
                Some(false) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        self.exit_note()
    }

    /// How the process ended, if it has: `the server process exited
    /// with status 1`.
    fn exit_note(&mut self) -> Option<String> {
        let status = self.process.as_mut()?.exited()?;
        Some(format!("the {} process {}", self.who, describe_exit(status)))
    }

    async fn conn(&mut self, n: u32) -> Result<&mut Conn, String> {
        if !self.conns.contains_key(&n) {
            let connect =
                tokio::time::timeout(self.options.timeout, TcpStream::connect(self.addr)).await;
            let stream = match connect {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    return Err(format!("cannot connect C{n} to {}: {error}", self.addr))
                }
                Err(_) => {
                    return Err(format!(
                        "cannot connect C{n} to {}: no answer within {:?}",
                        self.addr, self.options.timeout
                    ))
                }
            };
            let _ = stream.set_nodelay(true);
            self.conns.insert(n, Conn::new(format!("C{n}"), stream, Arc::clone(&self.transcript)));
        }
        Ok(self.conns.get_mut(&n).expect("just inserted"))
    }

    /// `C1> …`.
    async fn send(&mut self, line: usize, source: &str, conn: u32, text: &Text) -> bool {
        let bytes = match text.render(&self.vars) {
            Ok(bytes) => bytes,
            Err(name) => {
                let check = finding_check(
                    Verdict::Error,
                    format!("${{{name}}} was never bound"),
                    String::new(),
                    String::new(),
                );
                return self.record(line, source, check);
            }
        };
        let timeout = self.options.timeout;
        let written = match self.conn(conn).await {
            Ok(c) => c.write(&bytes, timeout).await,
            Err(message) => {
                let message = self.exit_note_settled().await.unwrap_or(message);
                let check = finding_check(
                    Verdict::Error,
                    message,
                    escape_for_transcript(&bytes),
                    String::new(),
                );
                return self.record(line, source, check);
            }
        };
        if let Err(error) = written {
            // The read that follows reports it; note it here.
            self.note(format!("C{conn}: the write failed: {error}"));
        }
        true
    }

    /// `C1< …`.
    async fn expect(&mut self, line: usize, source: &str, conn: u32, expect: &Expect) -> bool {
        let timeout = self.options.timeout;
        let expected = match expect {
            Expect::Json { pattern, .. } => {
                super::matcher::python_json(&pattern.to_display_value(&self.vars))
            }
            Expect::Exact { text, .. } => text.display(&self.vars),
            Expect::AnyError => "any {\"status\": \"ERROR\", …} reply".into(),
            Expect::AnyReply => "any reply".into(),
        };
        let outcome = match self.conn(conn).await {
            Ok(c) => c.read_reply(timeout).await,
            Err(message) => {
                let message = self.exit_note_settled().await.unwrap_or(message);
                return self.record(
                    line,
                    source,
                    finding_check(Verdict::Error, message, expected, String::new()),
                );
            }
        };
        let c = &self.conns[&conn];
        let (requests, replies, last_write, eof) =
            (c.requests, c.replies, c.last_write_requests, c.eof);
        let (after_error, why) = if c.last_reply_error {
            (", right after an error reply", "an error reply never closes the connection")
        } else {
            ("", "a server closes a connection only when the client does")
        };
        let check = match outcome {
            ReadOutcome::Reply(reply) => {
                let mut check = check_reply(expect, &reply, &self.vars, self.ctx);
                let command = self.conns[&conn].commands.get(replies.saturating_sub(1)).cloned();
                unknown_command_hint(&mut check, &reply, command.as_deref());
                check
            }
            ReadOutcome::Closed { partial } => {
                if let Some(exit) = self.exit_note_settled().await {
                    finding_check(Verdict::Error, exit, expected, escape_for_transcript(&partial))
                } else {
                    let message = if partial.is_empty() {
                        format!(
                            "the {} closed the connection C{conn} instead of replying{after_error} ({replies} of {requests} requests on it answered; {why}, TRANS-5)",
                            self.who
                        )
                    } else {
                        format!(
                            "the {} closed the connection C{conn} in the middle of a reply",
                            self.who
                        )
                    };
                    finding_check(
                        Verdict::Failed,
                        message,
                        expected,
                        escape_for_transcript(&partial),
                    )
                }
            }
            ReadOutcome::TimedOut { partial } => {
                let secs = timeout.as_secs_f64();
                if let Some(exit) = self.exit_note() {
                    finding_check(Verdict::Error, exit, expected, escape_for_transcript(&partial))
                } else if !partial.is_empty() {
                    finding_check(
                        Verdict::Failed,
                        format!("an incomplete reply: these bytes and then nothing for {secs} s (a reply ends with \\r\\n\\r\\n, TRANS-2)"),
                        expected,
                        escape_for_transcript(&partial),
                    )
                } else if replies > 0 {
                    let mut message = format!(
                        "no reply within {secs} s: the {} answered {replies} of the {requests} requests sent on C{conn}",
                        self.who
                    );
                    if last_write > 1 {
                        message.push_str(&format!(
                            "; the last write held {last_write} requests, and each \\r\\n ends one request (TRANS-3): a server that takes whatever one read returns as one request answers them as one"
                        ));
                    }
                    finding_check(Verdict::Failed, message, expected, String::new())
                } else if let Some(other) =
                    self.conns.iter().find(|(n, c)| **n != conn && c.replies > 0).map(|(n, _)| *n)
                {
                    finding_check(
                        Verdict::Failed,
                        format!(
                            "no reply within {secs} s on C{conn}, while C{other} is open and was answered: does the {} serve only one connection at a time?",
                            self.who
                        ),
                        expected,
                        String::new(),
                    )
                } else {
                    finding_check(
                        Verdict::Error,
                        format!("timeout: no reply within {secs} s"),
                        expected,
                        String::new(),
                    )
                }
            }
            ReadOutcome::TooLong { partial } => finding_check(
                Verdict::Failed,
                format!("more than {} bytes without the end of a reply (\\r\\n\\r\\n)", MAX_REPLY),
                expected,
                escape_for_transcript(&partial[..partial.len().min(200)]),
            ),
            ReadOutcome::Failed(error) => {
                let message = self
                    .exit_note_settled()
                    .await
                    .unwrap_or_else(|| format!("reading C{conn} failed: {error}"));
                finding_check(Verdict::Error, message, expected, String::new())
            }
        };
        if check.verdict() >= Verdict::Failed && check.actual.is_empty() && !eof {
            self.note(format!("C{conn}: nothing came within {} s", timeout.as_secs_f64()));
        }
        self.record(line, source, check)
    }

    /// Closes the connections, recording bytes nobody read.
    fn close_conns(&mut self) {
        for (n, conn) in std::mem::take(&mut self.conns) {
            if !conn.buf.is_empty() {
                lock(&self.transcript).bytes(format!("C{n} <"), &conn.buf);
                self.note(format!("C{n}: the bytes above arrived but no step read them"));
            }
        }
    }

    /// The server's or client's last standard error lines, into the
    /// transcript (when the case did not pass).
    fn attach_stderr(&mut self) {
        if self.verdict < Verdict::Failed {
            return;
        }
        let lines = self.stderr.last_lines(20);
        if !lines.is_empty() {
            let mut t = lock(&self.transcript);
            t.note(format!("the last lines the {} wrote to standard error:", self.who));
            for line in lines {
                t.bytes("stderr", line.as_bytes());
            }
        }
    }

    fn finish(self) -> CaseResult {
        let transcript = lock(&self.transcript);
        CaseResult {
            id: self.example.id.clone(),
            rule: self.example.rule.clone(),
            level: self.example.level,
            kind: self.example.kind,
            spec_line: self.example.line,
            verdict: self.verdict,
            steps: self.steps.clone(),
            transcript: transcript.entries.clone(),
            duration: transcript.elapsed(),
        }
    }
}

/// One connection of the runner to a server.
struct Conn {
    name: String,
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
    /// Requests written (each `\r\n` ends one).
    requests: usize,
    replies: usize,
    /// The first word of each request written, in order.
    commands: Vec<String>,
    /// Requests in the last write.
    last_write_requests: usize,
    /// The last thing done on this connection was a write.
    last_was_write: bool,
    /// The last reply read was an error reply.
    last_reply_error: bool,
    transcript: SharedTranscript,
}

enum ReadOutcome {
    Reply(ReplyBytes),
    /// The server closed the connection; `partial` is what came before.
    Closed {
        partial: Vec<u8>,
    },
    TimedOut {
        partial: Vec<u8>,
    },
    /// More than [`MAX_REPLY`] bytes without the end of a reply.
    TooLong {
        partial: Vec<u8>,
    },
    Failed(String),
}

enum Fill {
    Data,
    Eof,
    Timeout,
    Error(String),
}

impl Conn {
    fn new(name: String, stream: TcpStream, transcript: SharedTranscript) -> Self {
        Self {
            name,
            stream,
            buf: Vec::new(),
            eof: false,
            requests: 0,
            replies: 0,
            commands: Vec::new(),
            last_write_requests: 0,
            last_was_write: false,
            last_reply_error: false,
            transcript,
        }
    }

    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), String> {
        if self.last_was_write {
            tokio::time::sleep(WRITE_GAP).await;
        }
        lock(&self.transcript).bytes(format!("{} >", self.name), bytes);
        let count = bytes.windows(2).filter(|w| *w == b"\r\n").count();
        self.requests += count;
        let mut text = bytes;
        while let Some(end) = text.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&text[..end]);
            self.commands.push(line.split(' ').next().unwrap_or("").to_owned());
            text = &text[end + 2..];
        }
        self.last_write_requests = count;
        self.last_was_write = true;
        match tokio::time::timeout(timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("the server did not take the bytes within {timeout:?}")),
        }
    }

    async fn fill(&mut self, until: Instant) -> Fill {
        let mut chunk = [0u8; 8192];
        let wait = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                self.eof = true;
                Fill::Eof
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Ok(Err(error)) => {
                // A reset after the server closed is a close.
                self.eof = true;
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) {
                    Fill::Eof
                } else {
                    Fill::Error(error.to_string())
                }
            }
            Err(_) => Fill::Timeout,
        }
    }

    fn take(&mut self, n: usize, terminated: bool) -> ReadOutcome {
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        lock(&self.transcript).bytes(format!("{} <", self.name), &bytes);
        self.replies += 1;
        self.last_reply_error = bytes.windows(7).any(|w| w == b"\"ERROR\"");
        ReadOutcome::Reply(ReplyBytes { bytes, terminated })
    }

    fn take_partial(&mut self) -> Vec<u8> {
        let partial = std::mem::take(&mut self.buf);
        if !partial.is_empty() {
            lock(&self.transcript).bytes(format!("{} <", self.name), &partial);
        }
        partial
    }

    async fn read_reply(&mut self, timeout: Duration) -> ReadOutcome {
        self.last_was_write = false;
        let deadline = Instant::now() + timeout;
        loop {
            match scan_reply(&self.buf) {
                Scan::Reply(n) => return self.take(n, true),
                Scan::Unterminated { len, more_follows } => {
                    if !more_follows && !self.eof {
                        let grace = deadline.min(Instant::now() + GRACE);
                        if let Fill::Data = self.fill(grace).await {
                            continue;
                        }
                    }
                    return self.take(len, false);
                }
                Scan::Incomplete => {
                    if self.buf.len() > MAX_REPLY {
                        let partial = self.take_partial();
                        return ReadOutcome::TooLong { partial };
                    }
                    if self.eof {
                        let partial = self.take_partial();
                        lock(&self.transcript).note(format!("{}: closed by the server", self.name));
                        return ReadOutcome::Closed { partial };
                    }
                    match self.fill(deadline).await {
                        Fill::Data | Fill::Eof => {}
                        Fill::Timeout => {
                            let partial = self.take_partial();
                            return ReadOutcome::TimedOut { partial };
                        }
                        Fill::Error(error) => return ReadOutcome::Failed(error),
                    }
                }
            }
        }
    }

    /// Sends a request and reads its reply, for setup; `None` on any
    /// trouble.
    async fn ask(&mut self, request: &[u8], timeout: Duration) -> Result<ReplyBytes, String> {
        self.write(request, timeout).await?;
        match self.read_reply(timeout).await {
            ReadOutcome::Reply(reply) => Ok(reply),
            ReadOutcome::Closed { .. } => Err("the server closed the connection".into()),
            ReadOutcome::TimedOut { .. } => {
                Err(format!("no reply within {} s", timeout.as_secs_f64()))
            }
            ReadOutcome::TooLong { .. } => Err("a reply without end".into()),
            ReadOutcome::Failed(error) => Err(error),
        }
    }
}

/// When a server answers a command the spec defines with what looks like
/// its unknown-command error, says so: implementations differ in command
/// names more than in anything else.
fn unknown_command_hint(check: &mut Check, reply: &ReplyBytes, command: Option<&str>) {
    let Some(command) = command else { return };
    let Some(first) = check.findings.first_mut() else { return };
    if first.path != ".status" || first.severity != Verdict::Failed {
        return;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(reply.bytes.trim_ascii()) else {
        return;
    };
    let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("").to_ascii_lowercase();
    if ["protocol", "command", "unknown", "perintah"].iter().any(|w| message.contains(w)) {
        first.message.push_str(&format!(" (does the server know the command `{command}`?)"));
    }
}

/// A reply's `tokenid`, if it is an OK login.
fn token_of(reply: &ReplyBytes) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(reply.bytes.trim_ascii()).ok()?;
    // `tokenid` as the spec says, or whatever a variant calls it.
    let object = value.as_object()?;
    let token = object
        .get("tokenid")
        .or_else(|| object.iter().find(|(k, _)| k.contains("token")).map(|(_, v)| v))?;
    Some(token.as_str()?.to_owned())
}

/// A reference server in this process, for one case.
struct InProcess {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl InProcess {
    async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SharedChat::new(UserDirectory::builtin()));
        let (tx, rx) = oneshot::channel::<()>();
        let server =
            crate::server::run(listener, state, crate::server::Config::default(), async move {
                let _ = rx.await;
            });
        // The reference server's log lines are not the runner's output.
        let handle =
            tokio::spawn(server.with_subscriber(tracing::subscriber::NoSubscriber::default()));
        Ok(Self { addr, shutdown: Some(tx), handle })
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.handle).await.is_err() {
            self.handle.abort();
        }
    }
}

/// Logs each built-in user in, drains the inbox and logs out, so that a
/// case on a long-running server starts from a known state (as far as the
/// protocol allows). Fails only when the server does not answer.
async fn prelude(run: &mut CaseRun<'_>) -> Result<(), String> {
    lock(&run.transcript).in_setup = true;
    let timeout = run.options.timeout;
    for user in BUILTIN_USERS {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(run.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(format!("setup: cannot connect to {}: {error}", run.addr))
            }
            Err(_) => return Err(format!("setup: cannot connect to {}: no answer", run.addr)),
        };
        let _ = stream.set_nodelay(true);
        let mut conn = Conn::new("C0".into(), stream, Arc::clone(&run.transcript));
        let reply = conn
            .ask(format!("auth {user} {BUILTIN_PASSWORD} \r\n").as_bytes(), timeout)
            .await
            .map_err(|e| format!("setup (logging {user} in to empty the inbox): {e}"))?;
        if let Some(token) = token_of(&reply) {
            conn.ask(format!("inbox {token} \r\n").as_bytes(), timeout)
                .await
                .map_err(|e| format!("setup (emptying {user}'s inbox): {e}"))?;
            conn.ask(format!("logout {token} \r\n").as_bytes(), timeout)
                .await
                .map_err(|e| format!("setup (logging {user} out): {e}"))?;
        }
    }
    lock(&run.transcript).in_setup = false;
    Ok(())
}

/// After a case that stopped early on a running server: log out the
/// sessions it opened, so they do not show up in the next case's `list`.
async fn cleanup(run: &mut CaseRun<'_>) {
    let tokens: Vec<String> = run
        .vars
        .values()
        .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace))
        .cloned()
        .collect();
    if tokens.is_empty() {
        return;
    }
    lock(&run.transcript).in_setup = true;
    let timeout = run.options.timeout.min(Duration::from_secs(1));
    if let Ok(Ok(stream)) = tokio::time::timeout(timeout, TcpStream::connect(run.addr)).await {
        let mut conn = Conn::new("C0".into(), stream, Arc::clone(&run.transcript));
        for token in tokens {
            if conn.ask(format!("logout {token} \r\n").as_bytes(), timeout).await.is_err() {
                break;
            }
        }
    }
    lock(&run.transcript).in_setup = false;
}

/// Runs one server case against `target`.
pub async fn run_server_case(
    example: &Example,
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
) -> CaseResult {
    let mut run = CaseRun::new(example, options, ctx, "server");
    let mut in_process = None;
    match target {
        ServerTarget::Connect(addr) => {
            run.addr = *addr;
            if let Err(message) = prelude(&mut run).await {
                lock(&run.transcript).in_setup = false;
                run.setup_error(message);
                run.close_conns();
                return run.finish();
            }
        }
        ServerTarget::Reference => match InProcess::start().await {
            Ok(server) => {
                run.addr = server.addr;
                in_process = Some(server);
            }
            Err(error) => {
                run.setup_error(format!("cannot start the reference server: {error}"));
                return run.finish();
            }
        },
        ServerTarget::Spawn { command, port } => {
            if let Err(message) = spawn_server(&mut run, command, *port).await {
                run.setup_error(message);
                run.attach_stderr();
                if let Some(process) = run.process.as_mut() {
                    process.kill().await;
                }
                return run.finish();
            }
        }
    }
    let mut completed = true;
    for step in &example.steps {
        let go_on = match &step.action {
            Action::Send { conn, text } => run.send(step.line, &step.source, *conn, text).await,
            Action::Expect { conn, expect } => {
                run.expect(step.line, &step.source, *conn, expect).await
            }
            Action::Type { .. } | Action::Print { .. } | Action::Prompt { .. } => {
                let check = finding_check(
                    Verdict::Error,
                    "a client step in a server case".into(),
                    String::new(),
                    String::new(),
                );
                run.record(step.line, &step.source, check)
            }
        };
        if !go_on {
            completed = false;
            break;
        }
    }
    run.close_conns();
    if !completed {
        if let ServerTarget::Connect(_) = target {
            cleanup(&mut run).await;
        }
    }
    if let Some(mut process) = run.process.take() {
        if let Some(status) = process.exited() {
            if run.verdict >= Verdict::Failed {
                run.note(format!("the server process {}", describe_exit(status)));
            }
        }
        process.kill().await;
        if let ServerTarget::Spawn { .. } = target {
            wait_until_closed(run.addr, Duration::from_secs(2)).await;
        }
        run.process = Some(process);
    }
    run.attach_stderr();
    if let Some(server) = in_process {
        server.stop().await;
    }
    run.finish()
}

/// Starts the server command for one case and waits until it listens.
async fn spawn_server(run: &mut CaseRun<'_>, command: &str, port: u16) -> Result<(), String> {
    let port = if command.contains("{port}") {
        super::process::free_port().map_err(|e| format!("cannot find a free port: {e}"))?
    } else {
        port
    };
    run.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let command_line = with_port(command, port);
    run.note(format!("starting the server: {command_line}"));
    let mut cmd = shell(&command_line);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONUNBUFFERED", "1");
    let mut running =
        Running::spawn(cmd).map_err(|e| format!("cannot start `{command_line}`: {e}"))?;
    if let Some(out) = running.child.stdout.take() {
        drain_into(out, Tail::default());
    }
    if let Some(err) = running.child.stderr.take() {
        drain_into(err, run.stderr.clone());
    }
    let waited = wait_until_listening(&mut running, run.addr, run.options.startup).await;
    run.process = Some(running);
    match waited {
        Ok(()) => Ok(()),
        Err(StartError::Exited(how)) => Err(format!("the server {how} before it accepted connections on port {port}")),
        Err(StartError::NotListening(limit)) => Err(format!(
            "nothing accepted connections on 127.0.0.1:{port} within {} s after starting the server (does it listen on the port the runner gave it?)",
            limit.as_secs_f64()
        )),
        Err(StartError::Spawn(e)) => Err(e),
    }
}

/// `sh -c COMMAND` (or `cmd /C` elsewhere).
fn shell(command_line: &str) -> Command {
    #[cfg(unix)]
    {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command_line);
        cmd
    }
    #[cfg(not(unix))]
    {
        let mut cmd = Command::new("cmd");
        cmd.arg("/C").arg(command_line);
        cmd
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// The most pieces of a client's output the runner looks at in one case.
const MAX_EVENTS: usize = 10_000;

/// A piece of the client's output, or its end.
enum Out {
    Event(OutEvent),
    Eof,
}

/// The client side of a running client case.
struct ClientIo {
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Out>,
    pending: VecDeque<OutEvent>,
    eof: bool,
    /// The client is waiting at a prompt the runner has seen.
    at_prompt: bool,
    /// No prompt seen yet: lines before the first are a banner.
    seen_prompt: bool,
}

enum Next {
    Event(OutEvent),
    Eof,
    Timeout,
}

impl ClientIo {
    /// The next line or prompt (debug and blank lines skipped).
    async fn next(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.pending.pop_front() {
                match event.kind {
                    OutKind::Debug | OutKind::Blank => continue,
                    OutKind::Line if !self.seen_prompt => continue,
                    OutKind::Prompt => self.seen_prompt = true,
                    OutKind::Line => {}
                }
                return Next::Event(event);
            }
            if self.eof {
                return Next::Eof;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, self.events.recv()).await {
                Ok(Some(Out::Event(event))) => self.pending.push_back(event),
                Ok(Some(Out::Eof)) | Ok(None) => self.eof = true,
                Err(_) => return Next::Timeout,
            }
        }
    }
}

fn reader_task<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut stdout: R,
    transcript: SharedTranscript,
    tx: mpsc::UnboundedSender<Out>,
) {
    tokio::spawn(async move {
        let mut parser = OutputParser::new();
        let mut buf = [0u8; 4096];
        let mut forwarded = 0usize;
        loop {
            let n = stdout.read(&mut buf).await.unwrap_or(0);
            let events = if n == 0 { parser.finish() } else { parser.feed(&buf[..n]) };
            for event in events {
                // A client that floods its output is drained, not recorded.
                forwarded += 1;
                if forwarded > MAX_EVENTS {
                    continue;
                }
                let tag = match event.kind {
                    OutKind::Line => "U <",
                    OutKind::Prompt => "U ?",
                    OutKind::Debug | OutKind::Blank => "U ·",
                };
                lock(&transcript).bytes(tag, event.text.as_bytes());
                let _ = tx.send(Out::Event(event));
            }
            if n == 0 {
                lock(&transcript).note("the client's standard output ended");
                let _ = tx.send(Out::Eof);
                return;
            }
        }
    });
}

fn stderr_task<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut stderr: R,
    transcript: SharedTranscript,
    tail: Tail,
) {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut line = Vec::new();
        loop {
            let n = stderr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                if !line.is_empty() {
                    lock(&transcript).bytes("stderr", &line);
                }
                return;
            }
            tail.push(&buf[..n]);
            for &b in &buf[..n] {
                if b == b'\n' {
                    lock(&transcript).bytes("stderr", &line);
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
    });
}

/// Forwards the client's connections to the reference server, recording
/// both directions as `wire >` and `wire <`.
fn proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    transcript: SharedTranscript,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut pipes = tokio::task::JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            let transcript = Arc::clone(&transcript);
            pipes.spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                lock(&transcript).note("the client connected");
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let t1 = Arc::clone(&transcript);
                let up = async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        lock(&t1).bytes("wire >", &buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    lock(&t1).note("the client closed its connection");
                    let _ = sw.shutdown().await;
                };
                let t2 = Arc::clone(&transcript);
                let down = async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        lock(&t2).bytes("wire <", &buf[..n]);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    })
}

impl CaseRun<'_> {
    /// Waits for the next prompt, collecting lines the spec does not show.
    async fn wait_for_prompt(
        &mut self,
        io: &mut ClientIo,
        prompt: Option<&Text>,
        line: usize,
        source: &str,
    ) -> bool {
        let timeout = self.options.timeout;
        let mut extra = Vec::new();
        let check = loop {
            match io.next(timeout).await {
                Next::Event(OutEvent { kind: OutKind::Prompt, text }) => {
                    io.at_prompt = true;
                    let mut check = match prompt {
                        Some(expected) => check_prompt(expected, &text, &self.vars),
                        None => Check::default(),
                    };
                    if !extra.is_empty() {
                        check.findings.push(extra_lines(&extra));
                    }
                    break check;
                }
                Next::Event(event) => extra.push(event.text),
                Next::Eof => break self.client_gone(prompt, "the prompt").await,
                Next::Timeout => {
                    let expected = prompt
                        .map(|p| p.display(&self.vars))
                        .unwrap_or_else(|| "Command …:".into());
                    let mut message = format!(
                        "the client showed no prompt within {} s (CLI-1: it prints `Command TOKEN:` before reading each line, even when its input is not a terminal)",
                        timeout.as_secs_f64()
                    );
                    if !extra.is_empty() {
                        message.push_str(&format!("; it printed {}", quote_lines(&extra)));
                    }
                    break finding_check(Verdict::Failed, message, expected, extra.join("\n"));
                }
            }
        };
        self.record(line, source, check)
    }

    async fn client_gone(&mut self, expected: Option<&Text>, what: &str) -> Check {
        let how = self
            .exit_note_settled()
            .await
            .unwrap_or_else(|| "the client closed its standard output".into());
        let expected = expected.map(|p| p.display(&self.vars)).unwrap_or_default();
        finding_check(
            Verdict::Error,
            format!("{how} while the runner waited for {what}"),
            expected,
            String::new(),
        )
    }

    /// `U> TEXT`.
    async fn type_line(
        &mut self,
        io: &mut ClientIo,
        line: usize,
        source: &str,
        text: &Text,
    ) -> bool {
        if !io.at_prompt && !self.wait_for_prompt(io, None, line, source).await {
            return false;
        }
        let mut bytes = match text.render(&self.vars) {
            Ok(bytes) => bytes,
            Err(name) => {
                return self.record(
                    line,
                    source,
                    finding_check(
                        Verdict::Error,
                        format!("${{{name}}} was never bound"),
                        String::new(),
                        String::new(),
                    ),
                )
            }
        };
        bytes.push(b'\n');
        lock(&self.transcript).bytes("U >", &bytes);
        io.at_prompt = false;
        let timeout = self.options.timeout;
        let written = match io.stdin.as_mut() {
            Some(stdin) => match tokio::time::timeout(timeout, async {
                stdin.write_all(&bytes).await?;
                stdin.flush().await
            })
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("the client does not read its input".to_string()),
            },
            None => Err("standard input is closed".into()),
        };
        if let Err(error) = written {
            let how = self.exit_note_settled().await.unwrap_or(error);
            return self.record(
                line,
                source,
                finding_check(
                    Verdict::Error,
                    format!("cannot type into the client: {how}"),
                    String::new(),
                    String::new(),
                ),
            );
        }
        true
    }

    /// `U< TEXT`.
    async fn printed(&mut self, io: &mut ClientIo, line: usize, source: &str, text: &Text) -> bool {
        let timeout = self.options.timeout;
        let mut seen: Vec<String> = Vec::new();
        let end = loop {
            match io.next(timeout).await {
                Next::Event(OutEvent { kind: OutKind::Prompt, text: prompt }) => {
                    io.pending.push_front(OutEvent { kind: OutKind::Prompt, text: prompt });
                    break "then showed the prompt";
                }
                Next::Event(event) => {
                    let check = check_line(text, &event.text, &self.vars, self.ctx);
                    if check.verdict() == Verdict::Ok {
                        let mut check = check;
                        if !seen.is_empty() {
                            check.findings.push(extra_lines(&seen));
                        }
                        return self.record(line, source, check);
                    }
                    seen.push(event.text);
                }
                Next::Eof => break "then its output ended",
                Next::Timeout => break "then nothing more",
            }
        };
        // No exact match: the closest line.
        let best = seen
            .iter()
            .enumerate()
            .map(|(i, l)| (i, check_line(text, l, &self.vars, self.ctx)))
            .min_by_key(|(i, c)| (c.verdict(), *i));
        let check = match best {
            Some((i, mut check)) if check.verdict() < Verdict::Failed => {
                let others: Vec<String> = seen
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, l)| l.clone())
                    .collect();
                if !others.is_empty() {
                    check.findings.push(extra_lines(&others));
                }
                check
            }
            Some((_, mut check)) => {
                if seen.len() > 1 {
                    check.actual = seen
                        .iter()
                        .map(|l| escape_for_transcript(l.as_bytes()))
                        .collect::<Vec<_>>()
                        .join("\n");
                    check.findings[0]
                        .message
                        .push_str(&format!(" (it printed {}, {end})", quote_lines(&seen)));
                } else {
                    check.findings[0].message.push_str(&format!(" ({end})"));
                }
                check
            }
            None if end == "then its output ended" => self.client_gone(Some(text), "a line").await,
            None => finding_check(
                Verdict::Failed,
                format!(
                    "the client printed nothing, {end} (waited up to {} s)",
                    timeout.as_secs_f64()
                ),
                text.display(&self.vars),
                String::new(),
            ),
        };
        self.record(line, source, check)
    }
}

fn quote_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("\"{}\"", escape_for_transcript(l.as_bytes())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn extra_lines(lines: &[String]) -> Finding {
    Finding::new(
        Verdict::NonStrict,
        "",
        format!("the client also printed lines the spec does not show: {}", quote_lines(lines)),
    )
}

/// Runs one client case.
pub async fn run_client_case(
    example: &Example,
    target: &ClientTarget,
    options: &Options,
    ctx: &Context,
) -> CaseResult {
    let mut run = CaseRun::new(example, options, ctx, "client");
    let server = match InProcess::start().await {
        Ok(server) => server,
        Err(error) => {
            run.setup_error(format!("cannot start the reference server: {error}"));
            return run.finish();
        }
    };
    run.addr = server.addr;
    let port = if target.uses_port_placeholder() {
        match super::process::free_port() {
            Ok(port) => port,
            Err(error) => {
                run.setup_error(format!("cannot find a free port: {error}"));
                server.stop().await;
                return run.finish();
            }
        }
    } else {
        target.port
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
        Ok(listener) => listener,
        Err(error) => {
            run.setup_error(format!(
                "cannot listen on 127.0.0.1:{port} for the client to connect to: {error} (is another server running there? stop it, or put {{port}} in the client's arguments)"
            ));
            server.stop().await;
            return run.finish();
        }
    };
    let proxy_task = proxy(listener, server.addr, Arc::clone(&run.transcript));
    let argv: Vec<String> = target.argv.iter().map(|a| with_port(a, port)).collect();
    run.note(format!(
        "starting the client: {}",
        argv.iter().map(|a| super::process::shell_quote(a)).collect::<Vec<_>>().join(" ")
    ));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONUNBUFFERED", "1");
    let mut running = match Running::spawn(cmd) {
        Ok(running) => running,
        Err(error) => {
            run.setup_error(format!("cannot start `{}`: {error}", argv[0]));
            proxy_task.abort();
            let _ = proxy_task.await;
            server.stop().await;
            return run.finish();
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(stdout) = running.child.stdout.take() {
        reader_task(stdout, Arc::clone(&run.transcript), tx);
    }
    if let Some(stderr) = running.child.stderr.take() {
        stderr_task(stderr, Arc::clone(&run.transcript), run.stderr.clone());
    }
    let mut io = ClientIo {
        stdin: running.child.stdin.take(),
        events: rx,
        pending: VecDeque::new(),
        eof: false,
        at_prompt: false,
        seen_prompt: false,
    };
    run.process = Some(running);
    for step in &example.steps {
        let go_on = match &step.action {
            Action::Send { conn, text } => run.send(step.line, &step.source, *conn, text).await,
            Action::Expect { conn, expect } => {
                run.expect(step.line, &step.source, *conn, expect).await
            }
            Action::Type { text } => run.type_line(&mut io, step.line, &step.source, text).await,
            Action::Print { text } => run.printed(&mut io, step.line, &step.source, text).await,
            Action::Prompt { text } => {
                run.wait_for_prompt(&mut io, Some(text), step.line, &step.source).await
            }
        };
        if !go_on {
            break;
        }
    }
    run.close_conns();
    run.note("end of the case: the runner closes the client's input and stops it");
    drop(io.stdin.take());
    if let Some(mut process) = run.process.take() {
        let before = process.exited();
        process.kill().await;
        if let (Some(status), true) = (before, run.verdict >= Verdict::Failed) {
            run.note(format!("the client process {}", describe_exit(status)));
        }
        run.process = Some(process);
    }
    // Let the readers record the last output.
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Awaiting the aborted task makes sure its listener is closed before
    // the next case binds the same port.
    proxy_task.abort();
    let _ = proxy_task.await;
    server.stop().await;
    // Standard error is in the transcript already, line by line.
    run.finish()
}
