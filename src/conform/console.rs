//! The text for people, as a run goes: the header, the details of the
//! cases that did not pass, the live progress line, and where it all goes
//! (standard output, or standard error when a report takes standard
//! output).

use std::io::{IsTerminal, Write};
use std::path::Path;

use serde_json::json;

use super::args::{users_named, CommonArgs, Invocation, Under};
use super::grade::Graded;
use super::matcher::Verdict;
use super::process::shell_quote;
use super::report;
use super::run;
use super::{cause, triage};
use crate::duration::format_secs;
use crate::spec::Level;
use crate::spec::{Example, Spec};

/// A line of the text for people: on standard output, or on standard
/// error when a report takes standard output (`--json -`).
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::conform::console::text_to_stderr() { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

pub(crate) use say;

/// [`say!`] without the newline.
macro_rules! say_part {
    ($($arg:tt)*) => {
        if $crate::conform::console::text_to_stderr() { eprint!($($arg)*) } else { print!($($arg)*) }
    };
}
pub(crate) use say_part;

/// Whether the text for people goes to standard error: a report written
/// to `-` takes standard output, so that it can be piped.
pub(super) static TEXT_TO_STDERR: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub(super) fn text_to_stderr() -> bool {
    TEXT_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the text for people goes to a terminal (colours, live progress).
pub(super) fn text_is_terminal() -> bool {
    if text_to_stderr() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    }
}

/// The live line that says which case runs, on a terminal only.
pub(super) fn live_progress() -> indicatif::ProgressBar {
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
pub(super) fn write_report(path: &Path, text: &str) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    } else {
        std::fs::write(path, text)
    }
}

/// The state a `--connect` server had from before the run, once, at the
/// top.
pub(super) fn print_history(history: &run::History) {
    if history.is_empty() {
        return;
    }
    say!(
        "The server had state from before the run: {}. For a clean run, restart it, or use --spawn.",
        history.describe().join("; ")
    );
    say!();
}

pub(super) fn describe_under(under: &Under) -> String {
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

pub(super) fn print_header(under: &Under, count: usize, spec_name: &str, common: &CommonArgs) {
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
pub(super) fn print_details(
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

pub(super) fn print_list(spec: &Spec, selected: &[&Example], spec_name: &str) {
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

pub(super) fn dump_cases(spec: &Spec, selected: &[&Example]) -> serde_json::Value {
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
