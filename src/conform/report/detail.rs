//! The details of a run: a case told in full ([`case_detail`]) or in
//! brief, and the one lines that stand for the cases whose story another
//! case already told.

use std::fmt::Write as _;

use super::{verdict_label, why};
use crate::conform::cause::Cause;
use crate::conform::grade::Graded;
use crate::conform::layout::{hanging, plural, wrap};
use crate::conform::matcher::Verdict;
use crate::conform::transcript;
use crate::conform::triage::Missing;
use crate::spec::{Spec, PROTOCOL_PATH};

/// The whole story of a case that did not pass: the rule, the step, the
/// difference, the transcript and the command that reruns it. A
/// NOT-IMPLEMENTED case, which did not run, gets one line.
pub fn case_detail(g: &Graded<'_>, spec: &Spec, rerun: &str, with_transcript: bool) -> String {
    let r = g.result;
    let mut out = String::new();
    let expected = g.expected_failure.map(|reason| format!("Expected to fail: {reason}"));
    if g.verdict == Verdict::NotImplemented {
        let _ = write!(out, "---- {} ({}) NOT-IMPLEMENTED ---- not run: {}", r.id, g.level, {
            let headline = r.headline();
            if headline.is_empty() {
                why(g)
            } else {
                headline
            }
        });
        if let Some(expected) = expected {
            let _ = write!(out, " ({expected})");
        }
        out.push('\n');
        return out;
    }
    let mut counted = Vec::new();
    if g.verdict != r.verdict {
        counted.push(format!("{} counted as {}", r.verdict, g.verdict));
    }
    if g.level != r.level {
        counted.push(format!("{} counted as {}", r.level, g.level));
    }
    let counted = if counted.is_empty() {
        String::new()
    } else {
        format!(" ({}, --strict)", counted.join(", "))
    };
    let _ = writeln!(out, "---- {} ({}) {}{counted} ----", r.id, g.level, g.verdict);
    if let Some(expected) = expected {
        let _ = writeln!(out, "{expected}");
    }
    if g.verdict == Verdict::Blocked {
        let blocker = r.blocked_by.as_deref().unwrap_or("?");
        let place = spec
            .rule(blocker)
            .map(|b| format!(" ({PROTOCOL_PATH} line {})", b.line))
            .unwrap_or_default();
        let headline = r.headline();
        let _ = writeln!(
            out,
            "BLOCKED by {blocker}{place}: {}",
            if headline.is_empty() {
                "a step that prepares the case failed".into()
            } else {
                headline
            }
        );
        let _ = writeln!(
            out,
            "A step that only prepares this case relies on {blocker}; fix {blocker} first. The case says nothing about {} yet.",
            r.rule
        );
    } else if let Some(rule) = spec.rule(&r.rule) {
        let _ = writeln!(
            out,
            "Rule {} ({}; {}), {PROTOCOL_PATH} line {}:",
            rule.id, rule.level, rule.source, rule.line
        );
        for line in wrap(&rule.text, 92) {
            let _ = writeln!(out, "    {line}");
        }
    }
    if g.wording {
        let _ = writeln!(
            out,
            "Worded otherwise than the spec{}.",
            if g.wording_accepted { " (accepted with --accept-wording)" } else { "" }
        );
    }
    let _ = writeln!(out, "Example {} at {PROTOCOL_PATH} line {}.", r.id, r.spec_line);
    for step in &r.steps {
        let _ = writeln!(out);
        if step.source.starts_with('(') {
            let _ = writeln!(out, "{} {}:", step.verdict, step.source);
        } else {
            let _ = writeln!(out, "{} at line {}:  {}", step.verdict, step.line, step.source);
        }
        for finding in &step.check.findings {
            let _ = writeln!(out, "  - [{}] {}", finding.severity, finding.render());
        }
        if !step.check.diff.is_empty() {
            let _ = writeln!(out, "  expected (-) vs actual (+):");
            for line in &step.check.diff {
                let _ = writeln!(out, "    {}", line.render());
            }
        } else if !step.check.expected.is_empty() || !step.check.actual.is_empty() {
            let _ = writeln!(out, "  expected: {}", step.check.expected);
            let actual =
                if step.check.actual.is_empty() { "(nothing)" } else { &step.check.actual };
            let _ = writeln!(out, "  actual:   {actual}");
        }
    }
    if with_transcript && !r.transcript.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Transcript (seconds since the start; C1 > the runner wrote, C1 < it read; U > typed, U < printed, U ? prompt, U · set aside; wire: the client under test and the server; bytes escaped as in the spec):"
        );
        for line in transcript::render(&r.transcript) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Rerun just this case:  {rerun}");
    out
}

/// A case in short: its header and its findings, each with its line in
/// the spec, and `note` (the whole story is for `--verbose`). For
/// NON-STRICT cases, and for cases whose story another case already told
/// (the same blocker, the same cause). With a note, findings that all
/// have a known cause are left out: the note tells it.
pub(crate) fn case_brief(g: &Graded<'_>, note: Option<&str>) -> String {
    let r = g.result;
    let extra = if g.verdict == Verdict::Blocked {
        format!(" by {}", r.blocked_by.as_deref().unwrap_or("?"))
    } else if g.wording_accepted {
        " (wording, accepted)".into()
    } else if g.wording {
        " (wording)".into()
    } else {
        String::new()
    };
    let mut out = format!("---- {} ({}) {}{extra} ----", r.id, g.level, verdict_label(g));
    let all = || r.steps.iter().flat_map(|s| s.check.findings.iter().map(move |f| (s.line, f)));
    let findings: Vec<String> = if note.is_some() && all().all(|(_, f)| f.cause.is_some()) {
        Vec::new()
    } else {
        all().map(|(line, f)| format!("line {line}: {}", f.render())).collect()
    };
    if findings.is_empty() {
        if let Some(note) = note {
            let _ = write!(out, " {note}");
        }
        return out;
    }
    match findings.as_slice() {
        [one] => {
            let _ = write!(out, " {one}");
        }
        many => {
            for finding in many {
                let _ = write!(out, "\n    {finding}");
            }
        }
    }
    if let Some(note) = note {
        let _ = write!(out, "\n    {note}");
    }
    out
}

/// The cases that failed only for a cause another case told in full, for
/// the details: `---- The same cause as TRANS-1.1 (no-terminator): 3 more cases: …`.
pub(crate) fn same_cause_line(first: &str, cause: Cause, ids: &[&str]) -> String {
    let items: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let head = format!(
        "---- The same cause as {first} ({}): {}:",
        cause.id(),
        plural(ids.len(), "more case")
    );
    hanging(&head, &items, 4)
}

/// The cases BLOCKED by one rule in the same way as a case told in full,
/// for the details: `---- Also BLOCKED by AUTH-1, as JSON-1.2: 3 more cases: …`.
pub(crate) fn same_blocker_line(blocker: &str, first: &str, ids: &[&str]) -> String {
    let items: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let head =
        format!("---- Also BLOCKED by {blocker}, as {first}: {}:", plural(ids.len(), "more case"));
    hanging(&head, &items, 4)
}

/// One line for all the cases a missing command kept from running, for
/// the details.
pub(crate) fn missing_detail(missing: &Missing<'_, '_>) -> String {
    let ids: Vec<&str> = missing.cases.iter().map(|g| g.result.id.as_str()).collect();
    let why = missing.cases.first().map(|g| g.result.headline()).unwrap_or_default();
    let mut line = format!(
        "---- NOT-IMPLEMENTED `{}`: {} not run ({})",
        missing.command,
        plural(ids.len(), "case"),
        ids.join(", ")
    );
    if !why.is_empty() {
        let _ = write!(line, ": {why}");
    }
    line
}
