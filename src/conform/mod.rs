//! The conformance runner: the spec's examples against anyone's server or
//! client.
//!
//! ```text
//! progjar-chat conform server --connect HOST:PORT      # a server that is running
//! progjar-chat conform server --spawn 'CMD … {port}'   # started afresh for every case
//! progjar-chat conform client -- CMD ARG… [{port}]     # a client program, typed into
//! progjar-chat conform class MANIFEST                  # every submission of a class
//! progjar-chat conform explore --spawn 'CMD … {port}'  # random sessions, shrunk to examples
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
//! | `args` | the command line: arguments, what is under test, the rerun command |
//! | `console` | the text for people as the run goes, and where it goes |
//! | `interrupt` | a run ended by a signal or a panic, reports marked incomplete |
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
//! | `class` | `conform class`: a whole class at once, one matrix of submissions x rules, its reports |
//! | `explore` | `conform explore`: random sessions against the implementation and the reference, deviations shrunk to examples (its own map) |
//!
//! The examples come from [`crate::spec`]; the specification is compiled in,
//! so the runner needs nothing but itself (`--spec FILE` reads another).

mod args;
pub(crate) mod cause;
mod class;
mod console;
pub(crate) mod diagnose;
pub(crate) mod diff;
pub(crate) mod endpoint;
mod explore;
pub(crate) mod export;
pub(crate) mod form;
pub(crate) mod framing;
pub mod grade;
mod interrupt;
pub(crate) mod layout;
pub(crate) mod lines;
pub mod matcher;
pub mod outcome;
pub(crate) mod ports;
pub(crate) mod process;
pub mod report;
pub mod run;
#[cfg(target_os = "linux")]
pub(crate) mod sandbox;
pub mod select;
pub(crate) mod summary;
pub(crate) mod transcript;
pub(crate) mod triage;
pub(crate) mod users;
pub(crate) mod verdict;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

pub(crate) use self::args::ConformArgs;
use self::args::*;
use self::console::*;
use self::grade::Policy;
use self::interrupt::*;
use self::matcher::Context;
use self::outcome::{CaseResult, Progress};
use self::report::Style;
use self::run::{ClientTarget, Options, ServerTarget};
use self::select::{case_patterns, Expectations};
use self::users::UserMap;
use crate::spec::{Example, Kind, Level};

/// Exit code: the runner itself could not work.
pub(crate) const EXIT_RUNNER: u8 = 2;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("progjar-chat conform: error: {message}");
    ExitCode::from(EXIT_RUNNER)
}

/// Runs `progjar-chat conform`.
pub(crate) fn main(args: ConformArgs) -> ExitCode {
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
            (Kind::Server, a.common, a.server.under(), Some(a.server.startup_timeout))
        }
        TargetArgs::Class(a) => return class::main(a),
        TargetArgs::Explore(a) => return explore::main(a),
        TargetArgs::Client(a) => {
            let under = (!a.command.is_empty())
                .then(|| Under::Client { argv: split_one_word(&a.command), port: a.port });
            (Kind::Client, a.common, under, None)
        }
    };
    let (mut spec, spec_name) = match load_spec(common.spec.as_deref()) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    let spec_name = match &common.examples {
        Some(path) => match load_examples(path) {
            Ok(examples) => {
                spec.examples = examples;
                path.display().to_string()
            }
            Err(message) => return fail(message),
        },
        None => spec_name,
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
    let (mapped, not_run) = users.apply_all(selected.iter().copied());
    let selected: Vec<&Example> = mapped.iter().collect();
    if selected.is_empty() {
        return fail("no selected case can run with the given users (see --user / --users)");
    }
    let expectations = match &common.expect {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Expectations::parse(&t).map_err(|e| e.to_string()))
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
        slots: common.jobs.map_or_else(run::Slots::for_this_machine, |n| run::Slots::new(n.into())),
        dir: None,
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
    let ended = runtime.block_on(interrupt::watch(async {
        let target = preflight(&mut under).await?;
        // The target itself, once, before the cases: a server that
        // cannot start, a client that ends at once, stop the run here.
        let mut first_prompt = run::FirstPrompt::unknown(&options);
        let prepared = match &target {
            Target::Server(t) => Some(run::preflight_server(t, &options).await?),
            Target::Client(t) => {
                first_prompt = run::preflight_client(selected[0], t, &options, &ctx).await?;
                None
            }
        };
        print_header(&under, total, &spec_name, &common);
        if let Some(prepared) = &prepared {
            history = prepared.history.clone();
            print_history(&history);
        }
        let style = Style { color: text_is_terminal() && std::env::var_os("NO_COLOR").is_none() };
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
                run::run_client_cases(&selected, t, first_prompt, &options, &ctx, &mut progress)
                    .await;
            }
        }
        Ok::<(), String>(())
    }));
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
                && !endpoint::own_networks()
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
            if !uses_placeholder && !endpoint::own_networks() {
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
