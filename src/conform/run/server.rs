//! Server cases: connections to the server under test, which is a running
//! server (`--connect`), a command started afresh per case (`--spawn`) or
//! the reference server in this process.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::Command;

use super::conn::Conn;
use super::{lock, probe, CaseRun, InProcess, Options};
use crate::conform::diagnose::one_finding;
use crate::conform::matcher::{Check, Context, ReplyBytes, Verdict};
use crate::conform::outcome::{CaseResult, Progress};
use crate::conform::process::{
    describe_exit, drain_into, wait_until_closed, wait_until_listening, with_port, Running,
    StartError, Tail,
};
use crate::spec::pattern::Seg;
use crate::spec::{Action, Example};

/// The users the setup logs in and out before each case in `--connect`
/// mode, with their password: the spec's built-in users.
pub const BUILTIN_USERS: [&str; 3] = ["messi", "henderson", "lineker"];
const BUILTIN_PASSWORD: &str = "surabaya";

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

/// Runs server cases one after the other.
pub async fn run_server_cases(
    examples: &[&Example],
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<CaseResult> {
    let mut results = Vec::with_capacity(examples.len());
    let missing = match examples.first() {
        Some(first) => missing_commands(first, target, options, ctx).await,
        None => Vec::new(),
    };
    for (index, example) in examples.iter().enumerate() {
        progress(Progress::Start { example, index, total: examples.len() });
        let lacking = example_commands(example).into_iter().find(|c| missing.contains(c));
        let result = match lacking {
            Some(command) => not_implemented(example, command),
            None => run_server_case(example, target, options, ctx).await,
        };
        progress(Progress::Done { result: &result, index, total: examples.len() });
        results.push(result);
    }
    results
}

/// The commands a server example sends: the first word of each request.
pub fn example_commands(example: &Example) -> Vec<String> {
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
    let check = one_finding(
        Verdict::NotImplemented,
        format!(
            "the server does not have the command `{command}`: it answers `{command} TOKEN` as it answers a command that cannot exist (`{} TOKEN`)",
            probe::MADE_UP
        ),
        String::new(),
        String::new(),
    );
    CaseResult {
        id: example.id.clone(),
        rule: example.rule.clone(),
        level: example.level,
        kind: example.kind,
        spec_line: example.line,
        verdict: Verdict::NotImplemented,
        steps: vec![crate::conform::outcome::StepReport {
            line: example.line,
            source: "(probe)".into(),
            verdict: Verdict::NotImplemented,
            check,
        }],
        transcript: Vec::new(),
        duration: Duration::ZERO,
        blocked_by: None,
        missing_command: Some(command),
    }
}

/// Probes the server once for the commands it lacks (none for the
/// reference server): on a server of its own with `--spawn`.
async fn missing_commands(
    first: &Example,
    target: &ServerTarget,
    options: &Options,
    ctx: &Context,
) -> Vec<String> {
    let wait = options.timeout;
    match target {
        ServerTarget::Reference => Vec::new(),
        ServerTarget::Connect(addr) => {
            let found = probe::probe(*addr, BUILTIN_USERS[0], BUILTIN_PASSWORD, wait).await;
            found.missing
        }
        ServerTarget::Spawn { command, port } => {
            let mut run = CaseRun::new(first, options, ctx, "server");
            let found = match spawn_server(&mut run, command, *port).await {
                Ok(()) => {
                    probe::probe(run.addr, BUILTIN_USERS[0], BUILTIN_PASSWORD, wait).await.missing
                }
                Err(_) => Vec::new(),
            };
            if let Some(mut process) = run.process.take() {
                process.kill().await;
                if command.contains("{port}") {
                    return found;
                }
                wait_until_closed(run.addr, Duration::from_secs(2)).await;
            }
            found
        }
    }
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
    for step in &example.steps {
        run.given = step.given.clone();
        let go_on = match &step.action {
            Action::Send { conn, text } => run.send(step.line, &step.source, *conn, text).await,
            Action::Expect { conn, expect } => {
                run.expect(step.line, &step.source, *conn, expect).await
            }
            Action::Type { .. } | Action::Print { .. } | Action::Prompt { .. } => {
                let check = one_finding(
                    Verdict::Error,
                    "a client step in a server case".into(),
                    String::new(),
                    String::new(),
                );
                run.record(step.line, &step.source, check)
            }
        };
        if !go_on {
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
        crate::conform::process::free_port().map_err(|e| format!("cannot find a free port: {e}"))?
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
