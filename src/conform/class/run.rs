//! Running one submission of a class: its server and its client, each
//! checked first (a program that cannot start is reported as such, with
//! its diagnosis, and costs nothing more), then its cases, within the
//! class's slots and its own time budget. A submission never stalls the
//! others: all its waits are bounded, and what is left when its budget is
//! spent is reported as not run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conform::matcher::{Context, Verdict};
use crate::conform::outcome::{CaseResult, Progress};
use crate::conform::run::{self, ClientTarget, Options, ServerTarget, Slots};
use crate::conform::select::Expectations;
use crate::conform::users::UserMap;
use crate::duration::format_secs;
use crate::spec::{Example, Kind, Spec};

use super::manifest::Submission;

/// What every submission of a class shares.
pub(crate) struct Shared {
    pub spec: Spec,
    pub ctx: Context,
    pub slots: Slots,
    pub startup: Duration,
    /// The longest one part (a server, a client) of a submission may take.
    pub budget: Duration,
    /// Held by a part whose command has no `{port}` and that has no
    /// network of its own: such parts all use the same port, so they take
    /// turns.
    pub fixed_port: Arc<tokio::sync::Mutex<()>>,
}

/// A submission, graded or not.
pub(crate) struct SubmissionRun {
    pub submission: Submission,
    pub expectations: Expectations,
    /// Why the submission could not be graded at all (a users or expect
    /// file that cannot be read).
    pub broken: Option<String>,
    pub parts: Vec<PartRun>,
}

/// The server or the client of a submission.
pub(crate) struct PartRun {
    pub kind: Kind,
    pub command: String,
    pub outcome: PartOutcome,
    pub took: Duration,
}

pub(crate) enum PartOutcome {
    /// It could not be tested at all (it crashed on start, never
    /// listened, never showed a prompt): the diagnosis.
    Untestable(String),
    /// Its cases, every selected one (those its budget did not reach are
    /// ERROR, not run).
    Ran(Vec<CaseResult>),
}

/// Grades one submission: its server, then its client.
pub(crate) async fn grade_submission(submission: Submission, shared: &Shared) -> SubmissionRun {
    let mut graded = SubmissionRun {
        expectations: Expectations::default(),
        broken: None,
        parts: Vec::new(),
        submission,
    };
    let sub = &graded.submission;
    let users = match &sub.users {
        Some(path) => UserMap::from_file(path).map_err(|e| e.to_string()),
        None => Ok(UserMap::builtin()),
    };
    let expectations = match &sub.expect {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Expectations::parse(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => Ok(Expectations::default()),
    };
    let (users, expectations) = match (users, expectations) {
        (Ok(u), Ok(e)) => (u, e),
        (Err(e), _) | (_, Err(e)) => {
            graded.broken = Some(e);
            return graded;
        }
    };
    let options = Options {
        timeout: sub.timeout,
        startup: shared.startup,
        users,
        slots: shared.slots.clone(),
        dir: Some(sub.dir.clone()),
    };
    let mut parts = Vec::new();
    if let Some(command) = &sub.server {
        parts.push(grade_part(Kind::Server, command, &options, shared).await);
    }
    if let Some(command) = &sub.client {
        parts.push(grade_part(Kind::Client, command, &options, shared).await);
    }
    graded.parts = parts;
    graded.expectations = expectations;
    graded
}

async fn grade_part(kind: Kind, command: &str, options: &Options, shared: &Shared) -> PartRun {
    let started = Instant::now();
    // Its budget counts the time it has a case running, not the time the
    // rest of the class makes it wait for a slot.
    let (slots, clock) = options.slots.clocked();
    let options = &Options { slots, ..options.clone() };
    // A fixed port is shared, unless the program gets a network of its own.
    let shares_port = !command.contains("{port}") && !crate::conform::endpoint::own_networks();
    let _turn = if shares_port { Some(shared.fixed_port.lock().await) } else { None };
    let (mapped, mut results) = options.users.apply_all(shared.spec.examples_of(kind));
    let selected: Vec<&Example> = mapped.iter().collect();
    let mut done: Vec<CaseResult> = Vec::new();
    let work = async {
        let mut progress = |p: Progress<'_>| {
            if let Progress::Done { result, .. } = p {
                done.push(result.clone());
            }
        };
        match kind {
            Kind::Server => {
                let target = ServerTarget::Spawn { command: command.to_owned(), port: 8889 };
                let prepared = {
                    let _slot = options.slots.take().await;
                    run::preflight_server(&target, options).await?
                };
                run::run_prepared_server_cases(
                    &selected,
                    &target,
                    &prepared,
                    options,
                    &shared.ctx,
                    &mut progress,
                )
                .await;
            }
            Kind::Client => {
                let target = ClientTarget {
                    argv: vec!["sh".into(), "-c".into(), command.to_owned()],
                    port: 8889,
                };
                let mut first_prompt = run::FirstPrompt::unknown(options);
                if let Some(first) = selected.first() {
                    let _slot = options.slots.take().await;
                    first_prompt =
                        run::preflight_client(first, &target, options, &shared.ctx).await?;
                }
                run::run_client_cases(
                    &selected,
                    &target,
                    first_prompt,
                    options,
                    &shared.ctx,
                    &mut progress,
                )
                .await;
            }
        }
        Ok::<(), String>(())
    };
    let ended = tokio::select! {
        ended = work => Ok(ended),
        () = clock.spend(shared.budget) => Err(()),
    };
    let mut outcome = match ended {
        Ok(Err(diagnosis)) => PartOutcome::Untestable(diagnosis),
        Ok(Ok(())) => {
            results.extend(done);
            PartOutcome::Ran(results)
        }
        Err(_) if done.is_empty() => PartOutcome::Untestable(format!(
            "it was not done being checked within its time budget of {} s (--budget)",
            format_secs(shared.budget)
        )),
        Err(_) => {
            let message = format!(
                "not run: the submission's {} used up its time budget of {} s (--budget)",
                kind.as_str(),
                format_secs(shared.budget)
            );
            for example in &selected {
                if !done.iter().any(|r| r.id == example.id) {
                    results.push(CaseResult::not_run(
                        example,
                        Verdict::Error,
                        "(budget)",
                        message.clone(),
                    ));
                }
            }
            results.extend(done);
            PartOutcome::Ran(results)
        }
    };
    if let PartOutcome::Ran(results) = &mut outcome {
        results.sort_by_key(|r| r.spec_line);
    }
    PartRun { kind, command: command.to_owned(), outcome, took: started.elapsed() }
}

/// A submission whose server ran every example of `spec`, each ending in
/// the verdict `verdict_of` gives it: for the tests of the pure reports.
#[cfg(test)]
pub(crate) fn graded_for_tests(
    spec: &Spec,
    name: &str,
    verdict_of: impl Fn(&Example) -> Verdict,
) -> SubmissionRun {
    SubmissionRun {
        submission: Submission {
            name: name.into(),
            dir: std::path::PathBuf::from("."),
            server: Some("./server {port}".into()),
            client: None,
            users: None,
            expect: None,
            timeout: Duration::from_secs(2),
        },
        expectations: Expectations::default(),
        broken: None,
        parts: vec![PartRun {
            kind: Kind::Server,
            command: "./server {port}".into(),
            outcome: PartOutcome::Ran(
                spec.examples
                    .iter()
                    .map(|e| CaseResult::not_run(e, verdict_of(e), "(test)", "<b>why</b>".into()))
                    .collect(),
            ),
            took: Duration::from_secs(1),
        }],
    }
}
