//! Server cases: connections to the server under test, which is a running
//! server (`--connect`), a command started afresh per case (`--spawn`) or
//! the reference server in this process.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::task::JoinHandle;

use super::conn::Conn;
use super::{lock, parallel, probe, CaseRun, InProcess, Options, SharedTranscript};
use crate::conform::endpoint::Endpoint;
use crate::conform::matcher::{Check, Context, ReplyBytes, Verdict};
use crate::conform::outcome::{CaseResult, Progress};
use crate::conform::process::{
    describe_exit, exit_hint, pipe_lines, settle_readers, wait_until_closed, wait_until_listening,
    with_port, Output, Running, StartError,
};
use crate::conform::transcript::Transcript;
use crate::spec::pattern::Seg;
use crate::spec::{Action, Example};

/// The users the setup looks after: those the examples use (at most
/// three), as mapped by `--users`/`--user`.
fn test_users(options: &Options) -> impl Iterator<Item = (&str, &str)> {
    options.users.users().iter().take(3).map(|u| (u.username.as_str(), u.password.as_str()))
}

/// The server under test.
#[derive(Debug, Clone)]
pub enum ServerTarget {
    /// A server that is already running. Before each case the built-in
    /// users are logged in, their inboxes drained and logged out again;
    /// after it, the sessions the case opened are logged out.
    Connect(SocketAddr),
    /// A shell command started afresh for every case, in its own process
    /// group, killed after it. `{port}` in the command is replaced by a
    /// free port; without it the server is expected on `port`.
    Spawn { command: String, port: u16 },
    /// The reference server, started in this process for every case.
    Reference,
}

/// What the runner learned about the server before the first case.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerPreflight {
    /// The commands the server does not have (see [`probe`]).
    pub missing: Vec<String>,
    /// With `--connect`: the state it had from before the run.
    pub history: History,
}

/// State a running server (`--connect`) had before the run: what the
/// examples, which start from a fresh server, do not expect.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct History {
    /// Messages waiting for the built-in users: user, how many. The
    /// runner empties these inboxes before every case.
    pub mail: Vec<(String, usize)>,
    /// The `list` entries of sessions the runner did not open. They cannot
    /// be ended without their tokens: a case whose reply would match
    /// better without them is ERROR, not charged to its rule.
    pub sessions: Vec<Value>,
}

impl History {
    pub(crate) fn is_empty(&self) -> bool {
        self.mail.is_empty() && self.sessions.is_empty()
    }

    /// What there was, for the header of the run and the `--json` report:
    /// one sentence each.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if !self.mail.is_empty() {
            let each: Vec<String> =
                self.mail.iter().map(|(user, n)| format!("{n} for {user}")).collect();
            let total: usize = self.mail.iter().map(|(_, n)| n).sum();
            parts.push(format!(
                "{} waiting ({}), emptied before the first case, so changing no verdict",
                if total == 1 { "1 message".to_owned() } else { format!("{total} messages") },
                each.join(", ")
            ));
        }
        if !self.sessions.is_empty() {
            let entries: Vec<String> = self
                .sessions
                .iter()
                .map(|v| match v {
                    Value::String(s) => format!("\"{s}\""),
                    other => other.to_string(),
                })
                .collect();
            parts.push(format!(
                "sessions the runner did not open, shown by `list`: {} (a case whose reply would match better without them is ERROR, not charged to its rule)",
                entries.join(", ")
            ));
        }
        parts
    }
}

/// Before the cases: makes sure the server can be tested, and learns what
/// it lacks. With `--spawn` the server is started once (the diagnosis of a
/// server that cannot start is the `Err`, with its output); with
/// `--connect` the state left from before the run is looked for.
pub(crate) async fn preflight_server(
    target: &ServerTarget,
    options: &Options,
) -> Result<ServerPreflight, String> {
    let wait = options.timeout;
    match target {
        ServerTarget::Reference => Ok(ServerPreflight::default()),
        ServerTarget::Connect(addr) => {
            let history = history(*addr, options).await;
            let (user, password) = test_users(options).next().unwrap_or(("", ""));
            let found = probe::probe(&Endpoint::host(*addr), user, password, wait).await;
            Ok(ServerPreflight { missing: found.missing, history })
        }
        ServerTarget::Spawn { command, port } => {
            let transcript = Arc::new(Mutex::new(Transcript::new(Instant::now())));
            let mut started = spawn_server(command, *port, options, &transcript)
                .await
                .map_err(|failure| failure.diagnosis)?;
            let (user, password) = test_users(options).next().unwrap_or(("", ""));
            let found = probe::probe(&started.addr, user, password, wait).await;
            started.running.kill().await;
            if !command.contains("{port}") && !started.addr.is_sandboxed() {
                wait_until_closed(started.addr.addr, Duration::from_secs(2)).await;
            }
            Ok(ServerPreflight { missing: found.missing, history: History::default() })
        }
    }
}

/// Runs server cases after [`preflight_server`] (a
/// server that cannot start then fails each case).
pub async fn run_server_cases(
    examples: &[&Example],
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    let prepared = if examples.is_empty() {
        ServerPreflight::default()
    } else {
        preflight_server(target, options).await.unwrap_or_default()
    };
    run_prepared_server_cases(examples, target, &prepared, options, ctx, progress).await
}

/// Runs server cases, with what the preflight found: at once (within
/// `options.slots`) when each has a server of its own, else one by one.
pub(crate) async fn run_prepared_server_cases(
    examples: &[&Example],
    target: &ServerTarget,
    prepared: &ServerPreflight,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    let missing = &prepared.missing;
    // Each case on its own port (or in its own network) and its own
    // process, or the one server.
    let at_once = match target {
        ServerTarget::Spawn { command, .. } => {
            command.contains("{port}") || crate::conform::endpoint::own_networks()
        }
        ServerTarget::Reference => true,
        ServerTarget::Connect(_) => false,
    };
    parallel::run_all(examples, at_once, &options.slots, progress, |index| async move {
        let example = examples[index];
        match example_commands(example).into_iter().find(|c| missing.contains(c)) {
            Some(command) => not_implemented(example, command),
            None => run_case(example, target, prepared, options, ctx).await,
        }
    })
    .await
}

/// The commands a server example sends: the first word of each request.
pub(super) fn example_commands(example: &Example) -> Vec<String> {
    let mut streams: std::collections::BTreeMap<u32, String> = Default::default();
    for step in &example.steps {
        if let Action::Send { conn, text } = &step.action {
            let stream = streams.entry(*conn).or_default();
            for seg in &text.segs {
                match seg {
                    Seg::Lit(bytes) => stream.push_str(&String::from_utf8_lossy(bytes)),
                    Seg::Ref(_) | Seg::Bind(..) => stream.push('X'),
                }
            }
        }
    }
    let mut commands = Vec::new();
    for stream in streams.values() {
        for request in stream.split("\r\n") {
            let word = request.split(' ').next().unwrap_or("").to_owned();
            if !word.is_empty() && !commands.contains(&word) {
                commands.push(word);
            }
        }
    }
    commands
}

/// The result of a case that uses a command the server does not have.
fn not_implemented(example: &Example, command: String) -> CaseResult {
    let message = format!(
        "the server does not have the command `{command}`: it answers `{command} TOKEN` as it answers a command that cannot exist (`{} TOKEN`)",
        probe::MADE_UP
    );
    let mut result = CaseResult::not_run(example, Verdict::NotImplemented, "(probe)", message);
    result.missing_command = Some(command);
    result
}

/// Looks for state left from before the run on a running server: mail
/// waiting for the built-in users (each logged in, its inbox read, logged
/// out), and sessions the runner did not open. Those show in `list` as
/// entries that are there both while messi is logged in and, after messi
/// logged out, while henderson is: each of the runner's own sessions is
/// in one of the two lists only. (When `logout` does not end a session,
/// nothing is concluded about sessions.)
async fn history(addr: SocketAddr, options: &Options) -> History {
    let wait = options.timeout;
    let transcript: SharedTranscript = Arc::new(Mutex::new(Transcript::new(Instant::now())));
    let mut found = History::default();
    let mut lists: Vec<Vec<Value>> = Vec::new();
    let mut ended: Option<String> = None;
    let mut logout_ends_sessions = true;
    let json = |reply: Result<ReplyBytes, String>| -> Option<Value> {
        serde_json::from_slice(reply.ok()?.bytes.trim_ascii()).ok()
    };
    for (i, (user, password)) in test_users(options).enumerate() {
        let Ok(Ok(stream)) = tokio::time::timeout(wait, TcpStream::connect(addr)).await else {
            return found;
        };
        let _ = stream.set_nodelay(true);
        let mut conn = Conn::new("C0".into(), stream, Arc::clone(&transcript));
        let Ok(login) = conn.ask(format!("auth {user} {password} \r\n").as_bytes(), wait).await
        else {
            return found;
        };
        let Some(token) = token_of(&login) else { continue };
        if let Some(inbox) = json(conn.ask(format!("inbox {token} \r\n").as_bytes(), wait).await) {
            let waiting = match inbox.get("messages") {
                Some(Value::Object(senders)) => {
                    senders.values().map(|m| m.as_array().map_or(1, Vec::len)).sum::<usize>()
                }
                Some(Value::Array(messages)) => messages.len(),
                _ => 0,
            };
            if waiting > 0 && inbox.get("status").and_then(Value::as_str) == Some("OK") {
                found.mail.push(((*user).to_owned(), waiting));
            }
        }
        if i < 2 {
            if let Some(list) = json(conn.ask(format!("list {token} \r\n").as_bytes(), wait).await)
            {
                if let Some(Value::Array(entries)) = list.get("messages") {
                    lists.push(entries.clone());
                }
            }
        }
        if let Some(old) = &ended {
            // The first user's token, logged out: a server that still
            // knows it does not end sessions on `logout`.
            let still = json(conn.ask(format!("inbox {old} \r\n").as_bytes(), wait).await);
            if still.and_then(|v| v.get("status").cloned()) != Some(Value::from("ERROR")) {
                logout_ends_sessions = false;
            }
            ended = None;
        }
        let out = json(conn.ask(format!("logout {token} \r\n").as_bytes(), wait).await);
        let ok = out.and_then(|v| v.get("status").cloned()) == Some(Value::from("OK"));
        if i == 0 {
            if ok {
                ended = Some(token);
            } else {
                logout_ends_sessions = false;
            }
        }
    }
    if lists.len() == 2 && logout_ends_sessions {
        for entry in &lists[0] {
            if lists[1].contains(entry) && !found.sessions.contains(entry) {
                found.sessions.push(entry.clone());
            }
        }
    }
    found
}

/// When a server answers a command the spec defines with what looks like
/// its unknown-command error, says so: implementations differ in command
/// names more than in anything else.
pub(super) fn unknown_command_hint(check: &mut Check, reply: &ReplyBytes, command: Option<&str>) {
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
pub(super) fn token_of(reply: &ReplyBytes) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(reply.bytes.trim_ascii()).ok()?;
    // `tokenid` as the spec says, or whatever a variant calls it.
    let object = value.as_object()?;
    let token = object
        .get("tokenid")
        .or_else(|| object.iter().find(|(k, _)| k.contains("token")).map(|(_, v)| v))?;
    Some(token.as_str()?.to_owned())
}

/// Logs each built-in user in, drains the inbox and logs out, so that a
/// case on a long-running server starts from a known state (as far as the
/// protocol allows). Fails only when the server does not answer.
async fn prelude(run: &mut CaseRun<'_>) -> Result<(), String> {
    lock(&run.transcript).in_setup = true;
    let timeout = run.options.timeout;
    let users: Vec<(String, String)> =
        test_users(run.options).map(|(u, p)| (u.to_owned(), p.to_owned())).collect();
    for (user, password) in users {
        let stream = match tokio::time::timeout(timeout, run.addr.connect()).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(format!("setup: cannot connect to {}: {error}", run.addr))
            }
            Err(_) => return Err(format!("setup: cannot connect to {}: no answer", run.addr)),
        };
        let _ = stream.set_nodelay(true);
        let mut conn = Conn::new("C0".into(), stream, Arc::clone(&run.transcript));
        let reply = conn
            .ask(format!("auth {user} {password} \r\n").as_bytes(), timeout)
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

/// After a case on a running server: log out the sessions it opened, so
/// that they do not show up in the next case's `list` (the examples start
/// from a server with no sessions and leave theirs open).
async fn cleanup(run: &mut CaseRun<'_>) {
    let mut tokens: Vec<String> = run
        .vars
        .values()
        .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace))
        .cloned()
        .collect();
    for token in &run.tokens {
        if !tokens.contains(token) {
            tokens.push(token.clone());
        }
    }
    if tokens.is_empty() {
        return;
    }
    lock(&run.transcript).in_setup = true;
    let timeout = run.options.timeout.min(Duration::from_secs(1));
    if let Ok(Ok(stream)) = tokio::time::timeout(timeout, run.addr.connect()).await {
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
pub(crate) async fn run_server_case(
    example: &Example,
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
) -> CaseResult {
    run_case(example, target, &ServerPreflight::default(), options, ctx).await
}

async fn run_case(
    example: &Example,
    target: &ServerTarget,
    prepared: &ServerPreflight,
    options: &Options,
    ctx: &Context,
) -> CaseResult {
    let mut run = CaseRun::new(example, options, ctx, "server");
    let mut in_process = None;
    match target {
        ServerTarget::Connect(addr) => {
            run.addr = Endpoint::host(*addr);
            run.foreign = prepared.history.sessions.clone();
            if let Err(message) = prelude(&mut run).await {
                lock(&run.transcript).in_setup = false;
                run.setup_error(message);
                run.close_conns();
                return run.finish();
            }
        }
        ServerTarget::Reference => match InProcess::start(&options.users).await {
            Ok(server) => {
                run.addr = Endpoint::host(server.addr);
                in_process = Some(server);
            }
            Err(error) => {
                run.setup_error(format!("cannot start the reference server: {error}"));
                return run.finish();
            }
        },
        ServerTarget::Spawn { command, port } => {
            match spawn_server(command, *port, options, &run.transcript).await {
                Ok(started) => {
                    run.addr = started.addr;
                    run.process = Some(started.running);
                    run.output = started.output;
                    run.readers = started.readers;
                }
                Err(failure) => {
                    run.setup_error(failure.message);
                    return run.finish();
                }
            }
        }
    }
    for step in &example.steps {
        if !run.wire_step(step).await {
            break;
        }
    }
    run.given = None;
    run.close_conns();
    if let ServerTarget::Connect(_) = target {
        cleanup(&mut run).await;
    }
    if let Some(mut process) = run.process.take() {
        if let Some(status) = process.exited() {
            if run.verdict >= Verdict::Blocked {
                run.note(format!("the server process {}", describe_exit(status)));
            }
        }
        process.kill().await;
        // The last lines it wrote, before the transcript is closed.
        settle_readers(std::mem::take(&mut run.readers), Duration::from_millis(500)).await;
        // The next case uses this port only when the command has no
        // {port} and no network of its own: then it must be free first.
        if let ServerTarget::Spawn { command, .. } = target {
            if !command.contains("{port}") && !run.addr.is_sandboxed() {
                wait_until_closed(run.addr.addr, Duration::from_secs(2)).await;
            }
        }
        run.process = Some(process);
    }
    if let Some(server) = in_process {
        server.stop().await;
    }
    run.finish()
}

/// A server started by the runner, accepting connections.
struct Started {
    running: Running,
    addr: Endpoint,
    output: Output,
    readers: Vec<JoinHandle<()>>,
}

/// Why a server the runner started cannot be used (it is killed already).
struct StartFailure {
    /// One paragraph, for a case's ERROR (the output is in its transcript).
    message: String,
    /// The message, the command and the server's last output lines: for
    /// the preflight, which stops the run with it.
    diagnosis: String,
}

/// Starts the server command and waits until it listens; its output goes
/// into `transcript` line by line as it comes.
async fn spawn_server(
    command: &str,
    port: u16,
    options: &Options,
    transcript: &SharedTranscript,
) -> Result<Started, StartFailure> {
    let startup = options.startup;
    let placeholder = command.contains("{port}");
    let port = if placeholder {
        crate::conform::ports::free_port().map_err(|e| {
            let message = format!("cannot find a free port: {e}");
            StartFailure { diagnosis: message.clone(), message }
        })?
    } else {
        port
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let command_line = with_port(command, port);
    lock(transcript).note(format!("starting the server: {command_line}"));
    let mut cmd = shell(&command_line);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONUNBUFFERED", "1");
    if let Some(dir) = &options.dir {
        cmd.current_dir(dir);
    }
    let addr =
        if placeholder { Endpoint::host(addr) } else { own_network(&mut cmd, addr, transcript) };
    let mut running = Running::spawn(cmd).map_err(|e| {
        let message = format!("cannot start `{command_line}`: {e}");
        StartFailure { diagnosis: message.clone(), message }
    })?;
    let output = Output::into_transcript(Arc::clone(transcript));
    let mut readers = Vec::new();
    if let Some(out) = running.child.stdout.take() {
        readers.push(pipe_lines(out, "stdout", output.clone()));
    }
    if let Some(err) = running.child.stderr.take() {
        readers.push(pipe_lines(err, "stderr", output.clone()));
    }
    let waited = wait_until_listening(&mut running, &addr, startup).await;
    let message = match waited {
        Ok(()) => return Ok(Started { running, addr, output, readers }),
        Err(StartError::Exited(how)) => {
            let hint = running.exited().and_then(exit_hint);
            format!(
                "the server {how} before it accepted connections on {addr}{}",
                hint.map(|h| format!(" ({h})")).unwrap_or_default()
            )
        }
        Err(StartError::NotListening(limit)) => format!(
            "nothing accepted connections on {addr} within {} s after starting the server (--startup-timeout); does it listen on the port the runner gave it?",
            limit.as_secs_f64()
        ),
        Err(StartError::Elsewhere(others)) => elsewhere(addr.addr, &others, placeholder),
    };
    running.kill().await;
    settle_readers(readers, Duration::from_millis(500)).await;
    let diagnosis = format!(
        "the server cannot be tested: {}{}\n  command: {command_line}\nIts last output:\n{}",
        message.strip_prefix("the server ").map_or(message.clone(), |m| format!("it {m}")),
        if message.ends_with(['?', '.']) { "" } else { "." },
        output.block(15)
    );
    lock(transcript).note(format!("the server cannot be used: {message}"));
    Err(StartFailure { message, diagnosis })
}

/// A server whose port is fixed: in a network of its own where the system
/// allows it ([`super::own_network`]), else on the host's.
fn own_network(cmd: &mut Command, addr: SocketAddr, transcript: &SharedTranscript) -> Endpoint {
    #[cfg(target_os = "linux")]
    if let Some(sandbox) = super::own_network(cmd, None, transcript) {
        return Endpoint::in_sandbox(addr, sandbox);
    }
    let _ = (cmd, transcript);
    Endpoint::host(addr)
}

/// The message for a server that listens, but not at `addr`: where it
/// listens, and the fix.
fn elsewhere(addr: SocketAddr, others: &[SocketAddr], placeholder: bool) -> String {
    let list: Vec<String> = others.iter().map(ToString::to_string).collect();
    let port = addr.port();
    let head = format!(
        "the server listens on {}, not on {addr} where the runner connects",
        list.join(", ")
    );
    if others.iter().any(|a| a.port() == port) {
        return format!(
            "{head}: it listens on port {port} on another address only; bind to 0.0.0.0 (or 127.0.0.1)"
        );
    }
    let theirs = others[0].port();
    if placeholder {
        format!(
            "{head}: it does not use the port given in place of {{port}} ({port}); make it take its port from its arguments, or leave {{port}} out of the command and pass `--port {theirs}`"
        )
    } else {
        format!("{head}: add {{port}} to its arguments, or pass `--port {theirs}`")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_of_an_example_are_the_first_words_of_its_requests() {
        let doc = "**A-1** (MUST; x) y.\n\n```example A-1.1 MUST\ngiven C1> auth messi surabaya \\r\\n\ngiven C1< {\"status\": \"OK\", \"tokenid\": \"${T:uuid}\"}\nC2> list ${T} \\r\\ninbox ${T}\\r\\nlog\nC2> out ${T}\\r\\n\nC2<-\n```\n";
        let spec = crate::spec::parse(doc).unwrap();
        assert_eq!(example_commands(&spec.examples[0]), ["auth", "list", "inbox", "logout"]);
    }
}
