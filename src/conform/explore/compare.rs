//! The implementation's replies against the reference's, under the spec's
//! matching rules.
//!
//! Pure code. The reference's replies are the example's `<` lines (see
//! [`example`](super::example)), so the runner's own [`matcher`] judges the
//! implementation: tokens are variables, a reply text worded otherwise is
//! NON-STRICT, a wrong status is FAILED, exactly as in the spec's
//! examples. What this module adds is the deviation's *signature*: the
//! rules the deviating request touched and the kind of difference, never
//! the tokens or texts, so that one mistake found forty times is one
//! finding.
//!
//! [`matcher`]: crate::conform::matcher

use super::coverage::Touched;
use crate::conform::cause::Cause;
use crate::conform::matcher::{Check, Verdict};
use crate::conform::outcome::CaseResult;

/// What a deviation is, without its tokens and texts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Signature {
    pub(crate) rules: Vec<&'static str>,
    pub(crate) verdict: Verdict,
    /// `wrong .status`, `closed`, `no reply`, a known cause's id, …
    pub(crate) kind: String,
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.rules.join(" "), self.verdict, self.kind)
    }
}

/// Where a session's run on the implementation first went wrong, and how.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Deviation {
    /// The step and the request within it.
    pub(crate) at: (usize, usize),
    /// The rules of the deviating request that say what it is about (the
    /// command's and the content's): what shrinking keeps.
    pub(crate) core: Signature,
    /// The same with how the request was written (TRANS-3, TRANS-4).
    pub(crate) signature: Signature,
    pub(crate) expected: String,
    pub(crate) actual: String,
    /// The runner's sentence about it.
    pub(crate) headline: String,
}

/// The deviation a case shows, if any. `origin` maps each line of the
/// example (0 is its fence, the first line of its text) to its step and
/// request; `touched` gives each request's rules.
pub(crate) fn deviation(
    result: &CaseResult,
    origin: &[Option<(usize, usize)>],
    touched: &[Vec<Touched>],
) -> Option<Deviation> {
    if result.verdict == Verdict::Ok {
        return None;
    }
    let step = result.decisive()?;
    let at = step
        .line
        .checked_sub(1)
        .and_then(|line| origin.get(line).copied().flatten())
        .unwrap_or((0, 0));
    let step_touched = touched.get(at.0).map(Vec::as_slice).unwrap_or_default();
    let mut touched = step_touched.get(at.1).cloned().unwrap_or_default();
    // BLOCKED only says that the runner charges the difference to another
    // rule than the example's; here there is no example's rule yet.
    let verdict = if result.verdict == Verdict::Blocked { Verdict::Failed } else { result.verdict };
    let (mut kind, mut cause_rules) = kind(&step.check, result.verdict);
    if kind == "no reply" && at.1 > 0 {
        // Silence after the first replies to one write: the requests
        // that came together were taken as one (the runner says so only
        // when the write was not cut).
        kind = Cause::MergedPipelining.id().to_owned();
        cause_rules = Cause::MergedPipelining.rules();
    }
    if kind == "closed" {
        // The connection ended while the step's requests were still to
        // be answered: a later one of the same write (a character that is
        // not UTF-8, one cut by a read) may be the cause.
        for later in step_touched.iter().skip(at.1 + 1) {
            let content = later.core.iter().filter(|r| ["TRANS-6", "TRANS-7"].contains(r));
            for rule in content {
                if !touched.core.contains(rule) {
                    touched.core.push(rule);
                }
            }
        }
    }
    let core = core_rules(&touched.core, cause_rules);
    let mut with_writing = core.clone();
    with_writing.extend(touched.written.iter().filter(|r| !core.contains(r)));
    let signature = |rules: Vec<&'static str>| Signature { rules, verdict, kind: kind.clone() };
    Some(Deviation {
        at,
        core: signature(core),
        signature: signature(with_writing),
        expected: step.check.expected.clone(),
        actual: step.check.actual.clone(),
        headline: step.check.headline().unwrap_or_default(),
    })
}

/// The same deviation, once the step written one request at a time
/// deviates too: not merged pipelining, but a request that is not
/// answered at all; its command's rules decide.
pub(crate) fn not_merged(d: Deviation, touched: &[Vec<Touched>]) -> Deviation {
    let touched = touched.get(d.at.0).and_then(|s| s.get(d.at.1)).cloned().unwrap_or_default();
    let core = core_rules(&touched.core, &[]);
    let mut with_writing = core.clone();
    with_writing.extend(touched.written.iter().filter(|r| !core.contains(r)));
    let kind = "no reply".to_owned();
    Deviation {
        core: Signature { rules: core, kind: kind.clone(), ..d.core },
        signature: Signature { rules: with_writing, kind, ..d.signature },
        ..d
    }
}

/// The same deviation, once the step written one request at a time does
/// not deviate: the requests that came together are the mistake.
pub(crate) fn merged(d: Deviation) -> Deviation {
    let rules = vec!["TRANS-3"];
    let kind = Cause::MergedPipelining.id().to_owned();
    Deviation {
        core: Signature { rules: rules.clone(), kind: kind.clone(), ..d.core },
        signature: Signature { rules, kind, ..d.signature },
        ..d
    }
}

/// The rules a deviation is about. A mistake the runner knows by its
/// cause decides first (merged pipelining is TRANS-3's whatever the
/// requests); then what the request carries (a character that is not
/// UTF-8, or one cut by a read, is the mistake whatever the command);
/// else the command's rule for the reference's answer.
fn core_rules(touched: &[&'static str], cause_rules: &'static [&'static str]) -> Vec<&'static str> {
    if !cause_rules.is_empty() {
        return cause_rules.to_vec();
    }
    // Bytes that are not UTF-8 at all first: a server that dies on a cut
    // character dies on those too.
    for content in ["TRANS-6", "TRANS-7"] {
        if touched.contains(&content) {
            return vec![content];
        }
    }
    touched.to_vec()
}

/// The kind of difference, of the finding that decided the step, and the
/// rules of its cause when the runner knows one.
fn kind(check: &Check, verdict: Verdict) -> (String, &'static [&'static str]) {
    let Some(finding) = check.findings.iter().find(|f| f.severity == verdict) else {
        return (verdict.as_str().to_lowercase(), &[]);
    };
    let message = &finding.message;
    if message.contains("closed the connection") {
        // After an error reply or not: a close.
        return ("closed".into(), &[]);
    }
    match finding.cause {
        // A guess from one case (a silent connection while another was
        // answered); in a random session, silence is silence.
        Some(Cause::OneConnectionAtATime) => return ("no reply".into(), &[]),
        Some(cause) => return (cause.id().to_owned(), cause.rules()),
        None => {}
    }
    let kind = if finding.wording {
        "wording".into()
    } else if message.starts_with("no reply within") {
        "no reply".into()
    } else if message.starts_with("an incomplete reply") {
        "incomplete reply".into()
    } else if !finding.path.is_empty() {
        // `.messages.messi[0].msg` → `.messages`: the key, not the data.
        let rest = &finding.path[1..];
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        format!("wrong {}{}", &finding.path[..1], &rest[..end])
    } else if verdict == Verdict::Error {
        "could not run".into()
    } else {
        "other".into()
    };
    (kind, &[])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conform::matcher::Finding;
    use crate::conform::outcome::StepReport;
    use crate::spec::{Kind, Level};

    fn result(verdict: Verdict, line: usize, finding: Finding) -> CaseResult {
        let check = Check {
            findings: vec![finding],
            expected: "e".into(),
            actual: "a".into(),
            ..Check::default()
        };
        CaseResult {
            id: "X-1.1".into(),
            rule: "X-1".into(),
            level: Level::Should,
            kind: Kind::Server,
            spec_line: 1,
            verdict,
            steps: vec![StepReport { line, source: String::new(), verdict, check }],
            transcript: Vec::new(),
            duration: Duration::ZERO,
            blocked_by: None,
            missing_command: None,
        }
    }

    fn touched() -> Vec<Vec<Touched>> {
        vec![vec![
            Touched { core: vec!["AUTH-1"], ..Touched::default() },
            Touched {
                core: vec!["LOGOUT-4", "ERR-3"],
                written: vec!["TRANS-3"],
                context: vec!["TRANS-1"],
            },
        ]]
    }

    #[test]
    fn the_signature_is_the_rules_and_the_kind_not_the_data() {
        let origin = [None, Some((0, 0)), Some((0, 0)), Some((0, 1))];
        let a = result(
            Verdict::Failed,
            4,
            Finding::new(Verdict::Failed, ".messages.messi[0].msg", "other text \"a\""),
        );
        let b = result(
            Verdict::Failed,
            4,
            Finding::new(Verdict::Failed, ".messages.lineker[2].msg", "other text \"b\""),
        );
        let (a, b) = (
            deviation(&a, &origin, &touched()).unwrap(),
            deviation(&b, &origin, &touched()).unwrap(),
        );
        assert_eq!(a.at, (0, 1));
        assert_eq!(a.signature, b.signature);
        assert_eq!(a.signature.to_string(), "LOGOUT-4 ERR-3 TRANS-3 FAILED: wrong .messages");
        assert_eq!(a.core.rules, ["LOGOUT-4", "ERR-3"]);
    }

    /// A case FAILED at `line`: the server closed C1 instead of replying.
    fn closed_at(line: usize) -> CaseResult {
        let message = "the server closed the connection C1 instead of replying";
        result(Verdict::Failed, line, Finding::new(Verdict::Failed, "", message))
    }

    #[test]
    fn a_character_not_utf8_decides_whatever_the_command_even_later_in_the_write() {
        let touched = vec![vec![
            Touched { core: vec!["LIST-1"], written: vec!["TRANS-3"], ..Touched::default() },
            Touched { core: vec!["TRANS-6"], written: vec!["TRANS-3"], ..Touched::default() },
        ]];
        let origin = [None, Some((0, 0)), Some((0, 0)), Some((0, 1))];
        let closed = closed_at(2);
        let d = deviation(&closed, &origin, &touched).unwrap();
        assert_eq!(d.core.to_string(), "TRANS-6 FAILED: closed");
        assert_eq!(d.signature.to_string(), "TRANS-6 TRANS-3 FAILED: closed");
        assert_eq!(core_rules(&["AUTH-2", "TRANS-7", "TRANS-6"], &[]), ["TRANS-6"]);
        assert_eq!(core_rules(&["AUTH-2", "TRANS-7"], &[]), ["TRANS-7"]);
        assert_eq!(core_rules(&["AUTH-2", "TRANS-7"], &["TRANS-3"]), ["TRANS-3"]);
        let wrong = result(Verdict::Failed, 2, Finding::new(Verdict::Failed, ".status", "x"));
        assert_eq!(deviation(&wrong, &origin, &touched).unwrap().core.rules, ["LIST-1"]);
    }

    #[test]
    fn a_known_cause_names_its_own_rule() {
        let origin = [None, Some((0, 0)), Some((0, 0))];
        let merged = Finding::new(
            Verdict::Failed,
            "",
            "no reply within 2 s; the last write held 2 requests",
        )
        .because(crate::conform::cause::Cause::MergedPipelining);
        let d = deviation(
            &result(Verdict::Blocked, 2, Finding { severity: Verdict::Blocked, ..merged }),
            &origin,
            &touched(),
        )
        .unwrap();
        assert_eq!(d.core.to_string(), "TRANS-3 FAILED: merged-pipelining");
        // Silence on the second request of a write, the write cut or not.
        let origin = [None, Some((0, 0)), Some((0, 0)), Some((0, 1))];
        let silent =
            result(Verdict::Failed, 4, Finding::new(Verdict::Failed, "", "no reply within 2 s"));
        assert_eq!(
            deviation(&silent, &origin, &touched()).unwrap().core.to_string(),
            "TRANS-3 FAILED: merged-pipelining"
        );
        let d = deviation(&silent, &[None, Some((0, 0)), Some((0, 0)), Some((0, 1))], &touched())
            .unwrap();
        assert_eq!(
            not_merged(d, &touched()).signature.to_string(),
            "LOGOUT-4 ERR-3 TRANS-3 FAILED: no reply"
        );
        let guess = Finding::new(Verdict::Failed, "", "no reply within 2 s, while C2 is open")
            .because(Cause::OneConnectionAtATime);
        let origin = [None, Some((0, 0)), Some((0, 0))];
        assert_eq!(
            deviation(&result(Verdict::Failed, 2, guess), &origin, &touched())
                .unwrap()
                .core
                .to_string(),
            "AUTH-1 FAILED: no reply"
        );
    }

    #[test]
    fn silence_and_a_close_are_kinds_of_their_own() {
        let origin = [None, Some((0, 0)), Some((0, 0))];
        let closed = closed_at(3);
        let silent =
            result(Verdict::Failed, 3, Finding::new(Verdict::Failed, "", "no reply within 2 s"));
        assert_eq!(deviation(&closed, &origin, &touched()).unwrap().core.kind, "closed");
        assert_eq!(
            deviation(&silent, &origin, &touched()).unwrap().signature.to_string(),
            "AUTH-1 FAILED: no reply"
        );
        let ok = result(Verdict::Ok, 3, Finding::new(Verdict::Ok, "", ""));
        assert_eq!(deviation(&ok, &origin, &touched()), None);
    }
}
