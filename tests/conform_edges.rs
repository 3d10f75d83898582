//! The runner at the edges of a run: a target that cannot be tested at
//! all (a wrong port, a crash on start, a typo in the command, a client
//! that ends at once) stops the run before the cases with one diagnosis
//! and exit 2; SIGINT and SIGTERM leave no process behind and still write
//! the reports, marked incomplete; the program's own output is in the
//! transcript; `--connect` tells state from before the run apart from the
//! server's behaviour.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::conform::{
    bin, conform, conform_command, conform_fixed_port_client, conform_within, fixture, free_port,
    have_python, own_networks, python_client, python_server, temp_path,
};
use support::{message_sent, token_from_auth_reply, ServerProcess};

/// What a run that must stop before the cases may take.
const FAIL_FAST: Duration = Duration::from_secs(15);

/// Runs the runner on something that cannot be tested: it must stop
/// within [`FAIL_FAST`], with exit 2, no report, no case run and exactly
/// one diagnosis; the diagnosis is returned.
fn stops_at_once(args: &[&str]) -> String {
    let started = Instant::now();
    let run = conform_within(args, FAIL_FAST + Duration::from_secs(5));
    assert!(started.elapsed() < FAIL_FAST, "took {:?}: {}", started.elapsed(), run.show());
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.json.is_none(), "no report for a run that never started: {}", run.show());
    assert_eq!(run.stderr.matches("error:").count(), 1, "one diagnosis: {}", run.show());
    assert_eq!(run.stderr.matches("cannot be tested").count(), 1, "{}", run.show());
    assert!(!run.stdout.contains("ERROR"), "no case was run: {}", run.show());
    run.stderr
}

#[test]
fn a_server_on_another_port_is_told_where_it_listens_and_how_to_fix_it() {
    if !have_python() {
        return;
    }
    let theirs = free_port();
    let ours = free_port();
    assert_ne!(theirs, ours);
    // A port written into the server: it ignores what it is told.
    let cmd = format!(
        "CHAT_FIXED_PORT={theirs} python3 {} --break wrong-port",
        fixture("chat_server.py")
    );
    let err = stops_at_once(&["server", "--spawn", &cmd, "--port", &ours.to_string()]);
    assert!(err.contains(&format!("listens on 127.0.0.1:{theirs}")), "{err}");
    assert!(err.contains(&format!("not on 127.0.0.1:{ours}")), "{err}");
    assert!(
        err.contains(&format!("add {{port}} to its arguments, or pass `--port {theirs}`")),
        "{err}"
    );
    // Its output is shown.
    assert!(err.contains(&format!("stderr | listening on 127.0.0.1:{theirs}")), "{err}");

    // With {port} in the command, which the server ignores.
    let cmd = format!(
        "CHAT_FIXED_PORT={theirs} python3 {} --port {{port}} --break wrong-port",
        fixture("chat_server.py")
    );
    let err = stops_at_once(&["server", "--spawn", &cmd]);
    assert!(err.contains(&format!("listens on 127.0.0.1:{theirs}")), "{err}");
    assert!(err.contains("does not use the port given in place of {port}"), "{err}");
    assert!(err.contains(&format!("pass `--port {theirs}`")), "{err}");
}

#[test]
fn a_server_that_crashes_on_start_is_reported_once_with_its_status_and_output() {
    if !have_python() {
        return;
    }
    let cmd = python_server(&["crash-on-start"]);
    let err = stops_at_once(&["server", "--spawn", &cmd]);
    assert!(err.contains("exited with status 3 before it accepted connections"), "{err}");
    assert!(err.contains("stderr | ModuleNotFoundError: No module named 'pretend'"), "{err}");
    assert!(err.contains("command: python3 "), "{err}");
}

#[test]
fn a_typo_in_the_command_is_reported_once() {
    let cmd = format!("pyhton3 {} --port {{port}}", fixture("chat_server.py"));
    let err = stops_at_once(&["server", "--spawn", &cmd]);
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains("status 127"), "{err}");
    assert!(err.contains("typo"), "{err}");
}

#[test]
fn a_client_that_ends_before_its_first_prompt_is_reported_once() {
    // Never the default port 8889: someone may be running a server there.
    let port = free_port().to_string();
    let err = stops_at_once(&[
        "client",
        "--port",
        &port,
        "--",
        "sh",
        "-c",
        "echo 'Traceback: cannot import' >&2; exit 4",
    ]);
    assert!(err.contains("exited with status 4 before it showed a prompt"), "{err}");
    assert!(err.contains("stderr | Traceback: cannot import"), "{err}");
    assert!(err.contains("never connected"), "{err}");
    if have_python() {
        let err = stops_at_once(&["client", "--", "python3", "no/such/client.py", "{port}"]);
        assert!(err.contains("exited with status 2"), "{err}");
        assert!(err.contains("can't open file"), "{err}");
    }
}

#[test]
fn a_client_that_shows_no_prompt_is_graded_not_stopped() {
    let Some(argv) = have_python().then(|| python_client(&["no-prompt"])) else { return };
    let mut args = vec!["client", "--timeout", "0.5", "--case", "CLI-1.1"];
    args.push("--");
    args.extend(argv.iter().map(String::as_str));
    let run = conform(&args);
    assert_eq!(run.code, 1, "{}", run.show());
    assert_eq!(run.verdicts()["CLI-1.1"], "FAILED", "{}", run.show());
}

/// Whether a process whose command line starts with `marker` is running
/// (the runner's own, which contains it, does not count).
#[cfg(target_os = "linux")]
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").starts_with(marker))
            .unwrap_or(false)
    })
}

/// A runner started in the background, its standard output read line by
/// line as it comes.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    json: std::path::PathBuf,
    junit: std::path::PathBuf,
}

impl Live {
    fn start(args: &[&str]) -> Self {
        let json = temp_path(".json");
        let junit = temp_path(".xml");
        let mut child = conform_command(args)
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .spawn()
            .expect("start progjar-chat");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, seen: Vec::new(), json, junit }
    }

    /// Waits (at most 30 s) for a line of output containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no {text:?} in:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Sends `signal` to the runner and waits for it to end: its exit code
    /// and how long it took.
    fn signal(&mut self, signal: &str) -> (i32, Duration) {
        let sent = Instant::now();
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return (status.code().unwrap_or(-1), sent.elapsed());
            }
            if sent.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("the runner did not end within 10 s of {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(&self.json).expect("the --json report is written");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for no process with `marker` in its command line.
#[cfg(target_os = "linux")]
fn gone_within(marker: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !running(marker) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server command whose process group holds a `sleep` with a number
/// unique to this test, so that what is left of it can be found.
#[cfg(target_os = "linux")]
fn marked_server(tag: u32, breaks: &str) -> (String, String) {
    let marker = format!("sleep 31337{}{tag}", std::process::id());
    let cmd =
        format!("{marker} & exec python3 {} --port {{port}} {breaks}", fixture("chat_server.py"));
    (marker, cmd)
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_during_a_case_kills_everything_and_writes_an_incomplete_report() {
    if !have_python() {
        return;
    }
    // A silent server: each case waits out its --timeout.
    let (marker, cmd) = marked_server(1, "--break silent");
    let mut live = Live::start(&["server", "--spawn", &cmd, "--timeout", "3"]);
    live.wait_for("Testing the server");
    std::thread::sleep(Duration::from_millis(800));
    assert!(running(&marker), "the case's server runs: {marker}");
    let (code, took) = live.signal("-INT");
    assert_eq!(code, 130, "exit status of SIGINT\n{}\n{}", live.seen.join("\n"), live.stderr());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(gone_within(&marker, Duration::from_secs(2)), "`{marker}` survived the interrupt");
    let out = live.seen.join("\n");
    assert!(out.contains("interrupted after 0 of "), "{out}");
    assert!(out.contains("(SIGINT)"), "{out}");
    let report = live.report();
    assert_eq!(report["incomplete"], true, "{report}");
    assert_eq!(report["interrupted_by"], "SIGINT");
    assert_eq!(report["summary"]["exit_code"], 130);
    assert_eq!(report["cases_run"], 0);
    let junit = std::fs::read_to_string(&live.junit).unwrap();
    assert!(junit.contains(r#"<property name="incomplete" value="true"/>"#), "{junit}");
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_during_the_preflight_and_sigterm_after_some_cases_leave_nothing_behind() {
    if !have_python() {
        return;
    }
    // During the preflight: the server is started and probed, silent.
    let (marker, cmd) = marked_server(2, "--break silent");
    let mut live = Live::start(&["server", "--spawn", &cmd, "--timeout", "3"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&marker) {
        assert!(Instant::now() < deadline, "the server never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, took) = live.signal("-INT");
    assert_eq!(code, 130, "{}\n{}", live.seen.join("\n"), live.stderr());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(gone_within(&marker, Duration::from_secs(2)), "`{marker}` survived the interrupt");
    assert_eq!(live.report()["incomplete"], true);
    drop(live);

    // SIGTERM after some cases passed: those are in the report.
    let (marker, cmd) = marked_server(3, "--break no-list");
    let mut live = Live::start(&["server", "--spawn", &cmd, "--case", "AUTH-*,TRANS-8*,LIST-*"]);
    live.wait_for("AUTH-2.1");
    let (code, took) = live.signal("-TERM");
    assert_eq!(code, 143, "{}\n{}", live.seen.join("\n"), live.stderr());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(gone_within(&marker, Duration::from_secs(2)), "`{marker}` survived SIGTERM");
    let report = live.report();
    assert_eq!(report["incomplete"], true);
    assert_eq!(report["interrupted_by"], "SIGTERM");
    let run = report["cases_run"].as_u64().unwrap();
    assert!(run >= 2, "{report}");
    assert!(run < report["cases_selected"].as_u64().unwrap(), "{report}");
    assert_eq!(report["cases"].as_array().unwrap().len() as u64, run);
    let out = live.seen.join("\n");
    assert!(out.contains(&format!("interrupted after {run} of ")), "{out}");
    assert!(out.contains("Summary"), "the summary so far is printed: {out}");
    assert!(out.contains("Result so far: "), "{out}");
    assert!(out.contains("(exit code 143"), "{out}");
}

#[test]
fn a_servers_print_output_is_in_the_transcript_of_a_failing_case_in_time() {
    if !have_python() {
        return;
    }
    let cmd = python_server(&["print", "silent"]);
    let run = conform(&["server", "--spawn", &cmd, "--case", "AUTH-2.1", "--timeout", "0.5"]);
    assert_eq!(run.verdicts()["AUTH-2.1"], "FAILED", "{}", run.show());
    let transcript = run.case("AUTH-2.1")["transcript"].as_array().unwrap().clone();
    let at = |pred: &dyn Fn(&Value) -> bool| transcript.iter().position(pred);
    let wrote = at(&|e| e["tag"] == "C1 >").expect("C1 >");
    let printed = at(&|e| {
        e["tag"] == "stdout" && e["text"].as_str().unwrap().starts_with("request: 'auth pogba")
    })
    .unwrap_or_else(|| panic!("the server's print() is in the transcript: {transcript:?}"));
    let waited = at(&|e| e["text"].as_str().unwrap().starts_with("C1: nothing came within"))
        .expect("the timeout note");
    // Interleaved in time: after the request that caused it, before the
    // runner gave up waiting.
    assert!(wrote < printed && printed < waited, "{transcript:?}");
    assert!(transcript.iter().any(|e| e["tag"] == "stderr"), "{transcript:?}");
    // The text report shows it too.
    assert!(run.stdout.contains("stdout  request: 'auth pogba"), "{}", run.show());
}

/// Case ID → verdict of a run.
fn verdicts_of(run: &support::conform::Run) -> BTreeMap<String, String> {
    run.verdicts()
}

#[test]
fn spawn_and_connect_agree_on_a_fresh_server() {
    let spawn = format!("{} server --listen 127.0.0.1:{{port}}", bin());
    let spawned = conform(&["server", "--spawn", &spawn]);
    let server = ServerProcess::builtin();
    let connected = conform(&["server", "--connect", &server.addr.to_string()]);
    assert_eq!(verdicts_of(&spawned), verdicts_of(&connected), "{}", connected.show());
    assert!(!connected.stdout.contains("before the run"), "{}", connected.show());
    assert!(connected.report().get("history").is_none());
    if !have_python() {
        return;
    }
    // A server with mistakes: the same verdicts, mistakes included.
    let breaks = ["english-errors", "merge-pipelined"];
    let spawned = conform(&["server", "--spawn", &python_server(&breaks)]);
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.args([&fixture("chat_server.py"), "--port", &port.to_string()]);
    for b in breaks {
        cmd.args(["--break", b]);
    }
    let mut python = KillOnDrop(cmd.stderr(Stdio::null()).spawn().unwrap());
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the Python server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let connected = conform(&["server", "--connect", &addr]);
    let _ = python.0.kill();
    assert!(!spawned.not_ok().is_empty(), "{}", spawned.show());
    assert_eq!(verdicts_of(&spawned), verdicts_of(&connected), "{}", connected.show());
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_explains_state_from_before_the_run_instead_of_charging_a_rule() {
    let spawn = format!("{} server --listen 127.0.0.1:{{port}}", bin());
    let fresh = conform(&["server", "--spawn", &spawn]);
    assert!(fresh.not_ok().is_empty(), "{}", fresh.show());

    // A used server: henderson logged in and never logged out (a client
    // quit with Ctrl-C), and mail waiting for lineker.
    let server = ServerProcess::builtin();
    let mut s = server.connect();
    let h = token_from_auth_reply(&s.ask(b"auth henderson surabaya \r\n"));
    assert_eq!(s.ask(format!("send {h} lineker  left over \r\n").as_bytes()), message_sent());
    drop(s);

    let used = conform(&["server", "--connect", &server.addr.to_string()]);
    let out = &used.stdout;
    assert!(out.contains("The server had state from before the run: "), "{}", used.show());
    assert!(out.contains("1 message waiting (1 for lineker)"), "{}", used.show());
    assert!(out.contains(r#""henderson - Jordan Henderson""#), "{}", used.show());
    assert!(out.contains("restart it, or use --spawn"), "{}", used.show());
    assert_eq!(out.matches("The server had state from before the run").count(), 1);
    assert!(used.report()["history"].as_array().is_some_and(|h| h.len() == 2));

    // Every verdict that differs from a fresh server's is an ERROR that
    // names the history, never a rule's FAILED, BLOCKED or NON-STRICT.
    let fresh = verdicts_of(&fresh);
    let mut explained = Vec::new();
    for (id, verdict) in verdicts_of(&used) {
        if fresh[&id] == verdict {
            continue;
        }
        assert_eq!(verdict, "ERROR", "{id}: {}", used.show());
        let message = used.message(&id);
        assert!(message.contains("open before the run"), "{id}: {message}");
        assert!(message.contains("Jordan Henderson"), "{id}: {message}");
        explained.push(id);
    }
    // `list` shows henderson where the example lists messi alone.
    assert!(explained.contains(&"LIST-1.2".to_owned()), "{explained:?}\n{}", used.show());
    // Mail from before the run is emptied before the first case: no case
    // is affected by it.
    assert!(!explained.iter().any(|id| id.starts_with("INBOX")), "{explained:?}");
}

/// A class run ends on SIGTERM as a single run does: at once, with the
/// signal's exit code, and nothing it started left behind.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_ends_a_class_run_and_leaves_nothing_behind() {
    if !have_python() {
        return;
    }
    let (marker, cmd) = marked_server(4, "--break silent");
    let dir = temp_path("-class-term");
    std::fs::create_dir_all(dir.join("quiet")).unwrap();
    let manifest = dir.join("class.toml");
    std::fs::write(
        &manifest,
        format!("[[submission]]\nname = \"quiet\"\ndir = \"quiet\"\nserver = \"{cmd}\"\n"),
    )
    .unwrap();
    let mut live = Live::start(&["class", &manifest.display().to_string(), "--timeout", "3"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&marker) {
        assert!(Instant::now() < deadline, "the server never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, took) = live.signal("-TERM");
    assert_eq!(code, 143, "{}\n{}", live.seen.join("\n"), live.stderr());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(gone_within(&marker, Duration::from_secs(2)), "`{marker}` survived SIGTERM");
    assert!(live.stderr().contains("interrupted by SIGTERM"), "{}", live.stderr());
}

#[test]
fn a_fixed_port_taken_on_the_host_is_free_in_the_programs_own_network() {
    if !have_python() || own_networks() != Some(true) {
        eprintln!("skipped: needs python3 and network namespaces");
        return;
    }
    // The port the programs are fixed to is taken on the host's network.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let server = format!("python3 {} --port {port}", fixture("chat_server.py"));
    let cases = "AUTH-1.1,SEND-3.1,INBOX-1.1,TRANS-3.1,LOGOUT-3.1";
    let run = conform(&["server", "--spawn", &server, "--port", &port, "--case", cases]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert_eq!(run.verdicts().len(), 5, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    let transcript = run.case("SEND-3.1")["transcript"].to_string();
    assert!(transcript.contains("in a network of its own"), "{transcript}");
    // A client fixed to that port finds the runner listening there.
    let run = conform_fixed_port_client(&port, "CLI-1.1,CLI-3.1,CLI-8.1", &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    // A wrong client is still graded as wrong there.
    let run = conform_fixed_port_client(&port, "CLI-8.1", &["--break", "repr"]);
    assert_eq!(run.verdicts()["CLI-8.1"], "FAILED", "{}", run.show());
    drop(taken);
}
