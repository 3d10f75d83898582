//! Client cases: the client under test runs with piped standard input and
//! output against a reference server in this process, behind a recording
//! proxy, so that its own wire traffic is in the transcript.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{lock, parallel, CaseRun, InProcess, Options, SharedTranscript};
use crate::conform::diagnose::one_finding as finding_check;
use crate::conform::endpoint::Endpoint;
use crate::conform::framing::{OutEvent, OutKind, OutputParser};
use crate::conform::lines::{check_line, check_prompt};
use crate::conform::matcher::{Check, Context, Finding, Verdict};
use crate::conform::outcome::{CaseResult, Progress};
use crate::conform::process::{describe_exit, pipe_lines, settle_readers, with_port, Running};
use crate::conform::transcript::escape_for_transcript;
use crate::spec::pattern::Text;
use crate::spec::{Action, Example};

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

/// Where the runner listens for a client: on the host, or in the network
/// of its own a client with a fixed port is started in (the socket is made
/// there before the client runs, and handed over once it has started).
enum Listening {
    Host(TcpListener),
    #[cfg(target_os = "linux")]
    Sandbox(crate::conform::sandbox::Sandbox),
}

impl Listening {
    async fn host(port: u16) -> std::io::Result<Self> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.map(Self::Host)
    }

    /// A fixed port: in a network of the client's own where the system
    /// allows it ([`super::own_network`]), else on the host's.
    async fn fixed(
        cmd: &mut Command,
        port: u16,
        transcript: &SharedTranscript,
    ) -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        if let Some(sandbox) = super::own_network(cmd, Some(port), transcript) {
            return Ok(Self::Sandbox(sandbox));
        }
        let _ = (cmd, transcript);
        Self::host(port).await
    }

    /// The listening socket, once the client is started.
    fn listener(self) -> std::io::Result<TcpListener> {
        match self {
            Self::Host(listener) => Ok(listener),
            #[cfg(target_os = "linux")]
            Self::Sandbox(sandbox) => sandbox.listener(),
        }
    }
}

/// Runs client cases: at once (within `options.slots`) when each has a
/// port of its own, else one after the other.
pub async fn run_client_cases(
    examples: &[&Example],
    target: &ClientTarget,
    first_prompt: FirstPrompt,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    // With {port} or a network of its own each case has its own port;
    // else they share one.
    let at_once = target.uses_port_placeholder() || crate::conform::endpoint::own_networks();
    parallel::run_all(examples, at_once, &options.slots, progress, |index| {
        run_client_case(examples[index], target, first_prompt, options, ctx)
    })
    .await
}

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
    /// The longest wait for the first prompt, see [`FirstPrompt`].
    first_prompt: Duration,
}

/// How long a case waits for the client's first prompt, which also waits
/// for the program to start: a busy machine (a class, many cases at once)
/// can make that slower than any one answer, so a client that showed a
/// prompt when it was checked alone gets the start-up's time for it, as a
/// server gets it to listen. One that showed none gets `--timeout`, so
/// that each of its cases does not wait out the start-up again.
#[derive(Debug, Clone, Copy)]
pub struct FirstPrompt(Duration);

impl FirstPrompt {
    /// The wait when nothing is known of the client yet.
    pub fn unknown(options: &Options) -> Self {
        Self(options.timeout.max(options.startup))
    }
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
        let first = !io.seen_prompt && io.first_prompt > self.options.timeout;
        let timeout = if first { io.first_prompt } else { self.options.timeout };
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
                    let wait = if first {
                        format!("{} s of starting", timeout.as_secs_f64())
                    } else {
                        format!("{} s (--timeout sets the wait)", timeout.as_secs_f64())
                    };
                    let mut message = format!(
                        "the client showed no prompt within {wait}; CLI-1: it prints `Command TOKEN:` before reading each line, even when its input is not a terminal"
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
        if !io.at_prompt {
            // The prompt before a typed line is CLI-1's business: in a case
            // of another rule, a client that shows none blocks the case.
            let own = std::mem::take(&mut self.given);
            if self.example.rule != "CLI-1" {
                self.given = Some("CLI-1".to_owned());
            }
            let shown = self.wait_for_prompt(io, None, line, source).await;
            self.given = own;
            if !shown {
                return false;
            }
        }
        let mut bytes = match text.render(&self.vars) {
            Ok(bytes) => bytes,
            Err(unbound) => {
                return self.record(
                    line,
                    source,
                    finding_check(
                        Verdict::Error,
                        unbound.to_string(),
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
        // No exact match: the closest line, preferring lines that are not
        // debugging output the spec sets aside in spirit (an echoed wire
        // line without its `\r`, a `diterima dari server` variant).
        let best = seen
            .iter()
            .enumerate()
            .map(|(i, l)| (i, check_line(text, l, &self.vars, self.ctx)))
            .min_by_key(|(i, c)| (c.verdict(), looks_like_debug(&seen[*i]), *i));
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
                // `actual` stays the one line that differs (its diff is
                // the one shown); the message lists what else came.
                if seen.len() > 1 {
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

/// Whether a printed line is most likely debugging output: the wire line
/// echoed without its `\r`, or a received-bytes line in another spelling.
fn looks_like_debug(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ["send ", "auth ", "inbox ", "list ", "logout "].iter().any(|c| line.starts_with(c))
        || lower.contains("diterima")
        || lower.starts_with("b'")
        || lower.starts_with("b\"")
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

/// A client under test, started for one case, with the reference server
/// it talks to behind the recording proxy.
struct Session {
    server: InProcess,
    proxy: JoinHandle<()>,
    io: ClientIo,
    /// The port the client was told, or is expected to use.
    port: u16,
}

/// Starts the reference server, the proxy on the client's port and the
/// client; `None` when one of them cannot start (recorded as the case's
/// setup error).
async fn start(
    run: &mut CaseRun<'_>,
    target: &ClientTarget,
    first_prompt: FirstPrompt,
) -> Option<Session> {
    let server = match InProcess::start(&run.options.users).await {
        Ok(server) => server,
        Err(error) => {
            run.setup_error(format!("cannot start the reference server: {error}"));
            return None;
        }
    };
    run.addr = Endpoint::host(server.addr);
    let port = if target.uses_port_placeholder() {
        match crate::conform::ports::free_port() {
            Ok(port) => port,
            Err(error) => {
                run.setup_error(format!("cannot find a free port: {error}"));
                server.stop().await;
                return None;
            }
        }
    } else {
        target.port
    };
    let argv: Vec<String> = target.argv.iter().map(|a| with_port(a, port)).collect();
    run.note(format!(
        "starting the client: {}",
        argv.iter().map(|a| crate::conform::process::shell_quote(a)).collect::<Vec<_>>().join(" ")
    ));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONUNBUFFERED", "1");
    if let Some(dir) = &run.options.dir {
        cmd.current_dir(dir);
    }
    // Where the client connects: the runner listens there before it starts.
    let listening = if target.uses_port_placeholder() {
        Listening::host(port).await
    } else {
        Listening::fixed(&mut cmd, port, &run.transcript).await
    };
    let listening = match listening {
        Ok(listening) => listening,
        Err(error) => {
            run.setup_error(format!(
                "cannot listen on 127.0.0.1:{port} for the client to connect to: {error} (is another server running there? stop it, or put {{port}} in the client's arguments)"
            ));
            server.stop().await;
            return None;
        }
    };
    let mut running = match Running::spawn(cmd) {
        Ok(running) => running,
        Err(error) => {
            run.setup_error(format!("cannot start `{}`: {error}", argv[0]));
            server.stop().await;
            return None;
        }
    };
    let listener = match listening.listener() {
        Ok(listener) => listener,
        Err(error) => {
            run.setup_error(format!("cannot listen in the client's own network: {error}"));
            running.kill().await;
            server.stop().await;
            return None;
        }
    };
    let proxy_task = proxy(listener, server.addr, Arc::clone(&run.transcript));
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(stdout) = running.child.stdout.take() {
        reader_task(stdout, Arc::clone(&run.transcript), tx);
    }
    // Standard error goes into the transcript line by line, as it comes.
    if let Some(stderr) = running.child.stderr.take() {
        run.readers.push(pipe_lines(stderr, "stderr", run.output.clone()));
    }
    let io = ClientIo {
        stdin: running.child.stdin.take(),
        events: rx,
        pending: VecDeque::new(),
        eof: false,
        at_prompt: false,
        seen_prompt: false,
        first_prompt: first_prompt.0,
    };
    run.process = Some(running);
    Some(Session { server, proxy: proxy_task, io, port })
}

/// Ends a case: closes the client's input, kills it and its group, and
/// stops the proxy and the reference server.
async fn stop(run: &mut CaseRun<'_>, mut session: Session) {
    drop(session.io.stdin.take());
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
    settle_readers(std::mem::take(&mut run.readers), Duration::from_millis(300)).await;
    // Awaiting the aborted task makes sure its listener is closed before
    // the next case binds the same port.
    session.proxy.abort();
    let _ = session.proxy.await;
    session.server.stop().await;
}

/// Before the cases: starts the client once, types nothing, and waits (up
/// to `--timeout`) for its first prompt. A client that ends before it
/// shows one cannot be tested at all (a typo in its path, a crash on
/// start, a server it cannot find): the `Err` is the diagnosis, with its
/// output. A client that stays but shows no prompt is graded by the cases
/// (CLI-1), not stopped here.
pub(crate) async fn preflight_client(
    first: &Example,
    target: &ClientTarget,
    options: &Options,
    ctx: &Context,
) -> Result<FirstPrompt, String> {
    let mut run = CaseRun::new(first, options, ctx, "client");
    let unknown = FirstPrompt::unknown(options);
    let Some(mut session) = start(&mut run, target, unknown).await else {
        let why = run
            .steps
            .first()
            .and_then(|s| s.check.headline())
            .unwrap_or_else(|| "it cannot be started".into());
        return Err(format!("the client cannot be tested: {why}"));
    };
    let ended = loop {
        match session.io.next(unknown.0).await {
            Next::Event(OutEvent { kind: OutKind::Prompt, .. }) => break Ok(unknown),
            Next::Timeout => break Ok(FirstPrompt(options.timeout)),
            Next::Event(_) => {}
            Next::Eof => break Err(run.exit_note_settled().await),
        }
    };
    let port = session.port;
    stop(&mut run, session).await;
    let how = match ended {
        Ok(first_prompt) => return Ok(first_prompt),
        // Its output ended, yet it runs: the cases grade that.
        Err(None) => return Ok(FirstPrompt(options.timeout)),
        Err(Some(how)) => how,
    };
    let entries = lock(&run.transcript).entries.clone();
    let connected = entries.iter().any(|e| e.text == "the client connected");
    let lines: Vec<String> = entries
        .iter()
        .filter_map(|e| match e.tag.as_str() {
            "U <" | "U ?" | "U ·" => Some(format!("  stdout | {}", e.text)),
            "stderr" => Some(format!("  stderr | {}", e.text)),
            _ => None,
        })
        .collect();
    let lines = if lines.is_empty() {
        "  (it printed nothing)".to_owned()
    } else {
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let argv: Vec<String> = target.argv.iter().map(|a| with_port(a, port)).collect();
    let never = if connected {
        String::new()
    } else if target.uses_port_placeholder() {
        format!("; it never connected to the reference server at 127.0.0.1:{port}, the port given in place of {{port}}")
    } else {
        format!("; it never connected to the reference server at 127.0.0.1:{port} (--port; if it connects elsewhere, pass its port with --port, or put {{port}} in its arguments)")
    };
    Err(format!(
        "the client cannot be tested: {how} before it showed a prompt, with nothing typed into it yet{never}.\n  command: {}\nIts last output:\n{lines}",
        argv.iter().map(|a| crate::conform::process::shell_quote(a)).collect::<Vec<_>>().join(" ")
    ))
}

/// Runs one client case.
pub(crate) async fn run_client_case(
    example: &Example,
    target: &ClientTarget,
    first_prompt: FirstPrompt,
    options: &Options,
    ctx: &Context,
) -> CaseResult {
    let mut run = CaseRun::new(example, options, ctx, "client");
    let Some(mut session) = start(&mut run, target, first_prompt).await else {
        return run.finish();
    };
    let io = &mut session.io;
    for step in &example.steps {
        run.given = step.given.clone();
        let go_on = match &step.action {
            Action::Send { .. } | Action::Expect { .. } => run.wire_step(step).await,
            Action::Type { text } => run.type_line(io, step.line, &step.source, text).await,
            Action::Print { text } => run.printed(io, step.line, &step.source, text).await,
            Action::Prompt { text } => {
                run.wait_for_prompt(io, Some(text), step.line, &step.source).await
            }
        };
        if !go_on {
            break;
        }
    }
    run.close_conns();
    run.note("end of the case: the runner closes the client's input and stops it");
    stop(&mut run, session).await;
    run.finish()
}
