//! The conformance runner: the spec's examples against anyone's server or
//! client.
//!
//! ```text
//! progjar-chat conform server --connect HOST:PORT      # a server that is running
//! progjar-chat conform server --spawn 'CMD … {port}'   # started afresh for every case
//! progjar-chat conform client -- CMD ARG… [{port}]     # a client program, typed into
//! ```
//!
//! | module | what it is |
//! |---|---|
//! | [`verdict`] | pure data: verdicts, findings, the check of a step |
//! | [`matcher`] | pure: a reply against the example's expectation |
//! | [`lines`] | pure: a client's printed lines and prompts against the example's |
//! | [`form`] | pure: where two texts differ, and why the same JSON is spelled otherwise |
//! | [`framing`] | pure: where a reply ends; a client's output cut into lines and prompts |
//! | [`diff`] | pure: line diffs and JSON pretty-printing for failure reports |
//! | [`select`] | pure: `--case` patterns, `--level`, the `--expect` file |
//! | [`users`] | pure: the class's own users, mapped onto the examples' three |
//! | [`transcript`] | the record of a case's traffic, bytes escaped |
//! | [`cause`] | pure: mistakes that show up in many cases, each with its fix |
//! | [`diagnose`] | pure: what a failed read or connect means, and its verdict |
//! | [`outcome`] | pure data: the result of a case and of its steps |
//! | [`triage`] | pure: results per rule, most urgent first; missing commands, blockers, shared causes |
//! | [`grade`] | pure: what each case counts as, the overall result, the exit code |
//! | [`export`] | pure: `--json` and `--junit` |
//! | [`report`] | pure: a case as a person reads it: its line, its details |
//! | [`summary`] | pure: the rules most urgent first, the counts, the result line |
//! | [`layout`] | pure: text wrapped for a terminal, keeping a rule's own spaces |
//! | [`process`] | starting and killing the implementation under test |
//! | [`run`] | the I/O: running server and client cases with tokio, every read with a timeout |
//!
//! The examples come from [`crate::spec`]; the specification is compiled in,
//! so the runner needs nothing but itself (`--spec FILE` reads another).

pub mod cause;
pub mod diagnose;
pub mod diff;
pub mod export;
pub mod form;
pub mod framing;
pub mod grade;
pub mod layout;
pub mod lines;
pub mod matcher;
pub mod outcome;
pub mod process;
pub mod report;
pub mod run;
pub mod select;
pub mod summary;
pub mod transcript;
pub mod triage;
pub mod users;
pub mod verdict;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use self::grade::{Graded, Policy};
use self::matcher::{Context, Verdict};
use self::outcome::{CaseResult, Progress};
use self::process::shell_quote;
use self::report::Style;
use self::run::{ClientTarget, Options, ServerTarget};
use self::select::{case_patterns, Expectations};
use self::users::UserMap;
use crate::duration::format_secs;
use crate::spec::{self, Example, Kind, Level, Spec, PROTOCOL_PATH};

/// A line of the text for people: on standard output, or on standard
/// error when a report takes standard output (`--json -`).
macro_rules! say {
    ($($arg:tt)*) => {
        if text_to_stderr() { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

/// [`say!`] without the newline.
macro_rules! say_part {
    ($($arg:tt)*) => {
        if text_to_stderr() { eprint!($($arg)*) } else { print!($($arg)*) }
    };
}

/// Exit code: the runner itself could not work.
pub const EXIT_RUNNER: u8 = 2;

/// Arguments of `progjar-chat conform`.
#[derive(Debug, Args)]
#[command(
    after_help = "Verdicts: OK; NON-STRICT (right status and shape, but a message text, the \
    byte form or an ordering differs from the spec's exact wording); NOT-IMPLEMENTED (the \
    implementation lacks a command the case uses; not run); BLOCKED (a step that only prepares \
    the case failed: fix the rule it names first); FAILED (a wrong answer, or none); ERROR (the \
    case could not run: refused, the program died, a runner fault).\n\n\
    Result, the last line: DOES NOT CONFORM when a MUST case is FAILED, ERROR, BLOCKED or \
    NOT-IMPLEMENTED; else CONFORMS EXCEPT WORDING when a MUST case is NON-STRICT because a reply \
    text is worded otherwise than the spec's; else CONFORMS. Other NON-STRICT differences and \
    SHOULD cases never change the result. Cases listed in --expect do not count.\n\n\
    Exit codes: 0 conforms (or conforms except wording, with --accept-wording); 1 does not, or \
    conforms except wording; 2 the runner could not work (bad arguments, nothing listening, a \
    server that cannot start); 130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM, with the \
    results so far.\n\n\
    Durations (--timeout, --startup-timeout): seconds (2, 0.5) or with a unit (500ms, 2s, 2m). \
    A report path of - writes that report to standard output (the text then goes to standard error)."
)]
pub struct ConformArgs {
    #[command(subcommand)]
    target: Option<TargetArgs>,
    /// List every case, server and client (ID, level, spec line, rule), and exit.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Subcommand)]
enum TargetArgs {
    /// Test a server: one that is running (--connect) or one started afresh for every case (--spawn).
    #[command(after_help = "Examples:\n  \
        progjar-chat conform server --connect 127.0.0.1:8889\n  \
        progjar-chat conform server --spawn 'python3 server.py --port {port}'\n  \
        progjar-chat conform server --spawn 'python3 server_thread_chat.py' --port 8889 --case 'AUTH-*'")]
    Server(ServerArgs),
    /// Test a client program: type each case's lines into it and check what it prints.
    #[command(
        after_help = "The runner starts a reference server for every case, on --port (default 8889, \
        what most clients use), or on a free port that replaces {port} in the command's arguments.\n\n\
        Examples:\n  \
        progjar-chat conform client -- python3 chat-cli.py\n  \
        progjar-chat conform client -- python3 client.py --port {port}"
    )]
    Client(ClientArgs),
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Test the server running at HOST:PORT. Before each case the runner logs each
    /// built-in user in, empties its inbox and logs it out again.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "spawn")]
    connect: Option<String>,
    /// Start the server under test with this shell command for every case, and kill
    /// its whole process group afterwards. `{port}` in it is replaced by a free port.
    #[arg(long, value_name = "CMD")]
    spawn: Option<String>,
    /// With --spawn and no {port} in the command: the port the server listens on.
    #[arg(long, default_value_t = 8889)]
    port: u16,
    /// With --spawn: how long a server may take to accept connections, in seconds.
    #[arg(long, default_value = "10", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    startup_timeout: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// The port the reference server listens on for the client, unless {port}
    /// appears in the command's arguments.
    #[arg(long, default_value_t = 8889)]
    port: u16,
    /// The client program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LevelArg {
    Must,
    Should,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// List the cases (ID, level, spec line, rule) and exit.
    #[arg(long)]
    list: bool,
    /// Print the cases as JSON (id, level, rule text, spec line, steps) and exit.
    #[arg(long)]
    dump_cases: bool,
    /// Run only matching cases: an ID (`SEND-4.1`), a prefix (`AUTH`, `AUTH-1`) or a
    /// glob (`AUTH-*`). Repeat it or separate with commas.
    #[arg(long = "case", value_name = "PATTERN")]
    cases: Vec<String>,
    /// Run only the MUST cases, or only the SHOULD cases.
    #[arg(long, value_enum, ignore_case = true)]
    level: Option<LevelArg>,
    /// How long to wait for any one reply, line or prompt, in seconds.
    #[arg(long, default_value = "2", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    timeout: Duration,
    /// Count NON-STRICT as FAILED, and SHOULD cases as MUST.
    #[arg(long)]
    strict: bool,
    /// Accept reply texts worded otherwise than the spec's (e.g. English error
    /// messages): "conforms except wording" then exits 0.
    #[arg(long)]
    accept_wording: bool,
    /// A file of cases expected to fail, one per line: `CASE-ID  reason`
    /// (`#` starts a comment line). The exit code then follows new failures only.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the transcript of every case, passing ones too.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// The class's users, from a users file in the server's format
    /// ({"users": [{"username": "budi", "name": "Budi Santoso", "password": "rahasia"}]}).
    /// They replace the examples' messi, henderson and lineker, in that order.
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    users: Option<PathBuf>,
    /// One of the class's users, `NAME:PASSWORD:FULL NAME`; repeat it. The
    /// first replaces the examples' messi, the second henderson, the third lineker.
    #[arg(long, value_name = "NAME:PASSWORD:FULL NAME")]
    user: Vec<String>,
    /// Read the examples from this specification instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("progjar-chat conform: error: {message}");
    ExitCode::from(EXIT_RUNNER)
}

/// What is under test, for messages and for the rerun command.
#[derive(Debug, Clone)]
enum Under {
    Connect { addr_arg: String, addr: Option<SocketAddr> },
    Spawn { command: String, port: u16 },
    Client { argv: Vec<String>, port: u16 },
}

/// Everything needed to write the command that reruns one case.
struct Invocation<'a> {
    under: &'a Under,
    common: &'a CommonArgs,
    startup: Option<Duration>,
}

impl Invocation<'_> {
    fn rerun(&self, id: &str) -> String {
        let mut parts: Vec<String> = vec!["progjar-chat".into(), "conform".into()];
        match self.under {
            Under::Connect { addr_arg, .. } => {
                parts.extend(["server".into(), "--connect".into(), shell_quote(addr_arg)]);
            }
            Under::Spawn { command, port } => {
                parts.extend(["server".into(), "--spawn".into(), shell_quote(command)]);
                if !command.contains("{port}") && *port != 8889 {
                    parts.extend(["--port".into(), port.to_string()]);
                }
                if let Some(startup) = self.startup.filter(|s| *s != Duration::from_secs(10)) {
                    parts.extend(["--startup-timeout".into(), format_secs(startup)]);
                }
            }
            Under::Client { port, .. } => {
                parts.push("client".into());
                if *port != 8889 {
                    parts.extend(["--port".into(), port.to_string()]);
                }
            }
        }
        if self.common.timeout != Duration::from_secs(2) {
            parts.extend(["--timeout".into(), format_secs(self.common.timeout)]);
        }
        if self.common.strict {
            parts.push("--strict".into());
        }
        if self.common.accept_wording {
            parts.push("--accept-wording".into());
        }
        if let Some(spec) = &self.common.spec {
            parts.extend(["--spec".into(), shell_quote(&spec.display().to_string())]);
        }
        if let Some(users) = &self.common.users {
            parts.extend(["--users".into(), shell_quote(&users.display().to_string())]);
        }
        for user in &self.common.user {
            parts.extend(["--user".into(), shell_quote(user)]);
        }
        parts.extend(["--case".into(), shell_quote(id)]);
        if let Under::Client { argv, .. } = self.under {
            parts.push("--".into());
            parts.extend(argv.iter().map(|a| shell_quote(a)));
        }
        parts.join(" ")
    }
}

/// Runs `progjar-chat conform`.
pub fn main(args: ConformArgs) -> ExitCode {
    let Some(target) = args.target else {
        if !args.list {
            return fail(
                "say what to test: `progjar-chat conform server …` or `progjar-chat conform client …` (see --help), or list the cases with `progjar-chat conform --list`",
            );
        }
        return match load_spec(None) {
            Ok((spec, name)) => {
                let all: Vec<&Example> = spec.examples.iter().collect();
                print_list(&spec, &all, &name);
                ExitCode::SUCCESS
            }
            Err(message) => fail(message),
        };
    };
    let (kind, common, under, startup) = match target {
        TargetArgs::Server(a) => {
            let under = match (&a.connect, &a.spawn) {
                (Some(addr), None) => Some(Under::Connect { addr_arg: addr.clone(), addr: None }),
                (None, Some(command)) => {
                    Some(Under::Spawn { command: command.clone(), port: a.port })
                }
                _ => None,
            };
            (Kind::Server, a.common, under, Some(a.startup_timeout))
        }
        TargetArgs::Client(a) => {
            let under = (!a.command.is_empty())
                .then(|| Under::Client { argv: split_one_word(&a.command), port: a.port });
            (Kind::Client, a.common, under, None)
        }
    };
    let (spec, spec_name) = match load_spec(common.spec.as_deref()) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    let patterns = case_patterns(&common.cases);
    let level = common.level.map(|l| match l {
        LevelArg::Must => Level::Must,
        LevelArg::Should => Level::Should,
    });
    let selected = select::select(spec.examples_of(kind), &patterns, level);
    if selected.is_empty() {
        return fail(format!(
            "no {} case matches{}; see `progjar-chat conform {} --list`",
            kind.as_str(),
            if patterns.is_empty() {
                String::new()
            } else {
                format!(" {}", common.cases.join(", "))
            },
            kind.as_str()
        ));
    }
    if common.list {
        print_list(&spec, &selected, &spec_name);
        return ExitCode::SUCCESS;
    }
    if common.dump_cases {
        say!("{}", serde_json::to_string_pretty(&dump_cases(&spec, &selected)).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let Some(mut under) = under else {
        return fail(match kind {
            Kind::Server => "say which server to test: --connect HOST:PORT or --spawn 'CMD'",
            Kind::Client => "say which client to test, after `--`: progjar-chat conform client -- python3 client.py",
        });
    };
    if let Err(message) = check_report_paths(&[&common.json, &common.junit]) {
        return fail(message);
    }
    let dash = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if dash(&common.json) && dash(&common.junit) {
        return fail("--json - and --junit - would both write to standard output: give one a file");
    }
    if dash(&common.json) || dash(&common.junit) {
        TEXT_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let users = match (&common.users, common.user.is_empty()) {
        (Some(path), _) => UserMap::from_file(path),
        (None, false) => UserMap::from_flags(&common.user),
        (None, true) => Ok(UserMap::builtin()),
    };
    let users = match users {
        Ok(users) => users,
        Err(error) => return fail(error),
    };
    // The examples with the class's users; a case that cannot run with
    // them says why instead.
    let mut not_run: Vec<CaseResult> = Vec::new();
    let mapped: Vec<Example> = selected
        .iter()
        .filter_map(|e| match users.apply(e) {
            Ok(mapped) => Some(mapped),
            Err(why) => {
                let message = format!("cannot run with the given users: {why}");
                not_run.push(CaseResult::not_run(e, Verdict::Error, "(users)", message));
                None
            }
        })
        .collect();
    let selected: Vec<&Example> = mapped.iter().collect();
    if selected.is_empty() {
        return fail("no selected case can run with the given users (see --user / --users)");
    }
    let expectations = match &common.expect {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Expectations::parse(&t))
        {
            Ok(e) => e,
            Err(message) => return fail(format!("{}: {message}", path.display())),
        },
        None => Expectations::default(),
    };
    let all_ids: Vec<&str> = spec.examples.iter().map(|e| e.id.as_str()).collect();
    for unused in expectations.unused(&all_ids) {
        eprintln!(
            "progjar-chat conform: warning: {} line {}: `{}` matches no case",
            common.expect.as_deref().unwrap_or(Path::new("")).display(),
            unused.line,
            unused.pattern
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    let options = Options {
        timeout: common.timeout,
        startup: startup.unwrap_or(Duration::from_secs(10)),
        users: users.clone(),
    };
    let ctx = Context::from_spec(&spec);
    let policy = Policy { strict: common.strict, accept_wording: common.accept_wording };
    let total = selected.len();
    // The results so far: what an interrupted run reports.
    let mut done: Vec<CaseResult> = Vec::new();
    let mut history = run::History::default();
    // Whatever ends the run (a panic unwinding included), no process group
    // it started outlives it.
    let _groups = process::GroupsGuard;
    let bar = live_progress();
    let ended = runtime.block_on(async {
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(error) => return Ended::Stopped(format!("cannot watch for Ctrl-C: {error}")),
        };
        let work = async {
            let target = preflight(&mut under).await?;
            // The target itself, once, before the cases: a server that
            // cannot start, a client that ends at once, stop the run here.
            let prepared = match &target {
                Target::Server(t) => Some(run::preflight_server(t, &options).await?),
                Target::Client(t) => {
                    run::preflight_client(selected[0], t, &options, &ctx).await?;
                    None
                }
            };
            print_header(&under, total, &spec_name, &common);
            if let Some(prepared) = &prepared {
                history = prepared.history.clone();
                print_history(&history);
            }
            let style =
                Style { color: text_is_terminal() && std::env::var_os("NO_COLOR").is_none() };
            let mut progress = |p: Progress<'_>| match p {
                Progress::Start { example, index, total } => {
                    bar.set_message(format!("[{:>2}/{total}] {} …", index + 1, example.id));
                }
                Progress::Done { result, .. } => {
                    let one = [result.clone()];
                    let g = grade::grade_with(&one, policy, &expectations);
                    bar.suspend(|| say!("{}", report::case_line(&g[0], style)));
                    done.push(result.clone());
                }
            };
            match (&target, prepared) {
                (Target::Server(t), Some(prepared)) => {
                    run::run_prepared_server_cases(
                        &selected,
                        t,
                        &prepared,
                        &options,
                        &ctx,
                        &mut progress,
                    )
                    .await;
                }
                (Target::Server(t), None) => {
                    run::run_server_cases(&selected, t, &options, &ctx, &mut progress).await;
                }
                (Target::Client(t), _) => {
                    run::run_client_cases(&selected, t, &options, &ctx, &mut progress).await;
                }
            }
            Ok::<(), String>(())
        };
        tokio::select! {
            biased;
            signal = signals.recv() => Ended::Interrupted(signal),
            result = CatchUnwind(Box::pin(work)) => match result {
                Ok(Ok(())) => Ended::Finished,
                Ok(Err(message)) => Ended::Stopped(message),
                Err(panic) => Ended::Crashed(panic),
            },
        }
    });
    bar.finish_and_clear();
    // The abandoned case's tasks go with the runtime, its processes here.
    runtime.shutdown_timeout(Duration::from_millis(200));
    process::kill_all_groups();
    let incomplete = match ended {
        Ended::Finished => None,
        Ended::Stopped(message) => return fail(message),
        Ended::Interrupted((name, number)) => {
            Some(Incomplete { why: name.to_owned(), signal: Some(name), code: 128 + number })
        }
        Ended::Crashed(panic) => {
            eprintln!("progjar-chat conform: error: the runner failed: {panic}");
            Some(Incomplete {
                why: format!("the runner failed: {panic}"),
                signal: None,
                code: EXIT_RUNNER,
            })
        }
    };
    let mut results = done;
    results.extend(not_run);
    results.sort_by_key(|r| r.spec_line);
    let style = Style { color: text_is_terminal() && std::env::var_os("NO_COLOR").is_none() };
    let graded = grade::grade_with(&results, policy, &expectations);
    let invocation = Invocation { under: &under, common: &common, startup };
    if !graded.is_empty() {
        say!();
        say_part!("{}", summary::rules_section(&graded, style));
        if !print_details(&graded, &spec, &invocation, common.verbose) {
            say!();
        }
        let mut summary = summary::summary(&graded, style);
        if let Some(incomplete) = &incomplete {
            // The result of the cases that ran, not of the run.
            summary = summary.replace("Result: ", "Result so far: ").replace(
                &format!("(exit code {}", grade::exit_code(&graded)),
                &format!("(exit code {}", incomplete.code),
            );
        }
        say_part!("{summary}");
    }
    let code = incomplete.as_ref().map_or_else(|| grade::exit_code(&graded), |i| i.code);
    if let Some(incomplete) = &incomplete {
        say!(
            "Run interrupted after {} of {total} cases ({}): the result covers those only; exit code {code}.",
            results.len(),
            incomplete.why
        );
    }
    let rerun = |id: &str| invocation.rerun(id);
    if let Some(path) = &common.json {
        let mut header = json!({
            "tool": "progjar-chat conform",
            "version": env!("CARGO_PKG_VERSION"),
            "spec": spec_name,
            "target": kind.as_str(),
            "under_test": describe_under(&under),
            "strict": common.strict,
            "accept_wording": common.accept_wording,
            "timeout_ms": common.timeout.as_millis() as u64,
            "incomplete": incomplete.is_some(),
        });
        if let Some(incomplete) = &incomplete {
            header["interrupted_by"] = json!(incomplete.signal);
            header["why_incomplete"] = json!(incomplete.why);
            header["cases_run"] = json!(results.len());
            header["cases_selected"] = json!(total);
        }
        if !history.is_empty() {
            header["history"] = json!(history.describe());
        }
        let mut value = export::json_report(&graded, &spec, header, &rerun);
        value["summary"]["exit_code"] = json!(code);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
        if let Err(error) = write_report(path, &text) {
            return fail(format!("cannot write {}: {error}", path.display()));
        }
    }
    if let Some(path) = &common.junit {
        let mut xml =
            export::junit_report(&graded, &spec, &format!("conform {}", kind.as_str()), &rerun);
        if let Some(incomplete) = &incomplete {
            xml = mark_incomplete(&xml, incomplete, results.len(), total);
        }
        if let Err(error) = write_report(path, &xml) {
            return fail(format!("cannot write {}: {error}", path.display()));
        }
    }
    ExitCode::from(code)
}

/// Whether the text for people goes to standard error: a report written
/// to `-` takes standard output, so that it can be piped.
static TEXT_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn text_to_stderr() -> bool {
    TEXT_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the text for people goes to a terminal (colours, live progress).
fn text_is_terminal() -> bool {
    if text_to_stderr() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    }
}

/// The live line that says which case runs, on a terminal only.
fn live_progress() -> indicatif::ProgressBar {
    if !text_is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let target = if text_to_stderr() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::stdout()
    };
    let bar = indicatif::ProgressBar::with_draw_target(None, target);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

/// Writes a report to its file, or to standard output for `-`.
fn write_report(path: &Path, text: &str) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    } else {
        std::fs::write(path, text)
    }
}

/// How the run ended.
enum Ended {
    /// Every selected case ran.
    Finished,
    /// Before the first case: the target cannot be tested (exit 2).
    Stopped(String),
    /// SIGINT, SIGTERM or SIGHUP: its name and number.
    Interrupted((&'static str, u8)),
    /// The runner panicked: the message.
    Crashed(String),
}

/// A run that ended before its last case.
struct Incomplete {
    /// `SIGINT`, or what failed.
    why: String,
    signal: Option<&'static str>,
    /// The exit code: 128 + the signal's number, or 2.
    code: u8,
}

/// The signals that end a run: SIGINT (Ctrl-C), SIGTERM, SIGHUP.
struct Signals {
    #[cfg(unix)]
    all: Vec<(tokio::signal::unix::Signal, &'static str, u8)>,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                all: vec![
                    (signal(SignalKind::interrupt())?, "SIGINT", 2),
                    (signal(SignalKind::terminate())?, "SIGTERM", 15),
                    (signal(SignalKind::hangup())?, "SIGHUP", 1),
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal: its name and number.
    async fn recv(&mut self) -> (&'static str, u8) {
        #[cfg(unix)]
        {
            std::future::poll_fn(|cx| {
                for (signal, name, number) in &mut self.all {
                    if signal.poll_recv(cx).is_ready() {
                        return std::task::Poll::Ready((*name, *number));
                    }
                }
                std::task::Poll::Pending
            })
            .await
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("SIGINT", 2)
        }
    }
}

/// A future whose panic is its output, as `Err(message)`.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()))),
        }
    }
}

/// The `--junit` report of a run that did not finish: properties on its
/// test suite say so.
fn mark_incomplete(xml: &str, incomplete: &Incomplete, run: usize, total: usize) -> String {
    let Some(start) = xml.find("  <testsuite ") else { return xml.to_owned() };
    let Some(end) = xml[start..].find('\n').map(|i| start + i + 1) else {
        return xml.to_owned();
    };
    let properties = format!(
        "    <properties>\n      <property name=\"incomplete\" value=\"true\"/>\n      <property name=\"why_incomplete\" value=\"{}\"/>\n      <property name=\"cases_run\" value=\"{run}\"/>\n      <property name=\"cases_selected\" value=\"{total}\"/>\n    </properties>\n",
        export::xml_escape(&incomplete.why)
    );
    format!("{}{properties}{}", &xml[..end], &xml[end..])
}

/// The state a `--connect` server had from before the run, once, at the
/// top.
fn print_history(history: &run::History) {
    if history.is_empty() {
        return;
    }
    say!(
        "The server had state from before the run: {}. For a clean run, restart it, or use --spawn.",
        history.describe().join("; ")
    );
    say!();
}

enum Target {
    Server(ServerTarget),
    Client(ClientTarget),
}

/// Checks that there is something to test before running 40 cases
/// against nothing.
async fn preflight(under: &mut Under) -> Result<Target, String> {
    match under {
        Under::Connect { addr_arg, addr } => {
            let resolved = tokio::net::lookup_host(addr_arg.as_str())
                .await
                .map_err(|e| format!("cannot resolve `{addr_arg}` (expected HOST:PORT, e.g. 127.0.0.1:8889): {e}"))?
                .next()
                .ok_or_else(|| format!("`{addr_arg}` resolves to no address"))?;
            match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(resolved)).await {
                Ok(Ok(stream)) => drop(stream),
                Ok(Err(error)) => {
                    return Err(format!("nothing is listening at {addr_arg} ({error}); start the server first, or let the runner start it with --spawn"))
                }
                Err(_) => return Err(format!("{addr_arg} does not accept connections (no answer within 5 s)")),
            }
            *addr = Some(resolved);
            Ok(Target::Server(ServerTarget::Connect(resolved)))
        }
        Under::Spawn { command, port } => {
            if command.trim().is_empty() {
                return Err("--spawn needs a command".into());
            }
            if !command.contains("{port}")
                && process::accepts(SocketAddr::from(([127, 0, 0, 1], *port))).await
            {
                return Err(format!(
                    "something already listens on port {port}: stop it first (the runner starts the server itself), or put {{port}} in the command"
                ));
            }
            Ok(Target::Server(ServerTarget::Spawn { command: command.clone(), port: *port }))
        }
        Under::Client { argv, port } => {
            if !program_exists(&argv[0]) {
                return Err(format!("cannot find the program `{}`", argv[0]));
            }
            let uses_placeholder = argv.iter().any(|a| a.contains("{port}"));
            if !uses_placeholder {
                if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", *port)) {
                    return Err(format!(
                        "cannot listen on port {port} for the client ({error}); is a server running there? Stop it, or use --port / {{port}}"
                    ));
                }
            }
            Ok(Target::Client(ClientTarget { argv: argv.clone(), port: *port }))
        }
    }
}

/// A client command given as one quoted word with spaces (`-- 'python3
/// client.py'`) is split into its words, as a shell would, with a note:
/// there is no program called `python3 client.py`.
fn split_one_word(argv: &[String]) -> Vec<String> {
    match argv {
        [only] if only.contains(char::is_whitespace) && !program_exists(only) => {
            let words: Vec<String> = only.split_whitespace().map(str::to_owned).collect();
            eprintln!(
                "progjar-chat conform: note: running `{only}` as the words {}: put each word after `--` on its own, unquoted",
                words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(" ")
            );
            words
        }
        _ => argv.to_vec(),
    }
}

/// Checks, before any case runs, that each report file can be written:
/// a typo in a path costs nothing but this message.
fn check_report_paths(paths: &[&Option<PathBuf>]) -> Result<(), String> {
    for path in paths.iter().filter_map(|p| p.as_ref()) {
        if path.as_os_str() == "-" {
            continue;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Whether `program` names a file, directly or on the `PATH`.
fn program_exists(program: &str) -> bool {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn load_spec(path: Option<&Path>) -> Result<(Spec, String), String> {
    let (text, name) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (spec::PROTOCOL_MD.to_owned(), PROTOCOL_PATH.to_owned()),
    };
    let spec = spec::parse(&text).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {name} {e}")).collect();
        format!("the specification has errors:\n{}", list.join("\n"))
    })?;
    Ok((spec, name))
}

fn describe_under(under: &Under) -> String {
    match under {
        Under::Connect { addr_arg, addr } => match addr {
            Some(addr) if addr.to_string() != *addr_arg => {
                format!("the server at {addr_arg} ({addr})")
            }
            _ => format!("the server at {addr_arg}"),
        },
        Under::Spawn { command, port } => {
            if command.contains("{port}") {
                format!("the server started by `{command}` ({{port}}: a free port)")
            } else {
                format!("the server started by `{command}` (port {port})")
            }
        }
        Under::Client { argv, port } => {
            let line = argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
            if argv.iter().any(|a| a.contains("{port}")) {
                format!("the client `{line}` ({{port}}: a free port)")
            } else {
                format!("the client `{line}` (reference server on port {port})")
            }
        }
    }
}

/// The test users, for the header: the class's if given.
fn users_named(common: &CommonArgs) -> String {
    let users = match (&common.users, common.user.is_empty()) {
        (Some(path), _) => UserMap::from_file(path).unwrap_or_default(),
        (None, false) => UserMap::from_flags(&common.user).unwrap_or_default(),
        (None, true) => UserMap::builtin(),
    };
    users.users().iter().take(3).map(|u| u.username.as_str()).collect::<Vec<_>>().join(", ")
}

fn print_header(under: &Under, count: usize, spec_name: &str, common: &CommonArgs) {
    say!(
        "Testing {} against {count} case(s) of {spec_name}; timeout {} s per read{}.",
        describe_under(under),
        format_secs(common.timeout),
        match (common.strict, common.accept_wording) {
            (true, true) => "; strict; wording accepted",
            (true, false) => "; strict",
            (false, true) => "; wording accepted",
            (false, false) => "",
        }
    );
    match under {
        Under::Connect { .. } => say!(
            "Before each case the runner logs in {}, empties their inboxes and logs them out; after it, it logs out the sessions the case opened (both marked `setup`). Sessions opened by others show in `list`: use a server nobody else is using, or --spawn.",
            users_named(common)
        ),
        Under::Spawn { .. } => say!("Each case starts the server afresh and kills it (and everything it started) afterwards."),
        Under::Client { .. } => say!(
            "Each case starts the client afresh against a fresh reference server, types lines into it and reads what it prints."
        ),
    }
    say!();
}

/// Prints the details of the cases that did not pass (all with
/// `--verbose`); whether there were any.
fn print_details(
    graded: &[Graded<'_>],
    spec: &Spec,
    invocation: &Invocation<'_>,
    verbose: bool,
) -> bool {
    let shown: Vec<&Graded<'_>> = graded
        .iter()
        .filter(|g| verbose || g.verdict != Verdict::Ok || g.result.verdict != Verdict::Ok)
        .collect();
    if shown.is_empty() {
        return false;
    }
    say!();
    say!("Details");
    say!();
    // The cases a missing command kept from running: one line per command.
    let triage = triage::triage(graded);
    for missing in &triage.missing {
        say!("{}", report::missing_detail(missing));
    }
    if !triage.missing.is_empty() {
        say!();
    }
    // NON-STRICT cases in short; of the cases BLOCKED by one rule, or
    // failing for one shared cause, the first in full and the others in
    // short: one story told once.
    // Per blocker: the case told in full, its headline, the others that say the same.
    let mut told_blocker: Vec<(&str, &str, String, Vec<&str>)> = Vec::new();
    // Each shared cause is told in full by its first MUST case, or its first.
    let teller: Vec<(cause::Cause, &str)> = triage
        .causes
        .iter()
        .map(|c| {
            let first = c.cases.iter().find(|g| g.level == Level::Must).unwrap_or(&c.cases[0]);
            (c.cause, first.result.id.as_str())
        })
        .collect();
    let mut brief = false;
    let mut shortened = false;
    // Cases whose every finding has a cause another case tells: named once.
    let mut same_cause: Vec<(&str, cause::Cause, Vec<&str>)> = Vec::new();
    for g in shown.into_iter().filter(|g| g.verdict != Verdict::NotImplemented) {
        let short = if verbose {
            None
        } else if g.verdict == Verdict::NonStrict {
            Some(None)
        } else if g.verdict == Verdict::Blocked {
            let blocker = g.result.blocked_by.as_deref().unwrap_or("?");
            let headline = g.result.headline();
            match told_blocker.iter_mut().find(|(b, ..)| *b == blocker) {
                Some((_, _, told, same)) if *told == headline => {
                    same.push(&g.result.id);
                    continue;
                }
                Some(_) => Some(None),
                None => {
                    told_blocker.push((blocker, &g.result.id, headline, Vec::new()));
                    None
                }
            }
        } else {
            let causes: Vec<&(cause::Cause, &str)> = teller
                .iter()
                .filter(|(c, _)| {
                    triage.causes.iter().any(|s| {
                        s.cause == *c && s.cases.iter().any(|x| x.result.id == g.result.id)
                    })
                })
                .collect();
            let findings = || g.result.steps.iter().flat_map(|s| &s.check.findings);
            match causes.first() {
                Some((c, first)) if causes.iter().all(|(_, t)| *t != g.result.id) => {
                    if findings().all(|f| f.cause.is_some()) {
                        match same_cause.iter_mut().find(|(t, x, _)| t == first && x == c) {
                            Some((_, _, ids)) => ids.push(&g.result.id),
                            None => same_cause.push((first, *c, vec![&g.result.id])),
                        }
                        continue;
                    }
                    Some(Some(format!("(the same cause as {first}: {})", c.id())))
                }
                _ => None,
            }
        };
        if let Some(note) = short {
            say!("{}", report::case_brief(g, note.as_deref()));
            brief = true;
            shortened = true;
            continue;
        }
        if std::mem::take(&mut brief) {
            say!();
        }
        let full = verbose || g.verdict >= Verdict::Failed;
        say!("{}", report::case_detail(g, spec, &invocation.rerun(&g.result.id), full));
    }
    if brief {
        say!();
    }
    let mut grouped = false;
    for (blocker, first, _, ids) in told_blocker.iter().filter(|(.., ids)| !ids.is_empty()) {
        say!("{}", report::same_blocker_line(blocker, first, ids));
        grouped = true;
    }
    for (first, cause, ids) in &same_cause {
        say!("{}", report::same_cause_line(first, *cause, ids));
        grouped = true;
    }
    if grouped {
        shortened = true;
        say!();
    }
    if shortened {
        say!("(Cases marked in short: -v shows each case in full, with its diff and transcript.)");
        say!();
    }
    true
}

fn print_list(spec: &Spec, selected: &[&Example], spec_name: &str) {
    for e in selected {
        let rule = spec.rule(&e.rule).map(|r| r.text.as_str()).unwrap_or("");
        let rule: String = if rule.chars().count() > 70 {
            format!("{}…", rule.chars().take(69).collect::<String>())
        } else {
            rule.to_owned()
        };
        say!("{:<11} {:<6}  {spec_name}:{:<4} {rule}", e.id, e.level.as_str(), e.line);
    }
    say!("{} case(s)", selected.len());
}

fn dump_cases(spec: &Spec, selected: &[&Example]) -> serde_json::Value {
    serde_json::Value::Array(
        selected
            .iter()
            .map(|e| {
                let rule = spec.rule(&e.rule);
                json!({
                    "id": e.id,
                    "rule": e.rule,
                    "level": e.level,
                    "kind": e.kind.as_str(),
                    "rule_level": rule.map(|r| r.level),
                    "rule_source": rule.map(|r| r.source.clone()),
                    "rule_text": rule.map(|r| r.text.clone()),
                    "spec_line": e.line,
                    "steps": e.steps.iter().map(|s| json!({"line": s.line, "step": s.source})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
