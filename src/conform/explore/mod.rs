//! `progjar-chat conform explore`: what the spec's fixed examples miss.
//!
//! Random sessions, generated from the protocol's grammar with a seed,
//! run against the implementation and against the reference server in
//! this process; each deviation shrunk to the smallest session that still
//! shows it and written as a spec example that `conform server --examples`
//! replays. The same deviation (same rules, same kind) is one finding with
//! a count.
//!
//! | module | what it is |
//! |---|---|
//! | `session` | pure data: steps over connections, requests by their fields, how they are written |
//! | `generate` | pure: sessions from a seeded generator |
//! | `coverage` | pure: the rules a request touched; how often each rule was reached |
//! | `example` | pure: a session and the reference's replies as a spec example |
//! | `compare` | pure: the implementation's run against the reference's replies; the signature |
//! | `shrink` | pure: the smallest session that keeps a deviation |
//! | `finding` | pure: a finding as printed, as an example file, as JSON |
//! | `reference` | the reference server's replies to a session |
//!
//! This file is the I/O: the loop, the implementation's runs (through the
//! runner's own [`run::run_server_case`]), the output.

mod compare;
mod coverage;
mod example;
mod finding;
mod generate;
mod reference;
mod session;
mod shrink;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use self::compare::Deviation;
use self::coverage::{Coverage, Touched};
use self::finding::Finding;
use self::generate::Users;
use self::session::Session;
use super::args::{check_report_paths, load_spec, ExploreArgs, Under};
use super::cause::Cause;
use super::console::{describe_under, live_progress, say, write_report, TEXT_TO_STDERR};
use super::interrupt::{self, Ended};
use super::matcher::Context;
use super::process::{self, shell_quote};
use super::run::{self, Options, ServerTarget};
use super::users::UserMap;
use super::{fail, preflight, Target, EXIT_RUNNER};
use crate::duration::format_secs;
use crate::spec::{self, Level, Spec};

/// The longest shrinking of one finding: a server that hangs costs a
/// timeout on every candidate that still shows it.
const SHRINK_TIME: Duration = Duration::from_secs(40);

/// What a session's run showed.
struct Ran {
    replies: Vec<Vec<Option<Value>>>,
    touched: Vec<Vec<Touched>>,
    deviation: Option<Deviation>,
}

/// What the exploration found so far: what an interrupted run reports.
#[derive(Default)]
struct Found {
    findings: Vec<Finding>,
    sessions: u64,
    requests: usize,
    coverage: Coverage,
    /// Sessions the reference itself left a request of unanswered: not
    /// compared (there is nothing to compare with).
    unusable: u64,
    /// Deviations that did not show again when their session was rerun.
    not_again: u64,
}

/// Everything a session's run needs, shared by parallel runs.
struct Env {
    target: ServerTarget,
    options: Options,
    ctx: Context,
}

/// Runs `progjar-chat conform explore`.
pub(super) fn main(args: ExploreArgs) -> ExitCode {
    let (spec, _) = match load_spec(None) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    let Some(mut under) = args.server.under() else {
        return fail("say which server to explore: --connect HOST:PORT or --spawn 'CMD'");
    };
    if let Err(message) = check_report_paths(&[&args.json]) {
        return fail(message);
    }
    if args.json.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        TEXT_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(dir) = &args.out {
        if let Err(error) = std::fs::create_dir_all(dir) {
            return fail(format!("cannot create {}: {error}", dir.display()));
        }
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let parallel = matches!(&under, Under::Spawn { command, .. } if command.contains("{port}"));
    let jobs = match (args.jobs, parallel) {
        (Some(n), true) => n,
        (None, true) => 2,
        (Some(n), false) if n > 1 => {
            eprintln!("progjar-chat conform: note: one session at a time: parallel sessions need {{port}} in --spawn");
            1
        }
        _ => 1,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    let options = Options {
        timeout: args.timeout,
        startup: args.server.startup_timeout,
        users: UserMap::builtin(),
        ..Options::default()
    };
    let users = Users(
        options
            .users
            .users()
            .iter()
            .take(3)
            .map(|u| (u.username.clone(), u.password.clone()))
            .collect(),
    );
    let ctx = Context::from_spec(&spec);
    let mut found = Found::default();
    let start = Instant::now();
    let _groups = process::GroupsGuard;
    let bar = live_progress();
    let ended = runtime.block_on(interrupt::watch(async {
        let Target::Server(target) = preflight(&mut under).await? else {
            return Err("not a server".to_owned());
        };
        run::preflight_server(&target, &options).await?;
        say!(
            "Exploring {} with seed {seed}: {}, {} at a time (rerun with --seed {seed}).",
            describe_under(&under),
            match args.sessions {
                Some(n) => format!("{n} sessions within {} s", format_secs(args.budget)),
                None => format!("for {} s", format_secs(args.budget)),
            },
            jobs
        );
        let env = Arc::new(Env { target, options: options.clone(), ctx: ctx.clone() });
        explore(&args, seed, jobs, &users, &env, &mut found, start, &bar, &spec).await;
        Ok::<(), String>(())
    }));
    bar.finish_and_clear();
    runtime.shutdown_timeout(Duration::from_millis(200));
    process::kill_all_groups();
    let interrupted = match ended {
        Ended::Finished => None,
        Ended::Stopped(message) => return fail(message),
        Ended::Interrupted((name, number)) => Some((name.to_owned(), 128 + number)),
        Ended::Crashed(panic) => Some((format!("the runner failed: {panic}"), EXIT_RUNNER)),
    };
    report(&args, &spec, seed, &under, &found, start.elapsed(), interrupted)
}

/// The loop: sessions in batches of `jobs`, each batch's results taken in
/// the order of the sessions, so that the findings follow the seed.
#[allow(clippy::too_many_arguments)]
async fn explore(
    args: &ExploreArgs,
    seed: u64,
    jobs: u64,
    users: &Users,
    env: &Arc<Env>,
    found: &mut Found,
    start: Instant,
    bar: &indicatif::ProgressBar,
    spec: &Spec,
) {
    let mut index = 0u64;
    loop {
        let left = args.sessions.map_or(jobs, |n| n.saturating_sub(index).min(jobs));
        if left == 0 || start.elapsed() >= args.budget {
            break;
        }
        let mut batch = tokio::task::JoinSet::new();
        for i in index..index + left {
            let session = generate::session(seed, i, users);
            let env = Arc::clone(env);
            batch.spawn(async move {
                let ran = run_session(&session, &env).await;
                (i, session, ran)
            });
        }
        let mut results = batch.join_all().await;
        results.sort_by_key(|(i, _, _)| *i);
        index += left;
        for (i, session, ran) in results {
            found.sessions += 1;
            found.requests += session.requests();
            let Some(ran) = ran else {
                found.unusable += 1;
                continue;
            };
            found.coverage.add(&ran.touched);
            let Some(deviation) = ran.deviation else { continue };
            if let Some(known) = found.findings.iter_mut().find(|f| f.core == deviation.core) {
                known.count += 1;
                continue;
            }
            // A new one must show again: a deviation that depends on timing
            // (or on a machine too loaded to answer in time) is not a finding.
            let again = run_session(&session, env).await;
            if again.and_then(|r| r.deviation).is_none_or(|d| d.core != deviation.core) {
                found.not_again += 1;
                continue;
            }
            let finding = Finding {
                number: found.findings.len() + 1,
                core: deviation.core.clone(),
                count: 1,
                first_session: i,
                found_after: start.elapsed().as_secs_f64(),
                original_requests: session.requests(),
                session: session.clone(),
                replies: ran.replies,
                deviation,
                shrunk: false,
            };
            found.findings.push(finding);
            let number = found.findings.len();
            bar.set_message(format!("shrinking finding {number} …"));
            let core = found.findings[number - 1].core.clone();
            let shrunk =
                shrink_finding(session, &core, args.shrink_tries, jobs as usize, env).await;
            let finding = &mut found.findings[number - 1];
            if let Some((session, ran)) = shrunk {
                if let Some(deviation) = ran.deviation {
                    finding.session = session;
                    finding.replies = ran.replies;
                    finding.deviation = deviation;
                }
            }
            finding.shrunk = true;
            let text = finding.text(spec, seed);
            bar.suspend(|| say!("{text}"));
        }
        bar.set_message(format!(
            "{} sessions, {} finding{}, {:.0} s of {} s",
            found.sessions,
            found.findings.len(),
            if found.findings.len() == 1 { "" } else { "s" },
            start.elapsed().as_secs_f64(),
            format_secs(args.budget)
        ));
    }
}

/// Shrinks a finding's session, for at most [`SHRINK_TIME`]; the smallest
/// session and its run (rerun once, to have its replies and its
/// deviation).
async fn shrink_finding(
    session: Session,
    core: &compare::Signature,
    tries: usize,
    jobs: usize,
    env: &Arc<Env>,
) -> Option<(Session, Ran)> {
    let deadline = Instant::now() + SHRINK_TIME;
    let keeps = |candidates: Vec<Session>| {
        let mut runs = tokio::task::JoinSet::new();
        // Past the deadline, no candidate is run: the smallest so far stays.
        let late = Instant::now() >= deadline;
        let count = candidates.len();
        for (i, candidate) in candidates.into_iter().enumerate().filter(|_| !late) {
            let env = Arc::clone(env);
            let core = core.clone();
            runs.spawn(async move {
                let ran = run_session(&candidate, &env).await;
                (i, ran.and_then(|r| r.deviation).is_some_and(|d| d.core == core))
            });
        }
        async move {
            let mut keeps = runs.join_all().await;
            keeps.sort_by_key(|(i, _)| *i);
            let mut keeps: Vec<bool> = keeps.into_iter().map(|(_, k)| k).collect();
            keeps.resize(count, false);
            keeps
        }
    };
    let (small, _) = shrink::shrink(session, tries, jobs, keeps).await;
    let ran = run_session(&small, env).await?;
    ran.deviation.as_ref().is_some_and(|d| d.core == *core).then_some((small, ran))
}

/// Runs a session on the reference and on the implementation. `None` when
/// the reference left a request unanswered (nothing to compare with).
/// A deviation in a step of several requests is checked against the same
/// session with that step written one request at a time: if that one does
/// not deviate, the requests that came together are the mistake (TRANS-3);
/// if it does, what looked like merged pipelining is not.
async fn run_session(session: &Session, env: &Env) -> Option<Ran> {
    let mut ran = run_once(session, env).await?;
    if let Some(d) = ran.deviation.take() {
        let pipelined = session.steps.get(d.at.0).is_some_and(|s| s.requests.len() > 1);
        let content = d.core.rules.iter().any(|r| ["TRANS-6", "TRANS-7"].contains(r));
        // Merged requests get one answer for several, or a wrong one; a
        // close is something else.
        let closed = d.core.kind == "closed";
        let alone = if pipelined && !content && !closed {
            run_once(&session.unpipelined(d.at.0), env).await.map(|r| r.deviation.is_some())
        } else {
            None
        };
        ran.deviation = Some(match alone {
            Some(true) if d.core.kind == Cause::MergedPipelining.id() => {
                compare::not_merged(d, &ran.touched)
            }
            Some(false) => compare::merged(d),
            _ => d,
        });
    }
    Some(ran)
}

/// [`run_session`] without the check.
async fn run_once(session: &Session, env: &Env) -> Option<Ran> {
    let replies = reference::replies(session, &env.options.users).await.ok()?;
    if replies.iter().flatten().any(Option::is_none) {
        return None;
    }
    let touched = coverage::touched(session, &replies);
    let rendered = example::render(session, &replies, "EXPLORE-1.1", Level::Should);
    let example = match spec::parse(&rendered.text) {
        Ok(parsed) => parsed.examples.into_iter().next()?,
        Err(errors) => {
            debug_assert!(
                false,
                "a generated example does not parse: {errors:?}\n{}",
                rendered.text
            );
            return None;
        }
    };
    let result = run::run_server_case(&example, &env.target, &env.options, &env.ctx).await;
    let deviation = compare::deviation(&result, &rendered.origin, &touched);
    Some(Ran { replies, touched, deviation })
}

/// A seed from the system's randomness, for a run without `--seed`.
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return now.as_nanos() as u64;
    }
    u64::from_le_bytes(bytes) % 1_000_000
}

/// The end: the findings, the coverage, the files, the exit code.
fn report(
    args: &ExploreArgs,
    spec: &Spec,
    seed: u64,
    under: &Under,
    found: &Found,
    elapsed: Duration,
    interrupted: Option<(String, u8)>,
) -> ExitCode {
    let mut files: Vec<Option<PathBuf>> = Vec::new();
    for finding in &found.findings {
        let path = args.out.as_ref().map(|dir| dir.join(finding.file_name()));
        if let Some(path) = &path {
            if let Err(error) = std::fs::write(path, finding.file(spec, seed)) {
                eprintln!("progjar-chat conform: error: cannot write {}: {error}", path.display());
            }
        }
        files.push(path);
    }
    for finding in found.findings.iter().filter(|f| !f.shrunk) {
        // Found, but interrupted while it was being shrunk: as it was found.
        say!("{}", finding.text(spec, seed));
    }
    say!();
    say!("{}", found.coverage.render(spec));
    let replay = |path: &Path| {
        let mut command = format!(
            "progjar-chat conform server --examples {}",
            shell_quote(&path.display().to_string())
        );
        match under {
            Under::Connect { addr_arg, .. } => {
                command.push_str(&format!(" --connect {}", shell_quote(addr_arg)))
            }
            Under::Spawn { command: cmd, port } => {
                command.push_str(&format!(" --spawn {}", shell_quote(cmd)));
                if !cmd.contains("{port}") && *port != 8889 {
                    command.push_str(&format!(" --port {port}"));
                }
            }
            Under::Client { .. } => {}
        }
        command
    };
    if !found.findings.is_empty() {
        say!("Findings (seed {seed}):");
        for (finding, file) in found.findings.iter().zip(&files) {
            say!(
                "  {}. {} ({}), seen {} time{}, {} step{}",
                finding.number,
                finding.deviation.signature,
                finding.level(spec),
                finding.count,
                if finding.count == 1 { "" } else { "s" },
                finding.session.requests(),
                if finding.session.requests() == 1 { "" } else { "s" }
            );
            if let Some(file) = file {
                say!("     {}", replay(file));
            }
        }
        if args.out.is_none() {
            say!("  (--out DIR writes each as an example file that `conform server --examples FILE` replays)");
        }
    }
    let mut summary = format!(
        "Explored {} session{} ({} requests) in {:.1} s with seed {seed}: ",
        found.sessions,
        if found.sessions == 1 { "" } else { "s" },
        found.requests,
        elapsed.as_secs_f64()
    );
    summary.push_str(&match found.findings.len() {
        0 => "no deviation from the reference.".to_owned(),
        1 => "1 finding.".to_owned(),
        n => format!("{n} findings."),
    });
    if found.not_again > 0 {
        summary.push_str(&format!(
            " ({} deviation{} not seen again on a rerun, not counted: timing, or a loaded machine; a longer --timeout may help.)",
            found.not_again,
            if found.not_again == 1 { "" } else { "s" }
        ));
    }
    if let Some((why, _)) = &interrupted {
        summary = format!("Interrupted ({why}). So far: {summary}");
    }
    say!("{summary}");
    let code = match &interrupted {
        Some((_, code)) => *code,
        None => u8::from(!found.findings.is_empty()),
    };
    if let Some(path) = &args.json {
        let value = json!({
            "tool": "progjar-chat conform explore",
            "version": env!("CARGO_PKG_VERSION"),
            "under_test": describe_under(under),
            "seed": seed,
            "budget_s": args.budget.as_secs_f64(),
            "sessions": found.sessions,
            "requests": found.requests,
            "unusable_sessions": found.unusable,
            "not_seen_again": found.not_again,
            "elapsed_s": elapsed.as_secs_f64(),
            "incomplete": interrupted.is_some(),
            "interrupted_by": interrupted.as_ref().map(|(why, _)| why),
            "exit_code": code,
            "findings": found.findings.iter().zip(&files).map(|(f, file)| {
                let mut value = f.json(spec, file.as_ref().map(|p| p.display().to_string()));
                value["replay"] = json!(file.as_ref().map(|p| replay(p)));
                value
            }).collect::<Vec<_>>(),
            "coverage": found.coverage.json(spec),
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
        if let Err(error) = write_report(path, &text) {
            return fail(format!("cannot write {}: {error}", path.display()));
        }
    }
    ExitCode::from(code)
}
