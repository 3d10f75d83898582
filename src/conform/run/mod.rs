//! Running cases: the I/O half of the runner.
//!
//! | module | what it runs |
//! |---|---|
//! | [`server`] | server cases: connections `C1`, `C2`, … to the server under test |
//! | [`client`] | client cases: the client under test, typed into, against a reference server |
//! | [`conn`] | one connection: writes counted by request, replies framed |
//! | [`probe`] | which commands the server under test has at all |
//! | [`parallel`] | cases at once, bounded by `--jobs`, reported in order |
//!
//! What is pure lives elsewhere: the [`matcher`](super::matcher) checks a
//! reply, [`diagnose`](super::diagnose) says what a failed read means, and
//! the [`outcome`](super::outcome) is plain data for the report.
//!
//! Every read and write has a timeout, and every way an implementation can
//! misbehave (refuse, close, stay silent, send garbage, die) ends in a
//! verdict for the case, never in a hang or a panic of the runner.

mod client;
mod conn;
pub(crate) mod parallel;
pub(crate) mod probe;
mod server;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

pub(crate) use self::client::preflight_client;
pub use self::client::{run_client_cases, ClientTarget, FirstPrompt};
pub(crate) use self::parallel::Slots;
pub(crate) use self::server::{
    preflight_server, run_prepared_server_cases, run_server_case, History,
};
pub use self::server::{run_server_cases, ServerTarget};

use self::conn::{Conn, ReadOutcome};
use super::diagnose::{self, ConnFacts, ReadFailure};
use super::matcher::{check_reply, Check, Context, Finding, Reading, ReplyBytes, Verdict};
use super::outcome::{CaseResult, StepReport};
use super::process::{describe_exit, Output, Running};
use super::transcript::{escape_for_transcript, Transcript};
use super::users::UserMap;
use crate::conform::endpoint::Endpoint;
use crate::shared::SharedChat;
use crate::spec::pattern::{Bindings, Text, Unbound};
use crate::spec::{Action, Example, Expect, Step};

/// How long the runner waits for the rest of a `\r\n\r\n` after a whole
/// JSON object before taking the object as an unterminated reply.
const GRACE: Duration = Duration::from_millis(250);

/// The longest reply the runner waits for the end of.
const MAX_REPLY: usize = 1024 * 1024;

/// The pause between two writes on one connection with no read between
/// them, so that they reach the server as separate reads (TRANS-4,
/// TRANS-7.5). Long enough for a server that shares a busy machine with
/// other cases running at once to read the first before the second comes:
/// a handful of cases pay it, at once with the others.
pub(crate) const WRITE_GAP: Duration = Duration::from_millis(100);

/// Knobs that apply to every case.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest wait for any one read.
    pub timeout: Duration,
    /// The longest wait for a spawned server to accept connections.
    pub startup: Duration,
    /// The users the examples run with (the spec's own, or the class's
    /// mapped onto them): the setup logs in as them, and a reference
    /// server started here knows them.
    pub(crate) users: UserMap,
    /// How many cases may run at once (shared by clones of the options).
    pub(crate) slots: Slots,
    /// Where the commands under test run (a class's submission folder);
    /// the runner's own when `None`.
    pub dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            startup: Duration::from_secs(10),
            users: UserMap::builtin(),
            slots: Slots::default(),
            dir: None,
        }
    }
}

/// A transcript several tasks write to.
type SharedTranscript = Arc<Mutex<Transcript>>;

fn lock(t: &SharedTranscript) -> std::sync::MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(|e| e.into_inner())
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
    /// With BLOCKED: the rule of the `given` step that failed.
    blocked_by: Option<String>,
    /// The rule the current step relies on, when it is a `given` step.
    given: Option<String>,
    /// Every token a login reply of this case carried, bound or not: the
    /// sessions to log out after the case on a running server.
    tokens: Vec<String>,
    conns: BTreeMap<u32, Conn>,
    /// Where `C1`, `C2`, … connect.
    addr: Endpoint,
    /// The implementation's process, when the runner started it.
    process: Option<Running>,
    /// The process's output (a server's both streams, a client's standard
    /// error), recorded into the transcript line by line as it comes.
    output: Output,
    /// The tasks reading that output.
    readers: Vec<JoinHandle<()>>,
    /// With `--connect`: the `list` entries of sessions that were open
    /// before the run (see [`History`]).
    foreign: Vec<Value>,
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
        let transcript = Arc::new(Mutex::new(Transcript::new(Instant::now())));
        Self {
            example,
            options,
            ctx,
            output: Output::into_transcript(Arc::clone(&transcript)),
            transcript,
            vars: Bindings::new(),
            steps: Vec::new(),
            verdict: Verdict::Ok,
            blocked_by: None,
            given: None,
            tokens: Vec::new(),
            conns: BTreeMap::new(),
            addr: Endpoint::host(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            process: None,
            readers: Vec::new(),
            foreign: Vec::new(),
            who,
        }
    }

    fn note(&self, text: impl Into<String>) {
        lock(&self.transcript).note(text);
    }

    /// Records a step's check; whether the case goes on.
    ///
    /// A `given` step is graded loosely: what is merely NON-STRICT about it
    /// is another case's business, and when it fails the case is BLOCKED by
    /// the rule it relies on instead of FAILED for its own.
    fn record(&mut self, line: usize, source: &str, mut check: Check) -> bool {
        for (name, value) in &check.bindings {
            self.vars.insert(name.clone(), value.clone());
        }
        // A difference charged to other rules is noted, not counted here;
        // one that leaves nothing else to check blocks the case instead.
        let mut blocker = None;
        for finding in &mut check.findings {
            if finding.severity < Verdict::Error
                && finding.severity > Verdict::Ok
                && !finding.counts_in(&self.example.rule)
            {
                if finding.cause.is_some_and(|c| !c.leaves_the_rest_checkable()) {
                    blocker = finding.charged_to.first().cloned();
                    continue;
                }
                finding.severity = Verdict::Ok;
                let note = format!(
                    "line {line}: {} (counted under {}, not in this case)",
                    finding.render(),
                    finding.charged_to.join(", ")
                );
                lock(&self.transcript).note(note);
            }
        }
        let mut verdict = check.verdict();
        if let Some(rule) = blocker.as_ref().or(self.given.as_ref()) {
            match verdict {
                Verdict::Error => {}
                v if v >= Verdict::Failed => {
                    verdict = Verdict::Blocked;
                    for finding in &mut check.findings {
                        if finding.severity == Verdict::Failed {
                            finding.severity = Verdict::Blocked;
                        }
                    }
                    self.blocked_by = Some(rule.clone());
                }
                _ => return true,
            }
        }
        if verdict != Verdict::Ok {
            self.steps.push(StepReport { line, source: source.to_owned(), verdict, check });
            self.verdict = self.verdict.max(verdict);
        }
        verdict < Verdict::Blocked
    }

    /// A harness problem before any step could run.
    fn setup_error(&mut self, message: String) {
        let line = self.example.line;
        let check = diagnose::one_finding(Verdict::Error, message, String::new(), String::new());
        self.given = None;
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
            let connect = tokio::time::timeout(self.options.timeout, self.addr.connect()).await;
            let stream = match connect {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(format!("{error} ({})", self.addr)),
                Err(_) => {
                    return Err(format!(
                        "no answer from {} within {} s (--timeout)",
                        self.addr,
                        self.options.timeout.as_secs_f64()
                    ))
                }
            };
            let _ = stream.set_nodelay(true);
            self.conns.insert(n, Conn::new(format!("C{n}"), stream, Arc::clone(&self.transcript)));
        }
        Ok(self.conns.get_mut(&n).expect("just inserted"))
    }

    /// A step that names a variable no line bound: a fault of the spec.
    fn unbound(&mut self, line: usize, source: &str, unbound: &Unbound) -> bool {
        let check = diagnose::one_finding(
            Verdict::Error,
            unbound.to_string(),
            String::new(),
            String::new(),
        );
        self.record(line, source, check)
    }

    /// How this step's reply is read: loosely when it is `given`.
    fn reading(&self) -> Reading {
        if self.given.is_some() {
            Reading::Given
        } else {
            Reading::Exact
        }
    }

    /// Takes one step of the protocol's side: a request to send or a reply
    /// to check, with the `given` it carries. A client step (`type`,
    /// `print`, a prompt) is not the protocol's side: a server case holding
    /// one is the runner's error. Whether the case goes on.
    async fn wire_step(&mut self, step: &Step) -> bool {
        self.given = step.given.clone();
        match &step.action {
            Action::Send { conn, text } => self.send(step.line, &step.source, *conn, text).await,
            Action::Expect { conn, expect } => {
                self.expect(step.line, &step.source, *conn, expect).await
            }
            Action::Type { .. } | Action::Print { .. } | Action::Prompt { .. } => {
                let message = "a client step in a server case".to_string();
                let check =
                    diagnose::one_finding(Verdict::Error, message, String::new(), String::new());
                self.record(step.line, &step.source, check)
            }
        }
    }

    /// `C1> …`.
    async fn send(&mut self, line: usize, source: &str, conn: u32, text: &Text) -> bool {
        let bytes = match text.render(&self.vars) {
            Ok(bytes) => bytes,
            Err(unbound) => return self.unbound(line, source, &unbound),
        };
        let timeout = self.options.timeout;
        let written = match self.conn(conn).await {
            Ok(c) => c.write(&bytes, timeout).await,
            Err(error) => {
                let exited = self.exit_note_settled().await;
                let check =
                    diagnose::connect_failure(conn, &error, exited, escape_for_transcript(&bytes));
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
            Err(error) => {
                let exited = self.exit_note_settled().await;
                let check = diagnose::connect_failure(conn, &error, exited, expected);
                return self.record(line, source, check);
            }
        };
        let failure = match outcome {
            ReadOutcome::Reply(reply) => {
                if let Some(token) = server::token_of(&reply) {
                    self.tokens.push(token);
                }
                let mut check = check_reply(expect, &reply, &self.vars, self.ctx, self.reading());
                if self.given.is_none() {
                    let c = &self.conns[&conn];
                    let command = c.commands.get(c.replies.saturating_sub(1)).cloned();
                    server::unknown_command_hint(&mut check, &reply, command.as_deref());
                }
                if let Some(shown) = self.explained_by_history(expect, &reply, check.verdict()) {
                    check.findings = vec![Finding::new(
                        Verdict::Error,
                        "",
                        format!(
                            "could not run cleanly: the reply shows {shown}, from a session open before the run (the runner did not open it); without it the reply would match better. Not charged to {}: restart the server, or use --spawn",
                            self.example.rule
                        ),
                    )];
                }
                return self.record(line, source, check);
            }
            ReadOutcome::Closed { partial } => ReadFailure::Closed { partial },
            ReadOutcome::TimedOut { partial } => ReadFailure::TimedOut { partial },
            ReadOutcome::TooLong { partial } => ReadFailure::TooLong { partial, limit: MAX_REPLY },
            ReadOutcome::Failed(error) => ReadFailure::Io(error),
        };
        let exited = match failure {
            ReadFailure::TimedOut { .. } => self.exit_note(),
            _ => self.exit_note_settled().await,
        };
        let c = &self.conns[&conn];
        let facts = ConnFacts {
            conn,
            requests: c.requests,
            replies: c.replies,
            last_write_requests: c.last_write_requests,
            last_reply_error: c.last_reply_error,
            other_answered: self
                .conns
                .iter()
                .find(|(n, c)| **n != conn && c.replies > 0)
                .map(|(n, _)| *n),
            exited,
            who: self.who,
            timeout_secs: timeout.as_secs_f64(),
        };
        let eof = c.eof;
        let check = diagnose::read_failure(&failure, &facts, expected);
        if check.actual.is_empty() && !eof {
            self.note(format!(
                "C{conn}: nothing came within {} s (--timeout)",
                timeout.as_secs_f64()
            ));
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

    /// With `--connect` on a server that had sessions before the run:
    /// whether a reply that did not simply match would have matched better
    /// without them, that is, with their `list` entries left out or in
    /// another place. Then the state from before the run, not the rule,
    /// explains the verdict: the entries it shows, quoted.
    fn explained_by_history(
        &self,
        expect: &Expect,
        reply: &ReplyBytes,
        verdict: Verdict,
    ) -> Option<String> {
        if self.foreign.is_empty() || verdict == Verdict::Ok || verdict == Verdict::Error {
            return None;
        }
        let body = reply.bytes.trim_ascii_end();
        let suffix = &reply.bytes[body.len()..];
        let value: Value = serde_json::from_slice(body.trim_ascii()).ok()?;
        let object = value.as_object()?;
        let (key, items) = object.iter().find_map(|(k, v)| {
            let items = v.as_array()?;
            items.iter().any(|i| self.foreign.contains(i)).then(|| (k.clone(), items.clone()))
        })?;
        let shown: Vec<usize> =
            (0..items.len()).filter(|&i| self.foreign.contains(&items[i])).take(4).collect();
        let check = |items: Vec<Value>| {
            let mut v = value.clone();
            v[key.as_str()] = Value::Array(items);
            let mut bytes = super::matcher::python_json(&v).into_bytes();
            bytes.extend_from_slice(suffix);
            let reply = ReplyBytes { bytes, terminated: reply.terminated };
            check_reply(expect, &reply, &self.vars, self.ctx, self.reading()).verdict()
        };
        // The same reply in the same bytes, so that only the entries count.
        let baseline = check(items.clone());
        let mut variants: Vec<Vec<Value>> = Vec::new();
        for mask in 1..(1u32 << shown.len()) {
            let keep =
                |i: usize| !shown.iter().enumerate().any(|(b, &s)| s == i && mask & (1 << b) != 0);
            variants
                .push((0..items.len()).filter(|&i| keep(i)).map(|i| items[i].clone()).collect());
        }
        for &i in &shown {
            for to in 0..items.len() {
                if to != i {
                    let mut moved = items.clone();
                    let item = moved.remove(i);
                    moved.insert(to, item);
                    variants.push(moved);
                }
            }
        }
        variants.into_iter().any(|v| check(v) < baseline).then(|| {
            shown
                .iter()
                .map(|&i| match &items[i] {
                    Value::String(s) => format!("\"{s}\""),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
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
            blocked_by: self.blocked_by.clone(),
            missing_command: None,
        }
    }
}

/// Prepares a program fixed to its port to start in a network of its own
/// (with `listen_on`, the runner listening there on that port), so that
/// its cases, and other such programs, need not take turns on the port;
/// `None` where the system does not allow it. The transcript says which.
#[cfg(target_os = "linux")]
fn own_network(
    cmd: &mut tokio::process::Command,
    listen_on: Option<u16>,
    transcript: &SharedTranscript,
) -> Option<crate::conform::sandbox::Sandbox> {
    if !crate::conform::endpoint::own_networks() {
        return None;
    }
    match crate::conform::sandbox::Sandbox::prepare(cmd.as_std_mut(), listen_on) {
        Ok(sandbox) => {
            lock(transcript).note("in a network of its own, where its fixed port is free");
            Some(sandbox)
        }
        Err(error) => {
            lock(transcript)
                .note(format!("on the host's network (no network of its own: {error})"));
            None
        }
    }
}

/// A reference server in this process, for one case.
pub(crate) struct InProcess {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl InProcess {
    pub(crate) async fn start(users: &UserMap) -> std::io::Result<Self> {
        Self::start_on(Ipv4Addr::LOCALHOST, users).await
    }

    /// The same on another loopback address: `conform explore` keeps its
    /// reference servers off 127.0.0.1, where the servers it spawns get
    /// their free ports, so that one never takes the other's port.
    pub(crate) async fn start_on(ip: Ipv4Addr, users: &UserMap) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SharedChat::new(users.directory()));
        let (tx, rx) = oneshot::channel::<()>();
        let server = crate::server::run(listener, state, async move {
            let _ = rx.await;
        });
        // The reference server's log lines are not the runner's output.
        let handle =
            tokio::spawn(server.with_subscriber(tracing::subscriber::NoSubscriber::default()));
        Ok(Self { addr, shutdown: Some(tx), handle })
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.handle).await.is_err() {
            self.handle.abort();
        }
    }
}
