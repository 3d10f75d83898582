//! Pure: a run's results per rule, in the order a student fixes them, and
//! the causes that several cases share.
//!
//! The order, most urgent first: MUST rules FAILED or ERROR; commands the
//! implementation does not have (their rules once, under the command);
//! cases BLOCKED by a rule they rely on (grouped by that rule); MUST rules
//! worded otherwise than the spec; SHOULD rules FAILED or ERROR; other
//! NON-STRICT rules; the rules that pass.

use super::cause::Cause;
use super::grade::Graded;
use super::matcher::Verdict;
use crate::spec::Level;

/// Where a rule goes in the list, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Urgency {
    /// A case that counts as MUST is FAILED or ERROR.
    MustFailed,
    /// A case uses a command the implementation does not have.
    NotImplemented,
    /// The rule's only cases that did not pass are BLOCKED by another rule.
    Blocked,
    /// A case that counts as MUST is NON-STRICT because of its wording.
    MustWording,
    /// A SHOULD case is FAILED or ERROR.
    ShouldFailed,
    /// NON-STRICT in form, order, extra keys or token format, or SHOULD wording.
    NonStrict,
    /// Every case is OK.
    Passing,
}

/// One rule and the cases behind it.
#[derive(Debug, Clone)]
pub(crate) struct RuleResult<'g, 'a> {
    pub rule: &'a str,
    /// The level it counts at: MUST when any of its cases counts as MUST.
    pub level: Level,
    /// The worst verdict of its cases, as counted.
    pub verdict: Verdict,
    pub urgency: Urgency,
    pub cases: Vec<&'g Graded<'a>>,
    /// The first command its NOT-IMPLEMENTED cases use.
    pub missing_command: Option<&'a str>,
    /// The first rule its BLOCKED cases rely on.
    pub blocked_by: Option<&'a str>,
}

impl RuleResult<'_, '_> {
    /// Its cases that are not OK and not NOT-IMPLEMENTED.
    pub(crate) fn other_notable(&self) -> impl Iterator<Item = &Graded<'_>> {
        self.cases
            .iter()
            .copied()
            .filter(|g| g.verdict != Verdict::Ok && g.verdict != Verdict::NotImplemented)
    }
}

/// A command the implementation does not have, with the rules and cases
/// it keeps from running.
#[derive(Debug, Clone)]
pub(crate) struct Missing<'g, 'a> {
    pub command: &'a str,
    /// Indexes into [`Triage::rules`].
    pub rules: Vec<usize>,
    pub cases: Vec<&'g Graded<'a>>,
}

/// Cases BLOCKED by one rule.
#[derive(Debug, Clone)]
pub(crate) struct Blockage<'g, 'a> {
    pub blocker: &'a str,
    pub cases: Vec<&'g Graded<'a>>,
}

/// A known cause that several cases that did not pass share.
#[derive(Debug, Clone)]
pub(crate) struct Shared<'g, 'a> {
    pub cause: Cause,
    pub cases: Vec<&'g Graded<'a>>,
}

impl Shared<'_, '_> {
    /// How many of its cases count as MUST.
    pub(crate) fn must(&self) -> usize {
        self.cases.iter().filter(|g| g.level == Level::Must).count()
    }
}

/// The whole triage of a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Triage<'g, 'a> {
    /// Every rule, most urgent first (document order within a group).
    pub rules: Vec<RuleResult<'g, 'a>>,
    pub missing: Vec<Missing<'g, 'a>>,
    pub blocked: Vec<Blockage<'g, 'a>>,
    /// Causes shared by at least two cases, the most MUST cases first.
    pub causes: Vec<Shared<'g, 'a>>,
}

fn failed(v: Verdict) -> bool {
    matches!(v, Verdict::Failed | Verdict::Error)
}

fn urgency(cases: &[&Graded<'_>]) -> Urgency {
    if cases.iter().any(|g| g.verdict == Verdict::NotImplemented) {
        return Urgency::NotImplemented;
    }
    let others: Vec<&Graded<'_>> =
        cases.iter().copied().filter(|g| g.verdict != Verdict::Blocked).collect();
    let blocked = others.len() < cases.len();
    if others.iter().any(|g| failed(g.verdict) && g.level == Level::Must) {
        Urgency::MustFailed
    } else if blocked && others.iter().all(|g| g.verdict == Verdict::Ok) {
        Urgency::Blocked
    } else if others.iter().any(|g| g.wording && g.level == Level::Must) {
        Urgency::MustWording
    } else if others.iter().any(|g| failed(g.verdict)) {
        Urgency::ShouldFailed
    } else if others.iter().any(|g| g.verdict == Verdict::NonStrict) {
        Urgency::NonStrict
    } else {
        Urgency::Passing
    }
}

/// Sorts the graded cases into rules, missing commands, blockages and
/// shared causes.
pub(crate) fn triage<'g, 'a>(graded: &'g [Graded<'a>]) -> Triage<'g, 'a> {
    let mut by_rule: Vec<(&'a str, Vec<&'g Graded<'a>>)> = Vec::new();
    for g in graded {
        let rule: &'a str = &g.result.rule;
        match by_rule.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, cases)) => cases.push(g),
            None => by_rule.push((rule, vec![g])),
        }
    }
    let mut rules: Vec<RuleResult<'g, 'a>> = by_rule
        .into_iter()
        .map(|(rule, cases)| {
            let level = cases.iter().map(|g| g.level).min().unwrap_or(Level::Should);
            let verdict = cases.iter().map(|g| g.verdict).max().unwrap_or(Verdict::Ok);
            let missing_command = cases
                .iter()
                .filter(|g| g.verdict == Verdict::NotImplemented)
                .find_map(|g| g.result.missing_command.as_deref());
            let blocked_by = cases
                .iter()
                .filter(|g| g.verdict == Verdict::Blocked)
                .find_map(|g| g.result.blocked_by.as_deref());
            RuleResult {
                rule,
                level,
                verdict,
                urgency: urgency(&cases),
                cases,
                missing_command,
                blocked_by,
            }
        })
        .collect();
    rules.sort_by_key(|r| r.urgency);

    let mut missing: Vec<Missing<'g, 'a>> = Vec::new();
    let mut blocked: Vec<Blockage<'g, 'a>> = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        for &g in &rule.cases {
            if g.verdict == Verdict::NotImplemented {
                let command = g.result.missing_command.as_deref().unwrap_or("?");
                let entry = match missing.iter().position(|m| m.command == command) {
                    Some(i) => &mut missing[i],
                    None => {
                        missing.push(Missing { command, rules: Vec::new(), cases: Vec::new() });
                        missing.last_mut().expect("just pushed")
                    }
                };
                if !entry.rules.contains(&index) {
                    entry.rules.push(index);
                }
                entry.cases.push(g);
            }
        }
    }
    // Blocked cases in document order, whatever group their rule is in.
    for g in graded.iter().filter(|g| g.verdict == Verdict::Blocked) {
        let blocker = g.result.blocked_by.as_deref().unwrap_or("?");
        match blocked.iter_mut().find(|b| b.blocker == blocker) {
            Some(b) => b.cases.push(g),
            None => blocked.push(Blockage { blocker, cases: vec![g] }),
        }
    }

    let mut causes: Vec<Shared<'g, 'a>> = Vec::new();
    for g in graded.iter().filter(|g| g.verdict != Verdict::Ok) {
        let mut seen: Vec<Cause> = Vec::new();
        for finding in g.result.steps.iter().flat_map(|s| &s.check.findings) {
            let Some(cause) = finding.cause else { continue };
            if seen.contains(&cause) {
                continue;
            }
            seen.push(cause);
            match causes.iter_mut().find(|c| c.cause == cause) {
                Some(c) => c.cases.push(g),
                None => causes.push(Shared { cause, cases: vec![g] }),
            }
        }
    }
    causes.retain(|c| c.cases.len() >= 2);
    causes.sort_by_key(|c| (std::cmp::Reverse(c.must()), std::cmp::Reverse(c.cases.len())));

    Triage { rules, missing, blocked, causes }
}

/// Rule IDs in a compact form: `TRANS-1–6, AUTH-1, AUTH-3–4`.
pub(crate) fn compact_ids(ids: &[&str]) -> String {
    fn split(id: &str) -> Option<(&str, u32)> {
        let (prefix, number) = id.rsplit_once('-')?;
        Some((prefix, number.parse().ok()?))
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        if let Some((prefix, first)) = split(ids[i]) {
            let mut last = first;
            while let Some((p, n)) = ids.get(j + 1).and_then(|id| split(id)) {
                if p != prefix || n != last + 1 {
                    break;
                }
                last = n;
                j += 1;
            }
            if j > i {
                parts.push(format!("{prefix}-{first}–{last}"));
                i = j + 1;
                continue;
            }
        }
        parts.push(ids[i].to_owned());
        i += 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_compacted_only_where_they_run_on() {
        assert_eq!(
            compact_ids(&["TRANS-1", "TRANS-2", "TRANS-3", "TRANS-5", "AUTH-1", "AUTH-2", "X"]),
            "TRANS-1–3, TRANS-5, AUTH-1–2, X"
        );
        assert_eq!(compact_ids(&[]), "");
    }
}
