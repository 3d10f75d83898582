//! The end of a run for people: the rules, most urgent first (with causes
//! shared by several cases and missing commands), the counts by level and
//! the result line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::grade::{conformance, exit_code, Class, Conformance, Graded};
use super::layout::{hanging, paragraph, plural};
use super::matcher::Verdict;
use super::report::{verdict_label, Style};
use super::triage::{compact_ids, triage, RuleResult, Urgency};
use crate::spec::Level;

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub ok: usize,
    pub non_strict: usize,
    pub not_implemented: usize,
    pub blocked: usize,
    pub failed: usize,
    pub error: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Ok => self.ok += 1,
            Verdict::NonStrict => self.non_strict += 1,
            Verdict::NotImplemented => self.not_implemented += 1,
            Verdict::Blocked => self.blocked += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::Error => self.error += 1,
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.ok + self.non_strict + self.not_implemented + self.blocked + self.failed + self.error
    }

    pub(crate) fn json(&self) -> Value {
        json!({"OK": self.ok, "NON-STRICT": self.non_strict, "NOT-IMPLEMENTED": self.not_implemented, "BLOCKED": self.blocked, "FAILED": self.failed, "ERROR": self.error, "total": self.total()})
    }

    /// `12 OK, 1 NON-STRICT, 0 FAILED, 1 ERROR`, and NOT-IMPLEMENTED and
    /// BLOCKED when there are any.
    fn text(&self) -> String {
        let mut parts = vec![format!("{} OK", self.ok), format!("{} NON-STRICT", self.non_strict)];
        if self.not_implemented > 0 {
            parts.push(format!("{} NOT-IMPLEMENTED", self.not_implemented));
        }
        if self.blocked > 0 {
            parts.push(format!("{} BLOCKED", self.blocked));
        }
        parts.push(format!("{} FAILED", self.failed));
        parts.push(format!("{} ERROR", self.error));
        parts.join(", ")
    }
}

/// Counts per level.
pub(crate) fn by_level(graded: &[Graded<'_>]) -> BTreeMap<Level, Counts> {
    let mut map = BTreeMap::new();
    for g in graded {
        map.entry(g.level).or_insert_with(Counts::default).add(g.verdict);
    }
    map
}

/// A case's verdict in a rule's line: `FAILED`, with what else matters
/// (`NON-STRICT (wording)`, `BLOCKED (by LOGOUT-1)`).
fn label_in_rule(g: &Graded<'_>, rule_level: Level) -> String {
    let mut s = verdict_label(g);
    let mut notes = Vec::new();
    if g.level != rule_level {
        notes.push(g.level.as_str().to_owned());
    }
    if g.wording {
        notes.push(if g.wording_accepted { "wording, accepted" } else { "wording" }.to_owned());
    }
    if g.verdict == Verdict::Blocked {
        notes.push(format!("by {}", g.result.blocked_by.as_deref().unwrap_or("?")));
    }
    if g.class == Class::KnownFailure {
        notes.push("expected".into());
    }
    if !notes.is_empty() {
        let _ = write!(s, " ({})", notes.join(", "));
    }
    s
}

/// A rule's cases, those with the same label together, the worst first:
/// `SEND-6.2 FAILED; SEND-6.1, SEND-6.3 OK`.
fn cases_in_rule(r: &RuleResult<'_, '_>, style: Style) -> Vec<String> {
    let mut groups: Vec<(Verdict, String, Vec<&str>)> = Vec::new();
    for g in &r.cases {
        let label = label_in_rule(g, r.level);
        match groups.iter_mut().find(|(_, l, _)| *l == label) {
            Some((_, _, ids)) => ids.push(&g.result.id),
            None => groups.push((g.verdict, label, vec![&g.result.id])),
        }
    }
    groups.sort_by_key(|(v, _, _)| std::cmp::Reverse(*v));
    let mut items = Vec::new();
    let count = groups.len();
    for (n, (verdict, label, ids)) in groups.into_iter().enumerate() {
        let last = ids.len() - 1;
        for (i, id) in ids.into_iter().enumerate() {
            items.push(if i < last {
                id.to_owned()
            } else if n + 1 < count {
                format!("{id} {};", style.paint(verdict, &label))
            } else {
                format!("{id} {}", style.paint(verdict, &label))
            });
        }
    }
    items
}

/// The list of rules a student reads first: causes shared by several
/// cases, then one line per rule that did not pass, most urgent first
/// (see [`super::triage`]), then the passing rules on one line.
pub(crate) fn rules_section(graded: &[Graded<'_>], style: Style) -> String {
    let t = triage(graded);
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold("Rules, most urgent first"));
    for shared in &t.causes {
        let head = format!(
            "  One cause, {} ({} MUST): ",
            plural(shared.cases.len(), "case"),
            shared.must()
        );
        let _ = writeln!(out, "{}", paragraph(&head, &format!("{}.", shared.cause.what()), 6));
        let _ = writeln!(out, "{}", paragraph("    Fix: ", &format!("{}.", shared.cause.fix()), 6));
        let not_passed = graded.iter().filter(|g| g.verdict != Verdict::Ok).count();
        if shared.cases.len() == not_passed {
            let _ = writeln!(out, "    Cases: every case that did not pass.");
        } else {
            const MAX: usize = 20;
            let mut ids: Vec<String> =
                shared.cases.iter().take(MAX).map(|g| g.result.id.clone()).collect();
            if shared.cases.len() > MAX {
                ids.push(format!("and {} more", shared.cases.len() - MAX));
            }
            let _ = writeln!(out, "{}", hanging("    Cases:", &ids, 6));
        }
    }
    let rule_line = |r: &RuleResult<'_, '_>| -> String {
        let head = format!(
            "  {:<10} {:<6}  {} ",
            r.rule,
            r.level.as_str(),
            style.paint(r.verdict, &format!("{:<11}", r.verdict.as_str()))
        );
        hanging(&head, &cases_in_rule(r, style), 33)
    };
    let urgent = |u: Urgency| t.rules.iter().filter(move |r| r.urgency == u);
    for r in urgent(Urgency::MustFailed) {
        let _ = writeln!(out, "{}", rule_line(r));
    }
    for m in &t.missing {
        let items: Vec<String> = m
            .rules
            .iter()
            .map(|&i| {
                let rule = &t.rules[i];
                let mut notes = vec![rule.level.as_str().to_owned()];
                notes.extend(
                    rule.other_notable().map(|g| format!("{} {}", g.result.id, verdict_label(g))),
                );
                format!("{} ({})", rule.rule, notes.join("; "))
            })
            .collect();
        let head = format!(
            "  {}:",
            style.paint(Verdict::NotImplemented, &format!("`{}` not implemented", m.command))
        );
        let _ = writeln!(
            out,
            "{}; {} not run",
            hanging(&head, &items, 4),
            plural(m.cases.len(), "case")
        );
    }
    for b in &t.blocked {
        let ids: Vec<String> = b.cases.iter().map(|g| g.result.id.clone()).collect();
        let head = format!(
            "  {} (fix it first):",
            style.paint(Verdict::Blocked, &format!("blocked by {}", b.blocker))
        );
        let _ = writeln!(out, "{}", hanging(&head, &ids, 4));
    }
    for u in [Urgency::MustWording, Urgency::ShouldFailed, Urgency::NonStrict] {
        for r in urgent(u) {
            let _ = writeln!(out, "{}", rule_line(r));
        }
    }
    let passing: Vec<&str> =
        t.rules.iter().filter(|r| r.urgency == Urgency::Passing).map(|r| r.rule).collect();
    if !passing.is_empty() {
        let head = if passing.len() == t.rules.len() {
            format!("  {}: all {}", style.paint(Verdict::Ok, "OK"), plural(passing.len(), "rule"))
        } else {
            format!("  {}: {}", style.paint(Verdict::Ok, "OK"), plural(passing.len(), "rule"))
        };
        let _ = writeln!(out, "{}", paragraph(&format!("{head}: "), &compact_ids(&passing), 4));
    }
    out
}

/// The summary at the end of a run; its last line is the result.
pub(crate) fn summary(graded: &[Graded<'_>], style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold("Summary"));
    let _ = writeln!(out, "By level:");
    for (level, c) in by_level(graded) {
        let _ = writeln!(out, "  {:<7} {:>3} cases: {}", level.as_str(), c.total(), c.text());
    }
    let known: Vec<&Graded<'_>> =
        graded.iter().filter(|g| g.class == Class::KnownFailure).collect();
    let new: Vec<&Graded<'_>> = graded.iter().filter(|g| g.class == Class::NewFailure).collect();
    let unexpected: Vec<&Graded<'_>> =
        graded.iter().filter(|g| g.class == Class::UnexpectedPass).collect();
    if !known.is_empty() || !unexpected.is_empty() {
        let _ = writeln!(out, "Expected failures (from --expect):");
        let _ = writeln!(out, "  known failures:    {}", ids(&known));
        let _ = writeln!(out, "  new failures:      {}", ids(&new));
        let _ = writeln!(
            out,
            "  unexpected passes: {}{}",
            ids(&unexpected),
            if unexpected.is_empty() { "" } else { "  (remove them from the expectations file)" }
        );
    }
    let _ = writeln!(out, "{}", result_line(graded, style));
    out
}

/// `Result: …  (exit code N)`.
pub(crate) fn result_line(graded: &[Graded<'_>], style: Style) -> String {
    let known = graded.iter().filter(|g| g.class == Class::KnownFailure).count();
    let should_failed = graded
        .iter()
        .filter(|g| g.level == Level::Should && g.verdict >= Verdict::NotImplemented)
        .filter(|g| g.class == Class::NewFailure)
        .count();
    let other_non_strict =
        graded.iter().filter(|g| g.verdict == Verdict::NonStrict && !g.must_wording()).count();
    let mut notes = Vec::new();
    let conforms = conformance(graded) == Conformance::Conforms;
    if known > 0 && !conforms {
        notes.push(format!("{known} expected to fail"));
    }
    if should_failed > 0 {
        notes.push(format!("{should_failed} SHOULD case(s) did not pass"));
    }
    if other_non_strict > 0 {
        notes.push(format!("{other_non_strict} other case(s) NON-STRICT"));
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    let text = match conformance(graded) {
        Conformance::DoesNotConform => {
            let bad: Vec<&Graded<'_>> = graded.iter().filter(|g| g.nonconforming()).collect();
            let mut parts = Vec::new();
            for v in [Verdict::Failed, Verdict::Error] {
                let these: Vec<&Graded<'_>> =
                    bad.iter().copied().filter(|g| g.verdict == v).collect();
                if !these.is_empty() {
                    parts.push(format!("{} {v} ({})", these.len(), few_ids(&these)));
                }
            }
            let mut commands: Vec<&str> = Vec::new();
            let mut blockers: Vec<&str> = Vec::new();
            for g in &bad {
                match g.verdict {
                    Verdict::NotImplemented => {
                        let c = g.result.missing_command.as_deref().unwrap_or("?");
                        if !commands.contains(&c) {
                            commands.push(c);
                        }
                    }
                    Verdict::Blocked => {
                        let b = g.result.blocked_by.as_deref().unwrap_or("?");
                        if !blockers.contains(&b) {
                            blockers.push(b);
                        }
                    }
                    _ => {}
                }
            }
            let count = |v: Verdict| bad.iter().filter(|g| g.verdict == v).count();
            if !commands.is_empty() {
                let names: Vec<String> = commands.iter().map(|c| format!("`{c}`")).collect();
                parts.push(format!(
                    "{} NOT-IMPLEMENTED ({})",
                    count(Verdict::NotImplemented),
                    names.join(", ")
                ));
            }
            if !blockers.is_empty() {
                parts.push(format!(
                    "{} BLOCKED (by {})",
                    count(Verdict::Blocked),
                    blockers.join(", ")
                ));
            }
            style.paint(
                Verdict::Failed,
                &format!(
                    "DOES NOT CONFORM: {} did not pass: {}{notes}",
                    plural(bad.len(), "MUST case"),
                    parts.join(", ")
                ),
            )
        }
        Conformance::ConformsExceptWording => {
            let worded: Vec<&Graded<'_>> = graded.iter().filter(|g| g.must_wording()).collect();
            let accepted = worded.iter().all(|g| g.wording_accepted);
            style.paint(
                Verdict::NonStrict,
                &format!(
                    "CONFORMS EXCEPT WORDING{}: {} word a reply otherwise than the spec ({}){notes}",
                    if accepted { " (wording accepted, --accept-wording)" } else { "" },
                    plural(worded.len(), "MUST case"),
                    few_ids(&worded)
                ),
            )
        }
        Conformance::Conforms => {
            let known_must = graded
                .iter()
                .filter(|g| g.class == Class::KnownFailure && g.level == Level::Must)
                .count();
            let but = if known_must > 0 {
                format!(" other than the {known_must} expected")
            } else {
                String::new()
            };
            style.paint(Verdict::Ok, &format!("CONFORMS: no MUST case failed{but}{notes}"))
        }
    };
    let code = exit_code(graded);
    let hint = if code == 1 && conformance(graded) == Conformance::ConformsExceptWording {
        "; --accept-wording accepts other wording"
    } else {
        ""
    };
    format!("Result: {text}  (exit code {code}{hint})")
}

fn ids(cases: &[&Graded<'_>]) -> String {
    if cases.is_empty() {
        "none".into()
    } else {
        cases.iter().map(|g| g.result.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// At most six IDs, then how many more.
fn few_ids(cases: &[&Graded<'_>]) -> String {
    const MAX: usize = 6;
    let mut s = cases.iter().take(MAX).map(|g| g.result.id.as_str()).collect::<Vec<_>>().join(", ");
    if cases.len() > MAX {
        let _ = write!(s, " and {} more", cases.len() - MAX);
    }
    s
}
