//! `--json` (everything: per submission, per rule, per case, each part's
//! report as `conform server --json` writes it) and `--junit` (one
//! testsuite per submission, named after it). Pure code.

use serde_json::{json, Value};

use crate::conform::export::{json_report, junit_testsuite, xml_escape};
use crate::conform::grade::{self, Graded, Policy};
use crate::conform::process::shell_quote;
use crate::duration::format_secs;
use crate::spec::{Kind, Spec};

use super::matrix::Matrix;
use super::run::{PartOutcome, PartRun, SubmissionRun};

/// What every report of a class says besides the results.
pub(crate) struct Context<'a> {
    pub spec: &'a Spec,
    pub spec_name: &'a str,
    pub policy: Policy,
    /// `--spec FILE` or `--examples FILE` when the examples are not the
    /// built-in ones, for the rerun commands.
    pub source: &'a [String],
    pub timeout_default: Option<&'a str>,
    pub jobs: usize,
    pub exit_code: u8,
}

/// The command that reruns one case of a submission's part, from
/// anywhere: `cd DIR && progjar-chat conform server --spawn 'CMD' --case ID`.
pub(crate) fn rerun(run: &SubmissionRun, part: &PartRun, ctx: &Context<'_>, id: &str) -> String {
    let policy = ctx.policy;
    let sub = &run.submission;
    let dir = std::path::absolute(&sub.dir).unwrap_or_else(|_| sub.dir.clone());
    let mut parts = vec![
        "cd".to_owned(),
        shell_quote(&dir.display().to_string()),
        "&&".into(),
        "progjar-chat".into(),
        "conform".into(),
    ];
    match part.kind {
        Kind::Server => {
            parts.extend(["server".into(), "--spawn".into(), shell_quote(&part.command)])
        }
        Kind::Client => parts.push("client".into()),
    }
    if sub.timeout != std::time::Duration::from_secs(2) {
        parts.extend(["--timeout".into(), format_secs(sub.timeout)]);
    }
    if policy.strict {
        parts.push("--strict".into());
    }
    if policy.accept_wording {
        parts.push("--accept-wording".into());
    }
    if let Some(users) = &sub.users {
        let users = std::path::absolute(users).unwrap_or_else(|_| users.clone());
        parts.extend(["--users".into(), shell_quote(&users.display().to_string())]);
    }
    parts.extend(ctx.source.iter().cloned());
    parts.extend(["--case".into(), shell_quote(id)]);
    if part.kind == Kind::Client {
        parts.extend(["--".into(), "sh".into(), "-c".into(), shell_quote(&part.command)]);
    }
    parts.join(" ")
}

/// The graded cases of a part that ran.
pub(crate) fn graded_part<'a>(
    run: &'a SubmissionRun,
    part: &'a PartRun,
    policy: Policy,
) -> Vec<Graded<'a>> {
    match &part.outcome {
        PartOutcome::Ran(results) => grade::grade_with(results, policy, &run.expectations),
        PartOutcome::Untestable(_) => Vec::new(),
    }
}

pub(crate) fn json(ctx: &Context<'_>, class: &[SubmissionRun], matrix: &Matrix) -> String {
    let submissions: Vec<Value> = class
        .iter()
        .zip(&matrix.rows)
        .map(|(run, row)| {
            let parts: Vec<Value> = run
                .parts
                .iter()
                .zip(&row.parts)
                .map(|(part, line)| {
                    let report = match &part.outcome {
                        PartOutcome::Untestable(why) => json!({"untestable": why}),
                        PartOutcome::Ran(_) => {
                            let graded = graded_part(run, part, ctx.policy);
                            let header = json!({"command": part.command});
                            let rerun = |id: &str| rerun(run, part, ctx, id);
                            json_report(&graded, ctx.spec, header, &rerun)
                        }
                    };
                    json!({
                        "kind": part.kind.as_str(),
                        "command": part.command,
                        "summary": line,
                        "report": report,
                    })
                })
                .collect();
            let cells: serde_json::Map<String, Value> = matrix
                .columns
                .iter()
                .zip(&row.cells)
                .map(|(c, cell)| (c.rule.clone(), json!(cell.label())))
                .collect();
            json!({
                "name": run.submission.name,
                "dir": run.submission.dir.display().to_string(),
                "conforms": row.conforms,
                "error": run.broken,
                "rules": cells,
                "parts": parts,
            })
        })
        .collect();
    let value = json!({
        "tool": "progjar-chat conform class",
        "version": env!("CARGO_PKG_VERSION"),
        "spec": ctx.spec_name,
        "strict": ctx.policy.strict,
        "accept_wording": ctx.policy.accept_wording,
        "timeout": ctx.timeout_default,
        "jobs": ctx.jobs,
        "exit_code": ctx.exit_code,
        "summary": {
            "submissions": matrix.rows.len(),
            "conforming": matrix.rows.iter().filter(|r| r.conforms).count(),
        },
        "columns": matrix.columns,
        "submissions": submissions,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// One testsuite per submission, named after it; a server or client that
/// could not be tested is one `<error>` testcase.
pub(crate) fn junit(ctx: &Context<'_>, class: &[SubmissionRun]) -> String {
    let mut suites = String::new();
    let mut tests = 0;
    for run in class {
        let mut graded: Vec<Graded<'_>> = Vec::new();
        let mut untestable: Vec<(String, String)> = Vec::new();
        if let Some(why) = &run.broken {
            untestable.push(("cannot be graded".into(), why.clone()));
        }
        for part in &run.parts {
            match &part.outcome {
                PartOutcome::Untestable(why) => untestable
                    .push((format!("the {} cannot be tested", part.kind.as_str()), why.clone())),
                PartOutcome::Ran(_) => graded.extend(graded_part(run, part, ctx.policy)),
            }
        }
        let rerun = |id: &str| {
            let part = run.parts.iter().find(
                |p| matches!(&p.outcome, PartOutcome::Ran(r) if r.iter().any(|c| c.id == id)),
            );
            part.map(|p| rerun(run, p, ctx, id)).unwrap_or_default()
        };
        tests += graded.len() + untestable.len();
        suites.push_str(&junit_testsuite(
            &graded,
            ctx.spec,
            &run.submission.name,
            &untestable,
            &rerun,
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\">\n{suites}</testsuites>\n",
        xml_escape("conform class"),
        tests
    )
}
